import fastifyRateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest, RouteOptions } from 'fastify';
import { RATE_LIMITS, type RateLimitClass } from '../../config';

/** A request over its route's rate limit; the error handler answers 429 problem+json (Retry-After is already set). */
export class RateLimited extends Error {
  override readonly name = 'RateLimited';
  readonly statusCode = 429;
  constructor(readonly perMinute: number, readonly retryAfterSeconds: number) {
    super(`at most ${perMinute} requests a minute; try again in ${retryAfterSeconds} s`);
  }
}

/** Per key: its id, API_TOKEN, or the source address of anonymous callers (open mode). */
const byKey = (request: FastifyRequest) =>
  request.principal?.keyId ? `key:${request.principal.keyId}` : request.principal?.name === 'API_TOKEN' ? 'API_TOKEN' : `address:${request.ip}`;
const byAddress = (request: FastifyRequest) => `address:${request.ip}`;

/**
 * A route names its class (`config: { limit: 'statements' }`); the class's limit comes from the configuration.
 * Counters live in each process (a limit is per process where several run). Must be registered before the routes;
 * its hook runs after the access hook, so keys are known when requests are counted.
 */
export async function registerRateLimits(app: FastifyInstance, limits: Readonly<Record<RateLimitClass, number>>): Promise<void> {
  app.addHook('onRoute', (route: RouteOptions) => {
    const limit = route.config?.limit;
    if (!limit || limits[limit] === 0) return;
    route.config = {
      ...route.config,
      rateLimit: { max: limits[limit], timeWindow: 60_000, keyGenerator: RATE_LIMITS[limit].per === 'key' ? byKey : byAddress },
    };
  });
  await app.register(fastifyRateLimit, {
    global: false,
    errorResponseBuilder: (_request, context) => new RateLimited(context.max, Math.ceil(context.ttl / 1000)),
  });
}

import { validatorCompiler } from '@fastify/type-provider-zod';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { ApiKeys } from '../../application/ports/api-keys';
import type { Metrics } from '../metrics';
import { createAuthenticator } from './api-auth';
import { metricsRoutes } from './metrics.routes';
import { endPreRequestConnectionsOnClose } from './pre-request-connections';
import { errorHandler, sendProblem } from './problem';
import { RequestLog } from './request-log';
import { accessHook } from './route-access';
import { serializerCompiler } from './serializer';

/**
 * The small HTTP server of a process that has no API (`ledger project` with METRICS_PORT): GET /metrics behind the
 * same keys and roles as the service's, and GET /health. Nothing else answers.
 */
export async function buildMetricsServer(deps: {
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly apiKeys: ApiKeys;
  readonly apiToken: string | undefined;
}): Promise<FastifyInstance> {
  const app = Fastify({ loggerInstance: deps.logger as FastifyBaseLogger, logController: new RequestLog() });
  endPreRequestConnectionsOnClose(app);
  app.setErrorHandler(errorHandler);
  app.setNotFoundHandler((request, reply) => sendProblem(reply, 404, 'not-found', 'Not found', { detail: `${request.method} ${request.url.split('?')[0]}` }));
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  app.decorateRequest('principal', null);
  app.addHook('onRequest', accessHook(createAuthenticator({ keys: deps.apiKeys, apiToken: deps.apiToken, logger: deps.logger })));
  app.get('/health', { config: { access: 'open' }, schema: { response: { 200: z.object({ status: z.literal('ok') }) } } }, async () => ({ status: 'ok' as const }));
  await app.register(metricsRoutes, { metrics: deps.metrics });
  return app;
}

import { randomUUID } from 'node:crypto';
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import { validatorCompiler } from '@fastify/type-provider-zod';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { isUuid } from '../../application/access';
import type { IngestDeps } from '../../application/ingest-webhook';
import type { ApiKeys } from '../../application/ports/api-keys';
import type { EventStore } from '../../application/ports/event-store';
import type { RateLimitClass } from '../../config';
import type { ReadModels } from '../../projections/ledger.queries';
import type { Metrics } from '../metrics';
import type { ParkedEvents } from '../parked-events';
import type { ProjectionRunner } from '../projection-runner';
import type { VerifyOutcome } from '../verify-runs';
import { accessRoutes } from './access.routes';
import { accountRoutes } from './accounts.routes';
import { type AlertRouteOptions, alertRoutes } from './alerts.routes';
import { createAuthenticator } from './api-auth';
import { auditRoutes } from './audit.routes';
import { breakRoutes } from './breaks.routes';
import { consoleRoutes } from './console.routes';
import { grantRoutes, type GrantRouteOptions } from './grants.routes';
import { healthRoutes } from './health.routes';
import { linkRoutes, type LinkRouteOptions } from './links.routes';
import { metricsRoutes } from './metrics.routes';
import { openApiOptions } from './openapi';
import { parkedRoutes } from './parked.routes';
import { endPreRequestConnectionsOnClose } from './pre-request-connections';
import { errorHandler, sendProblem } from './problem';
import { quarantineRoutes } from './quarantine.routes';
import { registerRateLimits } from './rate-limits';
import { RequestLog } from './request-log';
import { accessHook, operationCatalog } from './route-access';
import { serializerCompiler } from './serializer';
import type { StatementCache } from './statement-cache';
import { statementRoutes } from './statements.routes';
import { verifyRoutes } from './verify.routes';
import { webhookRoutes } from './webhooks.routes';

export interface ServerDeps {
  readonly logger: Logger;
  readonly ingest: IngestDeps;
  readonly webhook: {
    readonly token: string | undefined;
    readonly allowedIps: readonly string[] | undefined;
    readonly bodyLimit: number;
  };
  readonly trustProxy: readonly string[] | undefined;
  /** The bootstrap admin key (API_TOKEN); with no key made and none set, every route is open. */
  readonly apiToken?: string | undefined;
  /** The API keys (`ledger keys create`); each route names the role it needs (route-access.ts). */
  readonly apiKeys: ApiKeys;
  /** Requests a minute per key on the dear routes (config RATE_LIMITS); 0: none. */
  readonly rateLimits: Readonly<Record<RateLimitClass, number>>;
  readonly readinessChecks: Readonly<Record<string, () => Promise<void>>>;
  /** True once the process drains (SIGTERM): GET /ready answers 503 while everything else is still served. */
  readonly draining?: () => boolean;
  /** The HTTP server's timeouts (config.http); unset: fastify's defaults. */
  readonly httpTimeouts?: HttpTimeouts;
  /** Where the read models live: the queries of the accountants' and auditors' routes run here. */
  readonly readModels: ReadModels;
  /** JSON statements answered before, served again while their account's version is unchanged; null: none. */
  readonly statementCache?: StatementCache | null;
  /** Reads of the log for the auditors' routes (the read pool); unset: the ingest event store. */
  readonly logReader?: EventStore;
  /** Replays the log into a scratch schema and compares it with the live read models (POST /audit/verify), one at a time. */
  readonly verify: () => Promise<VerifyOutcome>;
  /** Parked events of the projections: listed and retried by operators. */
  readonly parked: ParkedEvents;
  /** The projections' names, which the parked routes accept. */
  readonly projectionNames: readonly string[];
  /** The projection runners whose progress GET /projections reports (none when projections run elsewhere). */
  readonly runners: readonly ProjectionRunner[];
  readonly now: () => Date;
  /** The built accountants' console (dist/console), served at `/`; 503 there while it is not built. */
  readonly consoleDir: string;
  /** Linking (links.routes.ts); where Cas BankHub is not configured its use cases are null and the routes answer 503. */
  readonly links: LinkRouteOptions;
  /** The grants and their backfill (grants.routes.ts), likewise. */
  readonly grants: GrantRouteOptions;
  /** This process's metrics: GET /metrics, and webhooks counted by outcome (issue 15). */
  readonly metrics: Metrics;
  /** The alert outbox (GET /alerts) and whether ALERT_WEBHOOK_URL is set (issue 15). */
  readonly alerts: AlertRouteOptions;
}

export interface HttpTimeouts {
  /** Receiving a whole request (headers and body). */
  readonly requestTimeoutMs: number;
  /** Receiving the headers. */
  readonly headersTimeoutMs: number;
  /** An idle keep-alive connection. */
  readonly keepAliveTimeoutMs: number;
  /** A socket with no traffic at all (a client that does not read its answer); longer than any route's work. */
  readonly connectionTimeoutMs: number;
}

/** Slow or silent clients cannot hold sockets: each phase of a connection has its bound. */
function serverTimeouts(t: HttpTimeouts | undefined) {
  if (!t) return {};
  return {
    requestTimeout: t.requestTimeoutMs,
    keepAliveTimeout: t.keepAliveTimeoutMs,
    connectionTimeout: t.connectionTimeoutMs,
    http: {
      requestTimeout: t.requestTimeoutMs,
      headersTimeout: t.headersTimeoutMs,
      keepAliveTimeout: t.keepAliveTimeoutMs,
      // Node checks the request and headers timeouts on this interval (30 s by default, longer than the bounds).
      connectionsCheckingInterval: Math.min(1_000, t.headersTimeoutMs),
    },
  };
}

/** Builds the app and never listens: main.ts listens, tests use `inject`. */
export async function buildServer(deps: ServerDeps): Promise<FastifyInstance> {
  const app = Fastify({
    ...serverTimeouts(deps.httpTimeouts),
    // While closing, a request that still arrives on an open connection is served (with Connection: close) rather
    // than refused with a bare 503: the stores stay open until every request has its answer.
    return503OnClosing: false,
    loggerInstance: deps.logger as FastifyBaseLogger,
    // One line per request, at its answer, naming the route's pattern (request-log.ts).
    logController: new RequestLog(),
    // X-Forwarded-For is believed only from the proxies named in TRUST_PROXY.
    trustProxy: deps.trustProxy ? [...deps.trustProxy] : false,
    // A client's x-request-id is kept (and stored with what it delivers) only when it is a UUID.
    requestIdHeader: false,
    genReqId: (request) => {
      const given = request.headers['x-request-id'];
      return typeof given === 'string' && isUuid(given) ? given.toLowerCase() : randomUUID();
    },
  });
  endPreRequestConnectionsOnClose(app);
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  app.setErrorHandler(errorHandler);
  app.setNotFoundHandler((request, reply) =>
    sendProblem(reply, 404, 'not-found', 'Not found', { detail: `${request.method} ${request.url.split('?')[0]}` }),
  );

  // Access: every route declares who may call it (`config.access`); one that declares nothing answers nobody.
  const authenticator = createAuthenticator({
    keys: deps.apiKeys,
    apiToken: deps.apiToken,
    logger: deps.logger,
  });
  app.decorateRequest('principal', null);
  app.addHook('onRequest', accessHook(authenticator));
  const catalog = operationCatalog();
  app.addHook('onRoute', (route) => {
    catalog.onRoute(route);
    if (route.config?.access === undefined && !(route.schema as { hide?: boolean } | undefined)?.hide) {
      deps.logger.error({ route: `${String(route.method)} ${route.url}` }, 'the route declares no access (config.access): it answers 403 to everyone');
    }
  });
  await registerRateLimits(app, deps.rateLimits);

  await app.register(fastifySwagger, openApiOptions(deps.rateLimits));
  await app.register(async (docs) => {
    // The viewer's own routes (pages, scripts) are open like the document they show.
    docs.addHook('onRoute', (route) => void (route.config = { ...route.config, access: 'open' }));
    await docs.register(fastifySwaggerUi, { routePrefix: '/docs' });
  });

  await app.register(healthRoutes, { readinessChecks: deps.readinessChecks, runners: deps.runners, draining: deps.draining ?? (() => false) });
  await app.register(webhookRoutes, {
    ingest: deps.ingest,
    ...deps.webhook,
    now: deps.now,
    onAnswered: deps.metrics.webhookAnswered,
  });
  await app.register(accessRoutes, { operationsFor: catalog.operationsFor });
  await app.register(auditRoutes, { eventStore: deps.logReader ?? deps.ingest.eventStore, readModels: deps.readModels });
  await app.register(verifyRoutes, { readModels: deps.readModels, verify: deps.verify });
  await app.register(accountRoutes, { readModels: deps.readModels });
  await app.register(statementRoutes, { readModels: deps.readModels, cache: deps.statementCache ?? null });
  await app.register(breakRoutes, { readModels: deps.readModels });
  await app.register(parkedRoutes, { parked: deps.parked, projectionNames: deps.projectionNames });
  await app.register(quarantineRoutes, { ingest: deps.ingest, now: deps.now });
  await app.register(linkRoutes, deps.links);
  await app.register(grantRoutes, deps.grants);
  await app.register(metricsRoutes, { metrics: deps.metrics });
  await app.register(alertRoutes, deps.alerts);
  await app.register(consoleRoutes, { dir: deps.consoleDir });
  app.get('/openapi.json', { config: { access: 'open' }, schema: { hide: true } }, async () => app.swagger());
  return app;
}

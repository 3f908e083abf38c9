import { randomUUID } from 'node:crypto';
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import { jsonSchemaTransform, jsonSchemaTransformObject, validatorCompiler } from '@fastify/type-provider-zod';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { IngestDeps } from '../../application/ingest-webhook';
import { allProjections } from '../../projections/all-projections';
import type { ReadModels } from '../../projections/ledger.queries';
import { createParkedEvents } from '../parked-events';
import type { ProjectionRunner } from '../projection-runner';
import type { VerifyOutcome } from '../verify-runs';
import { accountRoutes } from './accounts.routes';
import { requireBearer } from './api-auth';
import { auditRoutes } from './audit.routes';
import { breakRoutes } from './breaks.routes';
import { healthRoutes } from './health.routes';
import { linkRoutes, type LinkRouteOptions } from './links.routes';
import { operationsRoutes } from './operations.routes';
import { errorHandler, sendProblem } from './problem';
import { serializerCompiler } from './serializer';
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
  /** Bearer token of the accountants', auditors' and linking routes; unset: those routes are open. */
  readonly apiToken?: string | undefined;
  readonly readinessChecks: Readonly<Record<string, () => Promise<void>>>;
  /** Where the read models live: the queries of the accountants' and auditors' routes run here. */
  readonly readModels: ReadModels;
  /** Replays the log into a scratch schema and compares it with the live read models (POST /audit/verify), one at a time. */
  readonly verify: () => Promise<VerifyOutcome>;
  /** The projection runners whose progress GET /projections reports (none when projections run elsewhere). */
  readonly runners: readonly ProjectionRunner[];
  readonly now: () => Date;
  /** Linking, grants and backfill (links.routes.ts); absent: Cas BankHub is not configured, those routes answer 503. */
  readonly links?: LinkRouteOptions;
}

/** Builds the app and never listens: main.ts listens, tests use `inject`. */
export async function buildServer(deps: ServerDeps): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.logger as FastifyBaseLogger,
    // X-Forwarded-For is believed only from the proxies named in TRUST_PROXY.
    trustProxy: deps.trustProxy ? [...deps.trustProxy] : false,
    requestIdHeader: 'x-request-id',
    genReqId: () => randomUUID(),
  });
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  app.setErrorHandler(errorHandler);
  app.setNotFoundHandler((request, reply) =>
    sendProblem(reply, 404, 'not-found', 'Not found', { detail: `${request.method} ${request.url.split('?')[0]}` }),
  );

  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'balance-ledger',
        version: '0.1.0',
        description:
          'Event-sourced ledger for Cas BankHub Balance Hook webhooks. Money is an exact decimal string of whole đồng.',
      },
    },
    transform: jsonSchemaTransform,
    transformObject: jsonSchemaTransformObject,
  });
  await app.register(fastifySwaggerUi, { routePrefix: '/docs' });

  await app.register(healthRoutes, { readinessChecks: deps.readinessChecks, runners: deps.runners });
  await app.register(webhookRoutes, { ingest: deps.ingest, ...deps.webhook, now: deps.now });
  // Everything that reads the books or acts on Cas sits behind API_TOKEN when one is configured.
  await app.register(async (guarded) => {
    if (deps.apiToken) guarded.addHook('onRequest', requireBearer(deps.apiToken, new Set(['/links/callback'])));
    await guarded.register(auditRoutes, { eventStore: deps.ingest.eventStore, readModels: deps.readModels, verify: deps.verify });
    await guarded.register(accountRoutes, { readModels: deps.readModels });
    await guarded.register(breakRoutes, { readModels: deps.readModels });
    // Operators' routes (parked events, quarantine): the role `operator` once API keys have roles.
    const projections = allProjections();
    await guarded.register(operationsRoutes, {
      parked: createParkedEvents({ db: deps.readModels.db, eventStore: deps.ingest.eventStore, projections, now: deps.now }),
      projectionNames: projections.map((p) => p.name),
      ingest: deps.ingest,
      now: deps.now,
    });
    await guarded.register(
      linkRoutes,
      deps.links ?? { linking: null, backfill: null, missing: ['BANKHUB_CLIENT_ID', 'BANKHUB_SECRET_KEY'], listGrants: async () => [] },
    );
  });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  return app;
}

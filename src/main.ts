import 'reflect-metadata';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { container } from 'tsyringe';
import { type Config, ConfigError, loadConfig } from './config';
import { createBankHubServices } from './infrastructure/bankhub/bankhub-services';
import { createHealLoop, type HealLoop } from './infrastructure/heal-loop';
import { buildServer } from './infrastructure/http/server';
import { createLogger } from './infrastructure/logger';
import { createProjectionRunner, type ProjectionRunner } from './infrastructure/projection-runner';
import { createVerifier } from './infrastructure/verify-runs';
import { openStores, type Stores } from './infrastructure/runtime';
import { allProjections } from './projections/all-projections';

/** The composition root: the only place that knows tsyringe. Everything is resolved once and passed down. */
const TOKENS = {
  config: Symbol('Config'),
  logger: Symbol('Logger'),
  clock: Symbol('Clock'),
} as const;

async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(78); // EX_CONFIG
    }
    throw error;
  }
  container.register(TOKENS.config, { useValue: config });
  container.register(TOKENS.logger, { useFactory: (c) => createLogger(c.resolve<Config>(TOKENS.config).logLevel) });
  container.register(TOKENS.clock, { useValue: () => new Date() });

  const logger = container.resolve<Logger>(TOKENS.logger);
  const now = container.resolve<() => Date>(TOKENS.clock);
  const stores: Stores = await openStores(config, logger);
  logger.info(
    {
      database: stores.database.kind === 'pglite' ? `embedded PGlite in ${config.dataDir}` : 'PostgreSQL (DATABASE_URL)',
      eventStore: config.eventStoreUrl ? 'EventStoreDB' : 'PostgreSQL',
    },
    'stores open',
  );
  if (!config.webhookToken) {
    logger.warn('WEBHOOK_TOKEN is not set: POST /webhooks/bankhub accepts deliveries from anyone');
  }
  if (!config.apiToken) {
    logger.warn('API_TOKEN is not set: accounts, statements, audit and linking routes answer anyone who can reach them');
  }

  // Runners exist in every process so that GET /projections reports the lag; they run only where configured.
  const runners: ProjectionRunner[] = allProjections().map((projection) =>
    createProjectionRunner({ database: stores.database, eventStore: stores.eventStore, projection, logger, now, batchSize: config.projectionBatchSize }),
  );

  const verifier = createVerifier({ database: stores.database, eventStore: stores.eventStore, projections: allProjections(), now });
  const bankHub = createBankHubServices({ config, stores, logger, now });
  let healLoop: HealLoop | null = null;
  if (bankHub.heal) {
    healLoop = createHealLoop({ database: stores.database, heal: bankHub.heal, intervalMs: config.healIntervalSeconds * 1000, logger });
    logger.info({ healAfterSeconds: config.healAfterSeconds, baseUrl: config.bankHub.baseUrl }, 'Cas BankHub configured: linking on, gap healing on');
  } else {
    logger.warn(
      { missing: config.bankHub.missing },
      `Cas BankHub is not configured (${config.bankHub.missing.join(', ')} unset): linking and backfill answer 503, gap healing is off`,
    );
  }

  const app: FastifyInstance = await buildServer({
    logger,
    ingest: { eventStore: stores.eventStore, quarantine: stores.quarantine },
    webhook: { token: config.webhookToken, allowedIps: config.webhookAllowedIps, bodyLimit: config.webhookBodyLimit },
    trustProxy: config.trustProxy,
    apiToken: config.apiToken,
    readinessChecks: { eventStore: () => stores.eventStore.ping() },
    readModels: { db: stores.database.db, schema: 'ledger', singleConnection: stores.database.kind === 'pglite' },
    verify: () => verifier.run(),
    runners,
    now,
    links: bankHub.links,
  });

  let closing = false;
  const shutdown = async (signal: string) => {
    if (closing) return;
    closing = true;
    logger.info({ signal }, 'shutting down');
    try {
      await app.close(); // stops accepting, lets in-flight webhooks finish their commits
      await healLoop?.stop(); // between Cas calls; every heal attempt is one event, never half recorded
      await Promise.all(runners.map((r) => r.stop())); // the batch in flight commits or rolls back whole
      await stores.close();
      process.exit(0);
    } catch (error) {
      logger.error({ err: error }, 'unclean shutdown');
      process.exit(1);
    }
  };
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));

  await app.listen({ port: config.port, host: config.host });
  if (config.runProjections) for (const runner of runners) runner.start();
  healLoop?.start();
}

main().catch((error: unknown) => {
  process.stderr.write(`balance-ledger failed to start: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});

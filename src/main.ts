import 'reflect-metadata';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { container } from 'tsyringe';
import { type Config, ConfigError, loadConfig } from './config';
import { createAlerting } from './infrastructure/alerts/alerting';
import { createBankHubServices } from './infrastructure/bankhub/bankhub-services';
import { exposureRefusal, isLoopbackHost } from './infrastructure/exposure';
import { createHealLoop, type HealLoop } from './infrastructure/heal-loop';
import { buildServer } from './infrastructure/http/server';
import { createLogger, logFormatFor } from './infrastructure/logger';
import { createMetrics, readModelSource } from './infrastructure/metrics';
import { createProjectionRunner, type ProjectionRunner } from './infrastructure/projection-runner';
import { openStoresWhenReachable, serverDeps, type Stores } from './infrastructure/runtime';
import { exitGracefullyOnSignals } from './infrastructure/shutdown';
import { createSweepLoop, type SweepLoop, sweepDepsOf } from './infrastructure/sweep-loop';
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
  container.register(TOKENS.logger, {
    useFactory: (c) => {
      const { logLevel, logFormat } = c.resolve<Config>(TOKENS.config);
      return createLogger(logLevel, undefined, logFormatFor(logFormat));
    },
  });
  container.register(TOKENS.clock, { useValue: () => new Date() });

  const logger = container.resolve<Logger>(TOKENS.logger);
  const now = container.resolve<() => Date>(TOKENS.clock);
  const stores: Stores = await openStoresWhenReachable(config, logger);
  logger.info(
    {
      database: stores.database.kind === 'pglite' ? `embedded PGlite in ${config.dataDir}` : 'PostgreSQL (DATABASE_URL)',
      eventStore: config.eventStoreUrl ? 'EventStoreDB' : 'PostgreSQL',
    },
    'stores open',
  );
  const keys = await stores.apiKeys.count();
  const refusal = exposureRefusal({ ...config, liveKeys: keys.live });
  if (refusal) {
    logger.fatal(refusal);
    process.stderr.write(`${refusal}\n`);
    await stores.close();
    process.exit(78); // EX_CONFIG
  }
  if (!isLoopbackHost(config.host) && config.allowInsecure && (!config.webhookToken || (!config.apiToken && keys.live === 0))) {
    logger.warn({ host: config.host }, 'ALLOW_INSECURE=true: listening where other machines can reach it without the secrets');
  }
  if (!config.webhookToken) {
    logger.warn('WEBHOOK_TOKEN is not set: POST /webhooks/bankhub accepts deliveries from anyone');
  }
  if (!config.apiToken && keys.total > 0 && keys.live === 0) {
    logger.warn('every API key is revoked and API_TOKEN is not set: only the open routes answer until a key is made');
  }
  if (!config.apiToken && keys.total === 0) {
    logger.warn(
      'neither API_TOKEN nor any API key exists: accounts, statements, audit and linking routes answer anyone who can reach them ' +
        '(`npm run ledger -- keys create --role admin --name <label>` closes them)',
    );
  }

  // Runners exist in every process so that GET /projections reports the lag; they run only where configured.
  const runners: ProjectionRunner[] = allProjections().map((projection) =>
    createProjectionRunner({ database: stores.database, eventStore: stores.eventStore, projection, logger, now, batchSize: config.projectionBatchSize }),
  );

  // Issue 15: metrics, alerts and the daily sweep.
  const metrics = createMetrics({ readModels: readModelSource(stores, allProjections(), logger, now), logger });
  const alerting = createAlerting({ config, stores, runners, metrics, logger, now });
  if (!alerting.loop) logger.info('ALERT_WEBHOOK_URL is not set: alerting is off');

  const bankHub = createBankHubServices({ config, stores, logger, now, metrics });
  let healLoop: HealLoop | null = null;
  let sweepLoop: SweepLoop | null = null;
  if (bankHub.heal) {
    healLoop = createHealLoop({
      database: stores.database,
      heal: bankHub.heal,
      intervalMs: config.healIntervalSeconds * 1000,
      logger,
      onReport: metrics.healed,
    });
    if (bankHub.links.backfill && config.sweepAtMinutes !== null) {
      sweepLoop = createSweepLoop({
        database: stores.database,
        deps: sweepDepsOf(stores.database.db, bankHub.links.backfill, alerting.loop ? alerting.outbox : undefined),
        sweepAtMinutes: config.sweepAtMinutes,
        now,
        logger,
        metrics,
      });
    }
    logger.info(
      { healAfterSeconds: config.healAfterSeconds, baseUrl: config.bankHub.baseUrl, sweepAtMinutes: config.sweepAtMinutes },
      `Cas BankHub configured: linking on, gap healing on, daily sweep ${sweepLoop ? 'on' : 'off (SWEEP_AT=off)'}`,
    );
  } else {
    logger.warn(
      { missing: config.bankHub.missing },
      `Cas BankHub is not configured (${config.bankHub.missing.join(', ')} unset): linking and backfill answer 503, gap healing is off`,
    );
  }

  let draining = false;
  const app: FastifyInstance = await buildServer(
    serverDeps({ config, stores, logger, now, runners, links: bankHub.links, draining: () => draining, metrics, alerting }),
  );

  exitGracefullyOnSignals({
    logger,
    delayMs: config.drain.delayMs,
    timeoutMs: config.drain.timeoutMs,
    onDrainStart: () => (draining = true), // GET /ready answers 503 from now on; everything else is still served
    close: async () => {
      await app.close(); // stops accepting, lets in-flight webhooks finish their commits
      await healLoop?.stop(); // between Cas calls; every heal attempt is one event, never half recorded
      await sweepLoop?.stop(); // between grants; a sweep stopped records nothing and runs again later
      await alerting.loop?.stop(); // between deliveries; an alert not marked delivered is sent again (at least once)
      await Promise.all(runners.map((r) => r.stop())); // the batch in flight commits or rolls back whole
      await stores.close();
    },
  });

  await app.listen({ port: config.port, host: config.host });
  if (config.runProjections) for (const runner of runners) runner.start();
  healLoop?.start();
  sweepLoop?.start();
  alerting.loop?.start();
}

main().catch((error: unknown) => {
  process.stderr.write(`balance-ledger failed to start: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { loadConfig, type Config } from '../../src/config';
import { createBankHubServices, type BankHubServices } from '../../src/infrastructure/bankhub/bankhub-services';
import { type Alerting, createAlerting } from '../../src/infrastructure/alerts/alerting';
import { createHealLoop, type HealLoop } from '../../src/infrastructure/heal-loop';
import { createMetrics, type Metrics, readModelSource } from '../../src/infrastructure/metrics';
import { createSweepLoop, type SweepLoop, sweepDepsOf } from '../../src/infrastructure/sweep-loop';
import { allProjections } from '../../src/projections/all-projections';
import { buildServer, type ServerDeps } from '../../src/infrastructure/http/server';
import { createProjectionRunner, type ProjectionRunner } from '../../src/infrastructure/projection-runner';
import { openStores, serverDeps, type Stores } from '../../src/infrastructure/runtime';
import { createGrantsProjection } from '../../src/projections/grants.projection';
import { createLedgerProjection } from '../../src/projections/ledger.projection';
import { createTestDatabase, type TestDatabase } from './postgres';

export const FIXTURES_DIR = join(import.meta.dirname, '..', 'fixtures');

/** Payloads of the shape Cas's docs show (copies of shared/samples), as bytes. */
export const sample = (name: string): Buffer => readFileSync(join(FIXTURES_DIR, name));

export interface TestApp {
  readonly app: FastifyInstance;
  /** The ledger projection, running as main.ts runs it. */
  readonly runner: ProjectionRunner;
  /** The grants projection (GET /grants). */
  readonly grantsRunner: ProjectionRunner;
  /** Cas BankHub wiring from the env (BANKHUB_*), as main.ts builds it. */
  readonly bankHub: BankHubServices;
  /** Running when Cas BankHub is configured, every HEAL_INTERVAL_SECONDS. */
  readonly healLoop: HealLoop | null;
  /** Metrics of this app (GET /metrics), as main.ts builds them. */
  readonly metrics: Metrics;
  /** The alert outbox, and its loop when ALERT_WEBHOOK_URL is set (started). */
  readonly alerting: Alerting;
  /** The daily sweep when Cas BankHub is configured; not started: tests call `runIfDue(now)`. */
  readonly sweepLoop: SweepLoop | null;
  readonly stores: Stores;
  readonly config: Config;
  readonly database: TestDatabase;
  close(): Promise<void>;
}

export const TEST_TOKEN = 'test-webhook-token-0123456789abcdef';

/** A server on a database of its own, wired exactly as main.ts wires it. */
export async function createTestApp(
  env: Record<string, string> = {},
  overrides: Partial<ServerDeps> | ((stores: Stores) => Partial<ServerDeps>) = {},
): Promise<TestApp> {
  const database = await createTestDatabase('api');
  const config = loadConfig({ DATABASE_URL: database.url, WEBHOOK_TOKEN: TEST_TOKEN, LOG_LEVEL: 'silent', ...env });
  const logger = pino({ level: 'silent' });
  const stores = await openStores(config, logger);
  const runner = createProjectionRunner({
    database: stores.database,
    eventStore: stores.eventStore,
    projection: createLedgerProjection(),
    logger,
  });
  const grantsRunner = createProjectionRunner({
    database: stores.database,
    eventStore: stores.eventStore,
    projection: createGrantsProjection(),
    logger,
  });
  const extra = typeof overrides === 'function' ? overrides(stores) : overrides;
  const now = () => new Date();
  const log = extra.logger ?? logger;
  const metrics = createMetrics({ readModels: readModelSource(stores, allProjections(), logger, now), logger, processMetrics: false });
  const alerting = createAlerting({ config, stores, runners: [runner, grantsRunner], metrics, logger: log, now });
  const bankHub = createBankHubServices({ config, stores, logger: log, now, metrics });
  const healLoop = bankHub.heal
    ? createHealLoop({ database: stores.database, heal: bankHub.heal, intervalMs: config.healIntervalSeconds * 1000, logger: log, onReport: metrics.healed })
    : null;
  const sweepLoop =
    bankHub.links.backfill && config.sweepAtMinutes !== null
      ? createSweepLoop({
          database: stores.database,
          deps: sweepDepsOf(stores.database.db, bankHub.links.backfill, alerting.loop ? alerting.outbox : undefined),
          sweepAtMinutes: config.sweepAtMinutes,
          now,
          logger: log,
          metrics,
        })
      : null;
  const app = await buildServer({
    ...serverDeps({ config, stores, logger, now, runners: [runner, grantsRunner], links: bankHub.links, metrics, alerting }),
    ...extra,
  });
  runner.start();
  grantsRunner.start();
  healLoop?.start();
  alerting.loop?.start();
  return {
    app,
    runner,
    grantsRunner,
    bankHub,
    healLoop,
    metrics,
    alerting,
    sweepLoop,
    stores,
    config,
    database,
    async close() {
      await app.close();
      await healLoop?.stop();
      await alerting.loop?.stop();
      await Promise.all([runner.stop(), grantsRunner.stop()]);
      await stores.close();
      await database.drop();
    },
  };
}

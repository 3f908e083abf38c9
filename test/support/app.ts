import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { buildService, type Graph, openRoot, type Overrides, type Root } from '../../src/composition-root';
import { loadConfig, type Config } from '../../src/config';
import type { AlertLoop } from '../../src/infrastructure/alerts/alert-loop';
import type { HealLoop } from '../../src/infrastructure/heal-loop';
import type { Metrics } from '../../src/infrastructure/metrics';
import type { AlertOutboxRepository } from '../../src/infrastructure/postgres/alert-outbox-repository';
import type { ProjectionRunner } from '../../src/infrastructure/projection-runner';
import type { SweepLoop } from '../../src/infrastructure/sweep-loop';
import { createTestDatabase, type TestDatabase } from './postgres';

export const FIXTURES_DIR = join(import.meta.dirname, '..', 'fixtures');

/** Payloads of the shape Cas's docs show (copies of shared/samples), as bytes. */
export const sample = (name: string): Buffer => readFileSync(join(FIXTURES_DIR, name));

export interface TestApp {
  readonly app: FastifyInstance;
  /** The graph the app was built from: anything else it holds, as the service would resolve it. */
  readonly root: Root;
  /** The ledger projection, running as main.ts runs it. */
  readonly runner: ProjectionRunner;
  /** The grants projection (GET /grants). */
  readonly grantsRunner: ProjectionRunner;
  /** Running when Cas BankHub is configured, every HEAL_INTERVAL_SECONDS. */
  readonly healLoop: HealLoop | null;
  /** Metrics of this app (GET /metrics), as main.ts builds them. */
  readonly metrics: Metrics;
  /** The alert outbox, and its loop when ALERT_WEBHOOK_URL is set (started). */
  readonly alerting: { readonly outbox: AlertOutboxRepository; readonly loop: AlertLoop | null };
  /** The daily sweep when Cas BankHub is configured; not started (its schedule follows the wall clock): tests call `runIfDue(now)`. */
  readonly sweepLoop: SweepLoop | null;
  readonly stores: Pick<Graph, 'database' | 'eventStore' | 'quarantine' | 'apiKeys'>;
  readonly config: Config;
  readonly database: TestDatabase;
  close(): Promise<void>;
}

export const TEST_TOKEN = 'test-webhook-token-0123456789abcdef';

/**
 * The service on a database of its own, built by the composition root as main.ts builds it (without listening), its
 * components started but the daily sweep. `overrides` replace registrations of the root (a logger that records, a
 * clock ahead…). Node's process metrics are left out: many apps run in one test process.
 */
export async function createTestApp(env: Record<string, string> = {}, overrides: Overrides = {}): Promise<TestApp> {
  const database = await createTestDatabase('api');
  const config = loadConfig({ DATABASE_URL: database.url, WEBHOOK_TOKEN: TEST_TOKEN, LOG_LEVEL: 'silent', ...env });
  const root = await openRoot(config, { overrides: { logger: pino({ level: 'silent' }), processMetrics: false, ...overrides } });
  const service = await buildService(root);
  for (const component of service.components) if (component.name !== 'daily sweep') component.start();
  const runnerOf = (name: string) => root.resolve('runners')[root.resolve('projections').findIndex((p) => p.name === name)]!;
  return {
    app: service.app,
    root,
    runner: runnerOf('ledger'),
    grantsRunner: runnerOf('grants'),
    healLoop: root.resolve('healLoop'),
    metrics: root.resolve('metrics'),
    alerting: { outbox: root.resolve('alertOutbox'), loop: root.resolve('alertLoop') },
    sweepLoop: root.resolve('sweepLoop'),
    stores: {
      database: root.resolve('database'),
      eventStore: root.resolve('eventStore'),
      quarantine: root.resolve('quarantine'),
      apiKeys: root.resolve('apiKeys'),
    },
    config,
    database,
    async close() {
      await service.close();
      await database.drop();
    },
  };
}

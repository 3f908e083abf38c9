import { join } from 'node:path';
import type { Logger } from 'pino';
import type { ApiKeys } from '../application/ports/api-keys';
import { type EventStore, EventStoreUnavailable } from '../application/ports/event-store';
import type { Quarantine } from '../application/ports/quarantine';
import type { Config } from '../config';
import { createPostgresEventStore } from './eventstore/postgres-event-store';
import type { LinkRouteOptions } from './http/links.routes';
import type { ServerDeps } from './http/server';
import { createApiKeyRepository } from './postgres/api-key-repository';
import { type Database, openDatabase } from './postgres/database';
import { isUnavailableError } from './postgres/errors';
import { reconnectDelayMs } from './locked-loop';
import { migrateToLatest } from './postgres/migrations';
import { createQuarantineRepository } from './postgres/quarantine-repository';
import type { ProjectionRunner } from './projection-runner';
import { ensureProjectionSchema } from './projection-store';
import { createParkedEvents } from './parked-events';
import { cleanUpAfterCrashedVerifies, createVerifier } from './verify-runs';
import { allProjections } from '../projections/all-projections';
import { readModelIn } from '../projections/read-model';

/** The stores every entry point (server, CLI, benchmarks) opens the same way. */
export interface Stores {
  readonly database: Database;
  readonly eventStore: EventStore;
  /** The same log, read through the read pool (the auditors' routes): reads never take a write connection. */
  readonly logReader: EventStore;
  readonly quarantine: Quarantine;
  readonly apiKeys: ApiKeys;
  close(): Promise<void>;
}

export async function openStores(config: Config, logger: Logger): Promise<Stores> {
  const database = openDatabase({
    databaseUrl: config.databaseUrl,
    dataDir: config.dataDir,
    poolSize: config.dbPoolSize,
    readPoolSize: config.dbReadPoolSize,
    readStatementTimeoutMs: config.dbReadStatementTimeoutMs,
    idleInTransactionTimeoutMs: config.dbIdleInTransactionTimeoutMs,
    logger,
  });
  let eventStore: EventStore;
  try {
    await migrateToLatest(database.db);
    // The read models exist before the first request, even where no runner runs in this process.
    for (const projection of allProjections()) await ensureProjectionSchema(database.db, projection, projection.name);
    await cleanUpAfterCrashedVerifies(database, allProjections(), new Date());
    eventStore = await createEventStore(config, database, logger);
  } catch (error) {
    await database.close().catch(() => {});
    throw error;
  }
  return {
    database,
    eventStore,
    logReader: config.eventStoreUrl || database.kind === 'pglite' ? eventStore : createPostgresEventStore(database.readDb),
    quarantine: createQuarantineRepository(database.db),
    apiKeys: createApiKeyRepository(database.db),
    async close() {
      await eventStore.close();
      await database.close();
    },
  };
}

async function createEventStore(config: Config, database: Database, logger: Logger): Promise<EventStore> {
  if (config.eventStoreUrl) {
    const { createEventStoreDbEventStore } = await import('./eventstore/eventstoredb-event-store');
    return createEventStoreDbEventStore({
      connectionString: config.eventStoreUrl,
      logger: logger.child({ component: 'eventstoredb' }),
    });
  }
  return createPostgresEventStore(database.db);
}

/** Where `npm run build:console` writes the console (vite.config.ts in console/ says the same). */
export const CONSOLE_DIR = join(import.meta.dirname, '..', '..', 'dist', 'console');

/** What buildServer needs, from the configuration and stores: main.ts, the tests and tools/openapi.ts build it so. */
export function serverDeps(input: {
  readonly config: Config;
  readonly stores: Stores;
  readonly logger: Logger;
  readonly now: () => Date;
  readonly runners: readonly ProjectionRunner[];
  readonly links: LinkRouteOptions | undefined;
  /** True once the process drains (SIGTERM); unset: never. */
  readonly draining?: () => boolean;
}): ServerDeps {
  const { config, stores } = input;
  return {
    logger: input.logger,
    ingest: { eventStore: stores.eventStore, quarantine: stores.quarantine },
    webhook: { token: config.webhookToken, allowedIps: config.webhookAllowedIps, bodyLimit: config.webhookBodyLimit },
    trustProxy: config.trustProxy,
    apiToken: config.apiToken,
    apiKeys: stores.apiKeys,
    rateLimits: config.rateLimits,
    readinessChecks: { eventStore: () => stores.eventStore.ping() },
    ...(input.draining ? { draining: input.draining } : {}),
    httpTimeouts: config.http,
    // The query routes read through a pool of their own (statement timeout): they never take ingest's connections.
    readModels: { ...readModelIn(stores.database.readDb, 'ledger'), singleConnection: stores.database.kind === 'pglite' },
    logReader: stores.logReader,
    verify: createVerifier({ database: stores.database, eventStore: stores.eventStore, projections: allProjections(), now: input.now }).run,
    // Retrying a parked event writes the read models: the write pool, not the read pool.
    parked: createParkedEvents({ db: stores.database.db, eventStore: stores.eventStore, projections: allProjections(), now: input.now }),
    runners: input.runners,
    now: input.now,
    consoleDir: CONSOLE_DIR,
    ...(input.links ? { links: input.links } : {}),
  };
}

/**
 * The long-running processes (the service, `ledger project`) start even while the stores are away: they wait, with
 * backoff, until the stores answer. Anything else (a wrong password, a failed migration) stops start-up at once.
 */
export async function openStoresWhenReachable(config: Config, logger: Logger): Promise<Stores> {
  for (let failures = 1; ; failures++) {
    try {
      return await openStores(config, logger);
    } catch (error) {
      if (!(error instanceof EventStoreUnavailable) && !isUnavailableError(error)) throw error;
      const retryInMs = reconnectDelayMs(failures);
      logger.warn({ err: error, retryInMs }, 'the stores are unreachable; waiting for them');
      await new Promise((r) => setTimeout(r, retryInMs));
    }
  }
}

import type { Logger } from 'pino';
import { type EventStore, EventStoreUnavailable } from '../application/ports/event-store';
import type { Quarantine } from '../application/ports/quarantine';
import type { Config } from '../config';
import { createPostgresEventStore } from './eventstore/postgres-event-store';
import { type Database, openDatabase } from './postgres/database';
import { isUnavailableError } from './postgres/errors';
import { reconnectDelayMs } from './locked-loop';
import { migrateToLatest } from './postgres/migrations';
import { createQuarantineRepository } from './postgres/quarantine-repository';
import { ensureProjectionSchema } from './projection-store';
import { allProjections } from '../projections/all-projections';

/** The stores every entry point (server, CLI, benchmarks) opens the same way. */
export interface Stores {
  readonly database: Database;
  readonly eventStore: EventStore;
  /** The same log, read through the read pool (the auditors' routes): reads never take a write connection. */
  readonly logReader: EventStore;
  readonly quarantine: Quarantine;
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

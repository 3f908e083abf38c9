import type { Logger } from 'pino';
import type { EventStore } from '../application/ports/event-store';
import type { Quarantine } from '../application/ports/quarantine';
import type { Config } from '../config';
import { createPostgresEventStore } from './eventstore/postgres-event-store';
import { type Database, openDatabase } from './postgres/database';
import { migrateToLatest } from './postgres/migrations';
import { createQuarantineRepository } from './postgres/quarantine-repository';
import { ensureProjectionSchema } from './projection-store';
import { cleanUpAfterCrashedVerifies } from './verify-runs';
import { allProjections } from '../projections/all-projections';

/** The stores every entry point (server, CLI, benchmarks) opens the same way. */
export interface Stores {
  readonly database: Database;
  readonly eventStore: EventStore;
  readonly quarantine: Quarantine;
  close(): Promise<void>;
}

export async function openStores(config: Config, logger: Logger): Promise<Stores> {
  const database = openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, poolSize: config.dbPoolSize });
  await migrateToLatest(database.db);
  // The read models exist before the first request, even where no runner runs in this process.
  for (const projection of allProjections()) await ensureProjectionSchema(database.db, projection, projection.name);
  await cleanUpAfterCrashedVerifies(database, allProjections(), new Date());
  const eventStore = await createEventStore(config, database, logger);
  return {
    database,
    eventStore,
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

import { join } from 'node:path';
import type { Logger } from 'pino';
import type { ApiKeys } from '../application/ports/api-keys';
import type { EventStore } from '../application/ports/event-store';
import type { Quarantine } from '../application/ports/quarantine';
import type { Config } from '../config';
import { createPostgresEventStore } from './eventstore/postgres-event-store';
import type { LinkRouteOptions } from './http/links.routes';
import type { ServerDeps } from './http/server';
import { createApiKeyRepository } from './postgres/api-key-repository';
import { type Database, openDatabase } from './postgres/database';
import { migrateToLatest } from './postgres/migrations';
import { createQuarantineRepository } from './postgres/quarantine-repository';
import type { ProjectionRunner } from './projection-runner';
import { ensureProjectionSchema } from './projection-store';
import { verifyProjections } from './read-model-maintenance';
import { allProjections } from '../projections/all-projections';

/** The stores every entry point (server, CLI, benchmarks) opens the same way. */
export interface Stores {
  readonly database: Database;
  readonly eventStore: EventStore;
  readonly quarantine: Quarantine;
  readonly apiKeys: ApiKeys;
  close(): Promise<void>;
}

export async function openStores(config: Config, logger: Logger): Promise<Stores> {
  const database = openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, poolSize: config.dbPoolSize });
  await migrateToLatest(database.db);
  // The read models exist before the first request, even where no runner runs in this process.
  for (const projection of allProjections()) await ensureProjectionSchema(database.db, projection, projection.name);
  const eventStore = await createEventStore(config, database, logger);
  return {
    database,
    eventStore,
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
    readModels: { db: stores.database.db, schema: 'ledger' },
    verify: () => verifyProjections({ db: stores.database.db, eventStore: stores.eventStore }, allProjections()),
    runners: input.runners,
    now: input.now,
    consoleDir: CONSOLE_DIR,
    ...(input.links ? { links: input.links } : {}),
  };
}

import { SingleBar, Presets } from 'cli-progress';
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { Command, Option } from 'commander';
import { createApiKey, revokeApiKey, ROLE_NAMES } from './application/access';
import { reingestQuarantined } from './application/reingest-quarantined';
import { isCalendarDate } from './domain/calendar';
import { ConfigError, loadConfig } from './config';
import { exportEvents, toNdjsonLine } from './infrastructure/export-events';
import { createLogger } from './infrastructure/logger';
import { createProjectionRunner } from './infrastructure/projection-runner';
import { createApiKeyRepository } from './infrastructure/postgres/api-key-repository';
import { openDatabase } from './infrastructure/postgres/database';
import { migrateToLatest } from './infrastructure/postgres/migrations';
import { createParkedEvents } from './infrastructure/parked-events';
import { type Progress, rebuildProjection } from './infrastructure/read-model-maintenance';
import { createVerifier } from './infrastructure/verify-runs';
import { openStores, openStoresWhenReachable, type Stores } from './infrastructure/runtime';
import { exitGracefullyOnSignals } from './infrastructure/shutdown';
import { allProjections } from './projections/all-projections';
import { readModelIn } from './projections/read-model';

/** Operator commands over the same stores the server uses: `npm run ledger -- <command>`. */
const program = new Command('ledger').description('balance-ledger operations').showHelpAfterError();

async function withStores<T>(work: (stores: Stores) => Promise<T>): Promise<T> {
  const config = loadConfig();
  const stores = await openStores(config, createLogger(config.logLevel === 'info' ? 'warn' : config.logLevel));
  try {
    return await work(stores);
  } finally {
    await stores.close();
  }
}

function progressBar(label: string) {
  const bar = new SingleBar({ format: `${label} [{bar}] {value}/{total} events  {percentage}%  {eta_formatted} left`, hideCursor: true }, Presets.shades_classic);
  let started = false;
  return {
    update({ eventsDone, eventsTotal }: Progress) {
      if (!started) {
        bar.start(eventsTotal ?? eventsDone, 0);
        started = true;
      }
      if (eventsTotal === null) bar.setTotal(eventsDone);
      bar.update(eventsDone);
    },
    stop: () => started && bar.stop(),
  };
}

program
  .command('project')
  .description('run the projection runner as a process of its own (until SIGTERM)')
  .action(async () => {
    const config = loadConfig();
    const logger = createLogger(config.logLevel);
    const stores = await openStoresWhenReachable(config, logger);
    const runners = allProjections().map((projection) =>
      createProjectionRunner({ database: stores.database, eventStore: stores.eventStore, projection, logger, batchSize: config.projectionBatchSize }),
    );
    // Runners outlive PostgreSQL going away: they take their locks again, with backoff, when it is back.
    for (const runner of runners) runner.start();
    logger.info('projection runners started');
    exitGracefullyOnSignals({
      logger,
      timeoutMs: config.drain.timeoutMs,
      close: async () => {
        await Promise.all(runners.map((runner) => runner.stop())); // the batch in flight commits or rolls back whole
        await stores.close();
      },
    });
  });

program
  .command('rebuild')
  .description('drop and rebuild every read model from event zero (a fresh schema swapped in when complete)')
  .action(() =>
    withStores(async (stores) => {
      for (const projection of allProjections()) {
        const bar = progressBar(`rebuild ${projection.name}`);
        const started = Date.now();
        const { eventsReplayed } = await rebuildProjection({
          db: stores.database.db,
          eventStore: stores.eventStore,
          projection,
          onProgress: bar.update,
        });
        bar.stop();
        process.stdout.write(`${projection.name}: rebuilt from ${eventsReplayed} events in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
      }
    }),
  );

program
  .command('verify')
  .description('replay the whole log into a scratch schema and compare it with the live read models; exit 1 on any difference')
  .action(() =>
    withStores(async (stores) => {
      const bar = progressBar('verify');
      const verifier = createVerifier({ database: stores.database, eventStore: stores.eventStore, projections: allProjections(), now: () => new Date() });
      const outcome = await verifier.run(bar.update);
      bar.stop();
      if (outcome.status === 'busy') {
        const { running } = outcome;
        process.stderr.write(`a verify is already running${running ? `: ${running.id}, started at ${running.startedAt.toISOString()}` : ''}\n`);
        process.exitCode = 2;
        return;
      }
      const report = { id: outcome.run.id, startedAt: outcome.run.startedAt, ...outcome.report };
      process.stdout.write(`${JSON.stringify(report, (_k, v) => (typeof v === 'bigint' ? v.toString() : v), 2)}\n`);
      if (!report.ok) process.exitCode = 1;
    }),
  );

program
  .command('status')
  .description("each projection's checkpoint and lag")
  .action(() =>
    withStores(async (stores) => {
      for (const projection of allProjections()) {
        const runner = createProjectionRunner({ database: stores.database, eventStore: stores.eventStore, projection, logger: createLogger('silent') });
        const status = await runner.status();
        process.stdout.write(`${JSON.stringify(status, (_k, v) => (typeof v === 'bigint' ? v.toString() : v), 2)}\n`);
      }
    }),
  );

const isoDate = (value: string) => {
  if (!isCalendarDate(value)) throw new Error(`not a date YYYY-MM-DD: ${value}`);
  return value;
};

program
  .command('export')
  .description("write events as NDJSON: one account's (transactions dated in the period) or the whole log's (recorded in it)")
  .option('--account <id>', 'the account id (GET /accounts)')
  .addOption(new Option('--from <date>', 'first day, YYYY-MM-DD').argParser(isoDate))
  .addOption(new Option('--to <date>', 'last day, YYYY-MM-DD').argParser(isoDate))
  .option('--out <file>', 'write here instead of standard output')
  .action((options: { account?: string; from?: string; to?: string; out?: string }) =>
    withStores(async (stores) => {
      if ((options.from === undefined) !== (options.to === undefined)) throw new Error('give both --from and --to, or neither');
      const out = options.out ? createWriteStream(options.out) : process.stdout;
      const total = options.account || !stores.eventStore.countAfter ? null : Number(await stores.eventStore.countAfter(null));
      const bar = progressBar('export');
      let read = 0;
      for await (const event of exportEvents({
        eventStore: stores.eventStore,
        readModels: readModelIn(stores.database.db, 'ledger'),
        ...(options.account ? { accountId: options.account } : {}),
        ...(options.from && options.to ? { from: options.from, to: options.to } : {}),
      })) {
        if (!out.write(toNdjsonLine(event))) await once(out, 'drain');
        read += 1;
        if (read % 500 === 0) bar.update({ eventsDone: read, eventsTotal: total });
      }
      bar.update({ eventsDone: read, eventsTotal: total ?? read });
      bar.stop();
      if (out !== process.stdout) {
        out.end();
        await once(out, 'finish');
      }
      process.stderr.write(`exported ${read} events\n`);
    }),
  );

const parked = program.command('parked').description('events a projection could not apply and set aside');
const parkedService = (stores: Stores) =>
  createParkedEvents({ db: stores.database.db, eventStore: stores.eventStore, projections: allProjections(), now: () => new Date() });
parked
  .command('list')
  .description('every parked event: projection, event id, log position, type, what it concerns, tries, error')
  .option('--projection <name>', 'only this projection (ledger, grants)')
  .action((options: { projection?: string }) =>
    withStores(async (stores) => {
      const service = parkedService(stores);
      let after: readonly string[] | null = null;
      do {
        const page = await service.list({ projection: options.projection, after, limit: 1000 });
        for (const p of page.items) {
          const concerns = [p.subject, p.transactionDate].filter((v) => v !== null).join(' ') || '-';
          process.stdout.write(`${p.projection}\t${p.eventId}\t${p.position}\t${p.type}\t${concerns}\t×${p.tries}\t${p.lastFailedAt.toISOString()}\t${p.error}\n`);
        }
        after = page.next;
      } while (after);
    }),
  );
parked
  .command('retry [eventId]')
  .description('apply parked events again after a fix (all, or one): applied ones leave the list, failing ones stay with the new error')
  .option('--projection <name>', 'only this projection (ledger, grants)')
  .action((eventId: string | undefined, options: { projection?: string }) =>
    withStores(async (stores) => {
      const service = parkedService(stores);
      const names = options.projection ? [options.projection] : allProjections().map((p) => p.name);
      let outcomes = 0;
      for (const name of names) {
        const results = await service.retry(name, eventId ?? null);
        if (results === null) throw new Error(`no projection named ${name}`);
        for (const r of results) {
          outcomes += 1;
          process.stdout.write(`${JSON.stringify(r)}\n`);
          if (r.outcome !== 'applied') process.exitCode = 1;
        }
      }
      if (eventId && outcomes === 0) {
        process.stderr.write(`no parked event ${eventId}\n`);
        process.exitCode = 1;
      }
    }),
  );

const quarantine = program.command('quarantine').description('bodies that could not be booked');
quarantine
  .command('list')
  .option('--all', 'include bodies already re-ingested')
  .action((options: { all?: boolean }) =>
    withStores(async (stores) => {
      for (const entry of await stores.quarantine.list({ pendingOnly: !options.all, limit: 1000 })) {
        const reasons = entry.problems.map((p) => `${p.field}: ${p.message}`).join('; ');
        process.stdout.write(`${entry.id}\t${entry.lastReceivedAt.toISOString()}\t×${entry.timesReceived}\t${entry.reingestedAt ? 'reingested' : 'pending'}\t${reasons}\n`);
      }
    }),
  );
quarantine
  .command('show <id>')
  .description('print the body exactly as received')
  .action((id: string) =>
    withStores(async (stores) => {
      const entry = await stores.quarantine.get(id);
      if (!entry) throw new Error(`no quarantined body ${id}`);
      process.stdout.write(Buffer.from(entry.rawBody));
    }),
  );
quarantine
  .command('reingest <id>')
  .description('run a quarantined body through ingest again')
  .action((id: string) =>
    withStores(async (stores) => {
      const result = await reingestQuarantined({ eventStore: stores.eventStore, quarantine: stores.quarantine }, id, new Date());
      process.stdout.write(`${JSON.stringify(result)}\n`);
      if (result.status === 'not_found' || result.status === 'still_invalid') process.exitCode = 1;
    }),
  );

/** Keys need only the write-side tables: no event store, no read models. */
async function withApiKeys<T>(work: (keys: ReturnType<typeof createApiKeyRepository>) => Promise<T>): Promise<T> {
  const config = loadConfig();
  const database = openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, poolSize: 2 });
  try {
    await migrateToLatest(database.db);
    return await work(createApiKeyRepository(database.db));
  } finally {
    await database.close();
  }
}

const keys = program.command('keys').description('API keys: Authorization: Bearer <key>, one role each');
keys
  .command('create')
  .description('make a key and print it, once, as the only line on standard output')
  .addOption(new Option('--role <role>', 'what the key may do').choices(ROLE_NAMES).makeOptionMandatory())
  .requiredOption('--name <label>', 'who or what uses it (unique among live keys), e.g. accounting-console')
  .action((options: { role: string; name: string }) =>
    withApiKeys(async (store) => {
      const created = await createApiKey(store, { name: options.name, role: options.role, now: new Date() });
      if (!created.ok) {
        const why = {
          invalid_role: `the role must be one of ${ROLE_NAMES.join(', ')}`,
          invalid_name: 'the name must be 1–100 letters, digits or . _ - @ : and must not look like a key or an id',
          name_taken: `a live key is already named ${options.name}: revoke it first, or choose another name`,
        }[created.error];
        throw new Error(why);
      }
      const { record } = created.value;
      process.stderr.write(`created key ${record.id} "${record.name}" with role ${record.role}; it is shown only now:\n`);
      process.stdout.write(`${created.value.key}\n`);
    }),
  );
keys
  .command('list')
  .description('every key: id, name, role, created, last used, revoked (never the key)')
  .action(() =>
    withApiKeys(async (store) => {
      const when = (d: Date | null) => d?.toISOString() ?? '-';
      process.stdout.write('id\tname\trole\tcreated\tlast used\trevoked\n');
      for (const k of await store.list()) {
        process.stdout.write(`${k.id}\t${k.name}\t${k.role}\t${when(k.createdAt)}\t${when(k.lastUsedAt)}\t${when(k.revokedAt)}\n`);
      }
    }),
  );
keys
  .command('revoke <idOrName>')
  .description('revoke a live key by id or name; every running service refuses it within a second')
  .action((idOrName: string) =>
    withApiKeys(async (store) => {
      const outcome = await revokeApiKey(store, idOrName, new Date());
      if (outcome.status === 'not_found') throw new Error(`no key has the id or name ${idOrName}`);
      if (outcome.status === 'already_revoked') {
        process.stderr.write(`${idOrName} is already revoked (${outcome.keys.map((k) => `${k.id} at ${k.revokedAt?.toISOString()}`).join(', ')})\n`);
        return;
      }
      process.stderr.write(`revoked key ${outcome.key.id} "${outcome.key.name}" (${outcome.key.role})\n`);
    }),
  );

program.parseAsync().catch((error: unknown) => {
  process.stderr.write(`${error instanceof ConfigError || error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});

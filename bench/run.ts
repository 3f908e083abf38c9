import { execSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import type autocannon from 'autocannon';
import { Command } from 'commander';
import { sql } from 'kysely';
import { openRoot, type Root } from '../src/composition-root';
import { loadConfig } from '../src/config';
import { decodePosition } from '../src/application/ports/event-store';
import { readCheckpoint } from '../src/infrastructure/projection-store';
import { seedEvents } from './generate';
import { ADMIN_URL } from '../test/support/postgres';
import { BENCH_API_TOKEN, BENCH_WEBHOOK_TOKEN, benchStatements, buildDist, flushWrites, freshDatabase, load, type LoadResult, profiledProcesses, profileInto, ROOT, type Service, startService, startWorker, webhookRequests } from './lib';
import { formatSummary, summariseProfile } from './profile-summary';
import { storeScenario } from './store';

/**
 * `npm run bench`: each scenario runs its ceiling in the same run, so the ratio is what we compare. The service and
 * the CLI run compiled (dist/, built first), as production runs them; every ingest row is measured after a warm-up of
 * the same load on its fresh processes (`--warmup`), the warm-up kept as its cold figure, and between two measurements
 * of bare fastify, whose mean is its ceiling. `npm run bench -- --quick`
 * fits in about a minute and a half; `--profile` also writes CPU profiles of every process started and a summary of
 * where the time went.
 */
const program = new Command('bench')
  .option('--quick', 'small sizes and short durations')
  .option('--duration <s>', 'seconds per load test', Number)
  .option('--warmup <s>', 'seconds of the same load on each ingest row\'s fresh processes before its measured window (0: measured cold)', Number)
  .option('--ingest-connections <n>', 'connections for ingest', Number, 64)
  .option('--ingest-rate <n>', 'hold the floor and the service at this many webhooks/s in all (CPU a webhook compared at equal load); default: as fast as they go', Number)
  .option('--statement-connections <n>', 'connections for statements and /health', Number, 32)
  .option('--statements <n>', 'distinct one-month statements asked in turn (accounts × months)', Number, 500)
  .option('--project-events <n>', 'events projected from zero', Number)
  .option('--rebuild-events <n>', 'events in the rebuild and statement scenarios', Number)
  .option('--store-appends <n>', 'appends per store and concurrency in the store scenario', Number)
  .option('--accounts <n>', 'accounts', Number, 1000)
  .option('--only <list>', 'comma-separated: ingest,projection,rebuild,statements,store (statements includes the rebuild)')
  .option('--keep-database', 'keep the rebuild/statements database afterwards (prints its URL), to look at it')
  .option('--prebuilt', 'run dist/ as it is, without building it first (to alternate builds under the lock)')
  .option('--profile', 'CPU profiles (node --cpu-prof) of every process into bench/profiles/<time>/, and a summary')
  .parse();

const o = program.opts<{
  keepDatabase?: boolean;
  quick?: boolean;
  duration?: number;
  warmup?: number;
  ingestConnections: number;
  ingestRate?: number;
  statementConnections: number;
  statements: number;
  projectEvents?: number;
  rebuildEvents?: number;
  storeAppends?: number;
  accounts: number;
  only?: string;
  profile?: boolean;
  prebuilt?: boolean;
}>();
const duration = o.duration ?? (o.quick ? 3 : 10);
const warmup = o.warmup ?? (o.quick ? 1 : 10);
const projectEvents = o.projectEvents ?? (o.quick ? 20_000 : 200_000);
const rebuildEvents = o.rebuildEvents ?? (o.quick ? 100_000 : 1_000_000);
const storeAppends = o.storeAppends ?? (o.quick ? 2_000 : 20_000);
const only = new Set((o.only ?? 'ingest,projection,statements,store').split(','));
const rows: { scenario: string; measure: string; value: string; ceiling: string; ratio: string; target: string }[] = [];
const results: Record<string, unknown> = {};
/** The stores of a bench database as the service opens them (migrated, read-model schemas made), for seeding and reading. */
const openBenchRoot = (url: string): Promise<Root> => openRoot(loadConfig({ DATABASE_URL: url, DB_POOL_SIZE: '4', LOG_LEVEL: 'silent' }));
const MAIN = 'dist/main.js';
const CLI = 'dist/cli.js';
const pct = (x: number) => `${(x * 100).toFixed(0)} %`;
const ratio = (x: number) => x.toFixed(2);

async function ingest() {
  const bare = await startService('bare fastify (ingest ceiling)', 'bench/bare-server.mjs', {});
  try {
    const bareLoad = { url: bare.url, connections: o.ingestConnections, duration, requests: webhookRequests(o.accounts) };
    const { warm: first, cold: ceilingCold } = await warmedLoad(bareLoad, [bare]);
    const bareRuns = [first];
    results.ingest = { ceilingCold, bareRuns, connections: o.ingestConnections, rate: o.ingestRate ?? null, duration, warmup };
    rows.push({ scenario: 'ingest', measure: 'bare fastify webhooks/s, p50 / p99 ms', value: `${first.perSecond}, ${first.p50} / ${first.p99}`, ceiling: '', ratio: '', target: '' });
    if (ceilingCold) rows.push({ scenario: 'ingest', measure: `bare fastify's first ${warmup} s: webhooks/s, p50 / p99 ms`, value: `${ceilingCold.perSecond}, ${ceilingCold.p50} / ${ceilingCold.p99}`, ceiling: '', ratio: '', target: '' });
    const drift = rows.push({ scenario: 'ingest', measure: 'bare fastify before each row below and after the last: webhooks/s', value: '', ceiling: '', ratio: '', target: '' }) - 1;
    /**
     * A row between two measurements of bare fastify (its process kept warm, idle while the row runs): the row's
     * ceiling is their mean, so that its ratio compares the two in the machine's state of the same minutes. Here the
     * machine's speed moved by up to 2× within one run, so one measurement at the start could not serve the last row.
     * The row is measured first; its table rows are added once its ceiling is known.
     */
    const bracketed = async (row: () => Promise<(ceiling: Ceiling) => void>): Promise<void> => {
      const before = bareRuns.at(-1)!;
      const addRows = await row();
      await flushWrites();
      const after = await load(bareLoad, [bare]);
      bareRuns.push(after);
      addRows(around(before, after, bare.peakRssMb()));
    };
    await bracketed(() => ingestAlone('durable floor', 'server', (url) => startService('durable floor (ingest)', 'bench/floor-server.mjs', { DATABASE_URL: url }), ceilingCold));
    await bracketed(() => ingestAlone('store only (no projection)', 'web', (url) => startIngestService('store only', url, false), ceilingCold));
    // Both shapes in one run: the production shape (docker-compose.yml: a projector process beside the web process)
    // and `npm start`'s default (the projections in the web process).
    await bracketed(() => ingestShape('projector beside', ceilingCold));
    await bracketed(() => ingestShape('projections in web', ceilingCold));
    rows[drift]!.value = bareRuns.map((r) => r.perSecond).join(' / ');
  } finally {
    await bare.stop();
  }
}

/** bare fastify's measurements either side of a row, averaged (and kept: results.json), with its peak RSS so far. */
type Ceiling = LoadResult & { readonly before: number; readonly after: number; readonly peakRssMb: number };
function around(before: LoadResult, after: LoadResult, peakRssMb: number): Ceiling {
  const mean = (a: number, b: number) => Math.round((a + b) / 2);
  return {
    requests: before.requests + after.requests,
    perSecond: mean(before.perSecond, after.perSecond),
    p50: mean(before.p50, after.p50),
    p99: mean(before.p99, after.p99),
    errors: before.errors + after.errors,
    non2xx: before.non2xx + after.non2xx,
    cpuMicrosPerRequest: before.cpuMicrosPerRequest.map((x, i) => mean(x, after.cpuMicrosPerRequest[i] ?? x)),
    postgresCpuMicrosPerRequest: mean(before.postgresCpuMicrosPerRequest, after.postgresCpuMicrosPerRequest),
    machineCpuMicrosPerRequest: mean(before.machineCpuMicrosPerRequest, after.machineCpuMicrosPerRequest),
    outsideCpuMicrosPerRequest: mean(before.outsideCpuMicrosPerRequest, after.outsideCpuMicrosPerRequest),
    before: before.perSecond,
    after: after.perSecond,
    peakRssMb,
  };
}
const bareOf = (c: Ceiling) => `${c.perSecond} (bare fastify, ${c.before} before / ${c.after} after)`;

/** One shape of the service under the ingest load on a fresh database. */
async function ingestShape(shape: 'projector beside' | 'projections in web', ceilingCold: LoadResult | null): Promise<(ceiling: Ceiling) => void> {
  const db = await freshDatabase('ingest');
  const beside = shape === 'projector beside';
  const service = await startIngestService(shape, db.url, !beside);
  const projector = beside
    ? await startService('projector (ingest, beside)', CLI, { DATABASE_URL: db.url, LOG_LEVEL: 'warn' }, { args: ['project'], portVariable: 'METRICS_PORT' })
    : null;
  // Opened before the load, so that reading the lag at its end costs no start-up.
  const root = await openBenchRoot(db.url);
  try {
    const database = root.resolve('database').db;
    let commitsBefore = 0;
    let coldLag: Awaited<ReturnType<typeof projectionLag>> | null = null;
    // The measured window starts with the projection caught up with the warm-up, as the cold window did.
    const settle = async () => {
      if (warmup > 0) coldLag = await projectionLag(database);
      commitsBefore = await commits(database);
    };
    const { warm: result, cold } = await warmedLoad(ingestLoad(service.url), projector ? [service, projector] : [service], db.name, settle);
    const commitsPerWebhook = ((await commits(database)) - commitsBefore) / result.requests;
    const lag = await projectionLag(database);
    const rss = service.peakRssMb();
    const projectorRss = projector?.peakRssMb() ?? null;
    return (ceiling) => {
      (results.ingest as Record<string, unknown>)[shape] = { service: result, cold, ceiling, commitsPerWebhook, projectionLag: lag, coldProjectionLag: coldLag, peakRssMb: rss, projectorPeakRssMb: projectorRss };
      rows.push(
        { scenario: `ingest, ${shape}`, measure: 'durable webhooks/s', value: String(result.perSecond), ceiling: bareOf(ceiling), ratio: ratio(result.perSecond / ceiling.perSecond), target: '≥ 0.30 × bare' },
        { scenario: `ingest, ${shape}`, measure: 'p50 / p99 ms', value: `${result.p50} / ${result.p99}`, ceiling: `${ceiling.p50} / ${ceiling.p99}`, ratio: '', target: 'p99 ≤ 25' },
        { scenario: `ingest, ${shape}`, measure: 'errors, non-2xx', value: `${result.errors}, ${result.non2xx}`, ceiling: `${ceiling.errors}, ${ceiling.non2xx}`, ratio: '', target: '0' },
        { scenario: `ingest, ${shape}`, measure: beside ? 'CPU µs per webhook (web / projector)' : 'CPU µs per webhook', value: result.cpuMicrosPerRequest.join(' / '), ceiling: String(ceiling.cpuMicrosPerRequest[0]), ratio: '', target: '' },
        { scenario: `ingest, ${shape}`, measure: `CPU µs per webhook (PostgreSQL / ${MACHINE})`, value: `${result.postgresCpuMicrosPerRequest} / ${machineCpu(result)}`, ceiling: `${ceiling.postgresCpuMicrosPerRequest} / ${ceiling.machineCpuMicrosPerRequest}`, ratio: '', target: '' },
        { scenario: `ingest, ${shape}`, measure: "ledger projection's lag at the load's end: events behind, s to catch up", value: `${lag.eventsBehind}, ${lag.secondsToCatchUp === null ? 'not in 120 s' : lag.secondsToCatchUp.toFixed(2)}`, ceiling: '', ratio: '', target: '' },
        { scenario: `ingest, ${shape}`, measure: beside ? 'peak RSS MB (web / projector)' : 'peak RSS MB', value: beside ? `${rss} / ${projectorRss}` : String(rss), ceiling: String(ceiling.peakRssMb), ratio: '', target: '≤ 300' },
        ...coldRowOf(`ingest, ${shape}`, cold, ceilingCold),
      );
    };
  } finally {
    await root.close();
    await projector?.stop();
    await service.stop();
    await db.drop();
  }
}

/**
 * A server alone on a fresh database under the ingest load (warmedLoad), stopped and its database dropped after: the
 * durable floor (bench/floor-server.mjs: what storing durably costs before our work), or the service storing only (no
 * projection runs anywhere: RUN_PROJECTIONS=false and no projector), which, between the floor and the two shapes,
 * shows how much of the gap is the web process and how much the projection (a diagnostic, no target: its events are
 * never projected). Its rows are added once its ceiling is known.
 */
async function ingestAlone(
  row: 'durable floor' | 'store only (no projection)',
  serverRole: string,
  start: (url: string) => Promise<Service>,
  ceilingCold: LoadResult | null,
): Promise<(ceiling: Ceiling) => void> {
  const db = await freshDatabase('ingest');
  const server = await start(db.url);
  try {
    const { warm: result, cold } = await warmedLoad(ingestLoad(server.url), [server], db.name);
    const peakRssMb = server.peakRssMb();
    const scenario = `ingest, ${row}`;
    return (ceiling) => {
      (results.ingest as Record<string, unknown>)[row] = { service: result, cold, ceiling, peakRssMb };
      rows.push(
        { scenario, measure: 'durable webhooks/s, p50 / p99 ms', value: `${result.perSecond}, ${result.p50} / ${result.p99}`, ceiling: bareOf(ceiling), ratio: ratio(result.perSecond / ceiling.perSecond), target: '' },
        { scenario, measure: `CPU µs per webhook (${serverRole} / PostgreSQL / ${MACHINE})`, value: `${result.cpuMicrosPerRequest[0]} / ${result.postgresCpuMicrosPerRequest} / ${machineCpu(result)}`, ceiling: String(ceiling.machineCpuMicrosPerRequest), ratio: '', target: '' },
        ...coldRowOf(scenario, cold, ceilingCold),
      );
    };
  } finally {
    await server.stop();
    await db.drop();
  }
}

/** The web process of an ingest row, every row with the same settings but where the projections run. */
const startIngestService = (shape: string, url: string, runProjections: boolean): Promise<Service> =>
  startService(`web (ingest, ${shape})`, MAIN, { DATABASE_URL: url, WEBHOOK_TOKEN: BENCH_WEBHOOK_TOKEN, LOG_LEVEL: 'warn', RUN_PROJECTIONS: String(runProjections) });

/**
 * An ingest row's load on the processes just started for it, once the writes of what ran before are flushed: first
 * `--warmup` seconds of the same load (their first load: V8 compiling the hot paths, the heaps growing, PostgreSQL's
 * first pages of new tables), then, after `settle`, the measured window. The service Cas calls has been running; a
 * fresh process's first seconds are the cold figure, kept beside it. One request generator for both windows, so the
 * measured webhooks are new transactions, not retries.
 */
async function warmedLoad(
  options: autocannon.Options,
  under: readonly Service[],
  database?: string,
  settle?: () => Promise<unknown>,
): Promise<{ warm: LoadResult; cold: LoadResult | null }> {
  await flushWrites();
  const cold = warmup > 0 ? await load({ ...options, duration: warmup }, under, database) : null;
  await settle?.();
  return { warm: await load(options, under, database), cold };
}

/** The machine's CPU a webhook and, in brackets, what of it no process of the row nor the load generator used. */
const MACHINE = 'whole machine (outside the row and the load generator)';
const machineCpu = (r: LoadResult) => `${r.machineCpuMicrosPerRequest} (${r.outsideCpuMicrosPerRequest})`;

/** A row's first window (its processes fresh) against bare fastify's first window; none when measured cold only. */
const coldRowOf = (scenario: string, cold: LoadResult | null, ceilingCold: LoadResult | null): typeof rows =>
  cold && ceilingCold
    ? [{ scenario, measure: `its first ${warmup} s (fresh processes): webhooks/s, p50 / p99 ms`, value: `${cold.perSecond}, ${cold.p50} / ${cold.p99}`, ceiling: `${ceilingCold.perSecond} (bare fastify's first ${warmup} s)`, ratio: ratio(cold.perSecond / ceilingCold.perSecond), target: '' }]
    : [];

/** The service's and the floor's load: as fast as they go, or held at --ingest-rate webhooks/s in all. */
const ingestLoad = (url: string): autocannon.Options => ({
  url,
  connections: o.ingestConnections,
  duration,
  requests: webhookRequests(o.accounts),
  ...(o.ingestRate ? { overallRate: o.ingestRate } : {}),
});

/** Transactions committed in the bench's database so far (group commits, projection batches): results.json only. */
const commits = async (db: import('kysely').Kysely<any>) =>
  Number((await sql<{ n: string }>`select xact_commit as n from pg_stat_database where datname = current_database()`.execute(db)).rows[0]?.n ?? 0);

/**
 * How far the ledger projection is behind the log's head when the load ends (events appended after its checkpoint),
 * and how long it then takes to reach that head: a shape that left projection work behind cannot look fast.
 */
async function projectionLag(db: import('kysely').Kysely<any>): Promise<{ eventsBehind: number; secondsToCatchUp: number | null }> {
  const started = performance.now();
  const projected = async () => {
    const { position } = await readCheckpoint(db, 'ledger', 'ledger');
    return position === null ? 0n : decodePosition(position).minor;
  };
  const { rows } = await sql<{ head: string | null }>`select max(seq) as head from events`.execute(db);
  const head = BigInt(rows[0]?.head ?? 0);
  const from = await projected();
  const behind = await sql<{ n: string }>`select count(*) as n from events where seq > ${from.toString()}::bigint and seq <= ${head.toString()}::bigint`.execute(db);
  const eventsBehind = Number(behind.rows[0]?.n ?? 0);
  while ((await projected()) < head) {
    if (performance.now() - started > 120_000) return { eventsBehind, secondsToCatchUp: null };
    await new Promise((r) => setTimeout(r, 10));
  }
  return { eventsBehind, secondsToCatchUp: (performance.now() - started) / 1000 };
}

async function projection() {
  const db = await freshDatabase('projection');
  const root = await openBenchRoot(db.url);
  const database = root.resolve('database');
  try {
    await seedEvents(database.db, projectEvents, o.accounts, 'p');
    // The projector as production runs it (`ledger project`, a process of its own), timed from its first commit to
    // its last, so that start-up is not counted.
    const projector = startWorker('projector (projection from zero)', CLI, ['project'], { DATABASE_URL: db.url, LOG_LEVEL: 'warn' });
    let first: { at: number; events: bigint } | null = null;
    let events = 0n;
    const deadline = Date.now() + 30 * 60_000;
    while (events < BigInt(projectEvents) && Date.now() < deadline) {
      events = (await readCheckpoint(database.db, 'ledger', 'ledger')).events;
      if (events > 0n && !first) (first = { at: performance.now(), events }), projector.markLoad('from');
      await new Promise((r) => setTimeout(r, 20));
    }
    projector.markLoad('to');
    const seconds = (performance.now() - (first?.at ?? performance.now())) / 1000;
    const perSecond = Math.round(Number(events - (first?.events ?? 0n)) / seconds);
    const rss = projector.peakRssMb();
    await projector.stop();
    // Ceiling: plain PostgreSQL writing the same number of rows in batches, nothing computed.
    const ceiling = await plainInsertCeiling(database.db, projectEvents);
    results.projection = { events: Number(events), seconds, perSecond, ceilingRowsPerSecond: ceiling, projectorPeakRssMb: rss };
    rows.push(
      { scenario: 'projection', measure: `events/s (${projectEvents} from zero, ledger project)`, value: String(perSecond), ceiling: `${ceiling} rows/s (plain insert)`, ratio: pct(perSecond / ceiling), target: '≥ 25 000' },
      { scenario: 'projection', measure: 'projector peak RSS MB', value: String(rss), ceiling: '', ratio: '', target: '≤ 300' },
    );
    console.error(`projection: ${events} events in ${seconds.toFixed(1)} s`);
  } finally {
    await root.close();
    await db.drop();
  }
}

async function plainInsertCeiling(db: import('kysely').Kysely<any>, count: number): Promise<number> {
  await sql`create table ceiling_rows (id bigint primary key, account_id uuid, amount bigint, balance bigint, description text)`.execute(db);
  const started = performance.now();
  for (let i = 0; i < count; i += 1000) {
    await sql`insert into ceiling_rows select n, md5((n % 1000)::text)::uuid, n, n * 2, 'Chuyển tiền ' || n from generate_series(${i}::bigint, ${Math.min(count, i + 1000) - 1}::bigint) n`.execute(db);
  }
  return Math.round(count / ((performance.now() - started) / 1000));
}

/** Seeds `rebuildEvents` events plus a busy account, and times `ledger rebuild` over them. */
async function rebuild(db: { url: string }) {
  const root = await openBenchRoot(db.url);
  const busy = Math.min(100_000, rebuildEvents);
  try {
    const { db: seedDb } = root.resolve('database');
    await seedEvents(seedDb, rebuildEvents, o.accounts, 's');
    // One account with 100 000 lines, for the one-month statement of a busy account.
    await seedEvents(seedDb, busy, 1, 'busy', o.accounts);
  } finally {
    await root.close();
  }
  // `ledger rebuild` as an operator runs it; it also builds the (empty) grants read model.
  const started = performance.now();
  const worker = startWorker('ledger rebuild', CLI, ['rebuild'], { DATABASE_URL: db.url, LOG_LEVEL: 'warn' });
  const code = await worker.exited;
  const rebuildSeconds = (performance.now() - started) / 1000;
  if (code !== 0) throw new Error(`ledger rebuild exited with ${code}`);
  const eventsReplayed = rebuildEvents + busy;
  results.rebuild = { events: eventsReplayed, seconds: rebuildSeconds, peakRssMb: worker.peakRssMb() };
  rows.push(
    { scenario: 'rebuild', measure: `seconds for ${eventsReplayed} events (ledger rebuild)`, value: rebuildSeconds.toFixed(1), ceiling: '', ratio: '', target: '≤ 45 s for 1 000 000' },
    { scenario: 'rebuild', measure: 'peak RSS MB', value: String(worker.peakRssMb()), ceiling: '', ratio: '', target: '≤ 300' },
  );
  return { busy };
}

/**
 * One-month statements with an API key, beside the same process's `/health` over the same connections: first with
 * the statement cache (the default STATEMENT_CACHE_MB, filled by one pass over the statements first), then a
 * process with it off (every statement computed), on the same database.
 */
async function statements(db: { url: string }, busy: number) {
  const { paths, busyPath } = benchStatements(o.accounts, o.statements);
  const warm = await statementRun(db, paths, busyPath, {});
  const cold = await statementRun(db, paths, busyPath, { STATEMENT_CACHE_MB: '0' });
  results.statements = { distinct: paths.length, warm, cold };
  const n = paths.length;
  rows.push(
    { scenario: 'statements', measure: `req/s, ${o.statementConnections} conns, ${n} statements, API key, cache warm`, value: String(warm.random.perSecond), ceiling: `${warm.health.perSecond} (GET /health)`, ratio: ratio(warm.random.perSecond / warm.health.perSecond), target: '≥ 3 000, ≥ 0.10 × /health' },
    { scenario: 'statements', measure: 'p50 / p99 ms, cache warm', value: `${warm.random.p50} / ${warm.random.p99}`, ceiling: `${warm.health.p50} / ${warm.health.p99}`, ratio: '', target: 'p99 ≤ 20' },
    { scenario: 'statements', measure: `req/s, same, cache off (STATEMENT_CACHE_MB=0)`, value: String(cold.random.perSecond), ceiling: `${cold.health.perSecond} (GET /health)`, ratio: ratio(cold.random.perSecond / cold.health.perSecond), target: '' },
    { scenario: 'statements', measure: 'p50 / p99 ms, cache off', value: `${cold.random.p50} / ${cold.random.p99}`, ceiling: `${cold.health.p50} / ${cold.health.p99}`, ratio: '', target: '' },
    { scenario: 'statements', measure: `1 month of a ${busy}-line account: first ms, then p99 ms (cache warm)`, value: `${warm.busyFirstMs} / ${warm.busy.p99}`, ceiling: '', ratio: '', target: '< 50' },
    { scenario: 'statements', measure: '1 month of the busy account, cache off: p50 / p99 ms', value: `${cold.busy.p50} / ${cold.busy.p99}`, ceiling: '', ratio: '', target: '< 50' },
    { scenario: 'statements', measure: 'errors, non-2xx (statements / health / busy; warm, off)', value: `${errors(warm.random, warm.health, warm.busy)}; ${errors(cold.random, cold.health, cold.busy)}`, ceiling: '', ratio: '', target: '0' },
    { scenario: 'statements', measure: 'peak RSS MB (warm, off)', value: `${warm.peakRssMb}, ${cold.peakRssMb}`, ceiling: '', ratio: '', target: '≤ 300' },
  );
}

/** One service: the statements in turn at full concurrency, then /health the same way, then the busy month alone. */
async function statementRun(db: { url: string }, paths: readonly string[], busyPath: string, env: Record<string, string>) {
  let service: Service | null = null;
  try {
    // The load generator is one client asking as fast as it can: the per-key statement limit would measure itself.
    service = await startService('web (statements)', MAIN, { DATABASE_URL: db.url, WEBHOOK_TOKEN: BENCH_WEBHOOK_TOKEN, API_TOKEN: BENCH_API_TOKEN, LOG_LEVEL: 'warn', RATE_LIMIT_STATEMENTS: '0', ...env });
    const headers = { authorization: `Bearer ${BENCH_API_TOKEN}` };
    const get = async (path: string) => {
      const res = await fetch(`${service!.url}${path}`, { headers });
      if (!res.ok) throw new Error(`${path}: ${res.status}`);
      await res.arrayBuffer();
    };
    // One pass over the statements (8 at a time) fills a cache; without one it only warms PostgreSQL's buffers.
    for (let i = 0; i < paths.length; i += 8) await Promise.all(paths.slice(i, i + 8).map(get));
    // The busy month's first answer is computed whatever the cache (the pass above opened the connections and
    // prepared the query): timed alone.
    const started = performance.now();
    await get(busyPath);
    const busyFirstMs = Math.round(performance.now() - started);
    let k = 0;
    const random = await load(
      {
        url: service.url,
        connections: o.statementConnections,
        duration,
        headers,
        requests: [{ method: 'GET', setupRequest: (req: autocannon.Request) => ({ ...req, path: paths[(k = (k + 1) % paths.length)]! }) }],
      },
      [service],
    );
    const health = await load({ url: `${service.url}/health`, connections: o.statementConnections, duration, headers });
    // One month of the busy account, first page (the default 500 lines; totals and digest cover the whole month).
    const busy = await load({ url: `${service.url}${busyPath}`, connections: 1, duration: Math.min(duration, 5), headers });
    return { random, health, busy, busyFirstMs, peakRssMb: service.peakRssMb() };
  } finally {
    await service?.stop();
  }
}

const errors = (...r: LoadResult[]) => r.map((x) => `${x.errors}, ${x.non2xx}`).join(' / ');

async function store() {
  const measured = await storeScenario(storeAppends, o.accounts, [8, 64]);
  results.store = measured;
  for (const m of measured) {
    rows.push({ scenario: 'store', measure: `durable appends/s, ${m.inFlight} in flight (a new stream each)`, value: String(m.ours), ceiling: `${m.emmett} (Emmett PostgreSQL)`, ratio: ratio(m.ours / m.emmett), target: '' });
  }
}

function summariseProfiles(dir: string): void {
  const text = profiledProcesses()
    .map((p) => (existsSync(p.file) ? formatSummary(summariseProfile(p.file, p.label, p.window ?? undefined)) : `### ${p.label}: no profile written (killed?)`))
    .join('\n\n');
  writeFileSync(join(dir, 'summary.md'), `${text}\n`);
  console.log(`\nWhere the time went (self time; the load's window only, where there was one):\n\n${text}\n\nprofiles and summary.md in ${dir}`);
}

const machine = {
  cpus: `${cpus().length} × ${cpus()[0]?.model ?? 'unknown'}`,
  memoryGb: Math.round(totalmem() / 2 ** 30),
  node: process.version,
  postgres: execSync(`psql "${ADMIN_URL}" -Atc 'show server_version'`).toString().trim(),
  fsync: execSync(`psql "${ADMIN_URL}" -Atc 'show fsync'`).toString().trim(),
};
if (!o.prebuilt) buildDist();
const profileDir = o.profile ? join(ROOT, 'bench', 'profiles', new Date().toISOString().replace(/[:.]/g, '-')) : null;
if (profileDir) profileInto(profileDir);
if (only.has('ingest')) await ingest();
if (only.has('projection')) await projection();
if (only.has('rebuild') || only.has('statements')) {
  const db = await freshDatabase('statements');
  try {
    const { busy } = await rebuild(db);
    if (only.has('statements')) await statements(db, busy);
  } finally {
    if (o.keepDatabase) console.log(`kept the rebuilt database: ${db.url}`);
    else await db.drop();
  }
}
if (only.has('store')) await store();

console.table(rows);
mkdirSync(join(ROOT, 'bench'), { recursive: true });
writeFileSync(join(ROOT, 'bench', 'results.json'), `${JSON.stringify({ at: new Date().toISOString(), machine, options: { duration, projectEvents, rebuildEvents, storeAppends, ...o }, rows, results }, null, 2)}\n`);
console.log(`machine: ${machine.cpus}, ${machine.memoryGb} GiB, Node ${machine.node}, PostgreSQL ${machine.postgres} (fsync ${machine.fsync}); written to bench/results.json`);
if (profileDir) summariseProfiles(profileDir);
process.exit(0);

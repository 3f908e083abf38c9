import { execSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import type autocannon from 'autocannon';
import { Command } from 'commander';
import { sql } from 'kysely';
import { openRoot, type Root } from '../src/composition-root';
import { loadConfig } from '../src/config';
import { readCheckpoint } from '../src/infrastructure/projection-store';
import { accountIdOf } from '../src/projections/ledger.projection';
import { seedEvents, webhookBodies } from './generate';
import { ADMIN_URL } from '../test/support/postgres';
import { freshDatabase, load, ROOT, startService, startWorker } from './lib';

/**
 * `npm run bench`: each scenario runs its ceiling in the same run, so the ratio is what we compare.
 * `npm run bench -- --quick` fits in about a minute.
 */
const program = new Command('bench')
  .option('--quick', 'small sizes and short durations')
  .option('--duration <s>', 'seconds per load test', Number)
  .option('--ingest-connections <n>', 'connections for ingest', Number, 64)
  .option('--statement-connections <n>', 'connections for statements', Number, 32)
  .option('--project-events <n>', 'events projected from zero', Number)
  .option('--rebuild-events <n>', 'events in the rebuild and statement scenarios', Number)
  .option('--accounts <n>', 'accounts', Number, 1000)
  .option('--only <list>', 'comma-separated: ingest,projection,statements')
  .option('--projections-in-service', 'ingest: project inside the web process instead of a projector process')
  .parse();

const o = program.opts<{
  quick?: boolean;
  duration?: number;
  ingestConnections: number;
  statementConnections: number;
  projectEvents?: number;
  rebuildEvents?: number;
  accounts: number;
  only?: string;
  projectionsInService: boolean;
}>();
const duration = o.duration ?? (o.quick ? 3 : 10);
const projectEvents = o.projectEvents ?? (o.quick ? 20_000 : 200_000);
const rebuildEvents = o.rebuildEvents ?? (o.quick ? 100_000 : 1_000_000);
const only = new Set((o.only ?? 'ingest,projection,statements').split(','));
const rows: { scenario: string; measure: string; value: string; ceiling: string; ratio: string; target: string }[] = [];
const results: Record<string, unknown> = {};
/** The stores of a bench database as the service opens them (migrated, read-model schemas made), for seeding and reading. */
const openBenchRoot = (url: string): Promise<Root> => openRoot(loadConfig({ DATABASE_URL: url, DB_POOL_SIZE: '4', LOG_LEVEL: 'silent' }));
const TOKEN = 'bench-webhook-token-0123456789abcdef';

async function ingest() {
  const makeBody = webhookBodies(o.accounts);
  const request = {
    method: 'POST' as const,
    path: `/webhooks/bankhub?token=${TOKEN}`,
    headers: { 'content-type': 'application/json' },
    setupRequest: (req: autocannon.Request) => ({ ...req, body: makeBody() }),
  };
  const bare = await startService('bench/bare-server.ts', {});
  const ceiling = await load({ url: bare.url, connections: o.ingestConnections, duration, requests: [request] });
  const bareRss = bare.peakRssMb();
  await bare.stop();

  const db = await freshDatabase('ingest');
  // The production shape (docker-compose.yml): the web process books webhooks, a projector process projects them.
  const service = await startService('src/main.ts', { DATABASE_URL: db.url, WEBHOOK_TOKEN: TOKEN, LOG_LEVEL: 'warn', RUN_PROJECTIONS: String(Boolean(o.projectionsInService)) });
  const projector = o.projectionsInService ? null : startWorker('src/cli.ts', ['project'], { DATABASE_URL: db.url, LOG_LEVEL: 'warn' });
  try {
    const result = await load({ url: service.url, connections: o.ingestConnections, duration, requests: [request] });
    const rss = service.peakRssMb();
    const projectorRss = projector?.peakRssMb() ?? null;
    results.ingest = { service: result, ceiling, peakRssMb: rss, projectorPeakRssMb: projectorRss, ceilingPeakRssMb: bareRss, connections: o.ingestConnections, duration, projectionsInService: o.projectionsInService };
    rows.push(
      { scenario: 'ingest', measure: 'durable webhooks/s', value: String(result.perSecond), ceiling: `${ceiling.perSecond} (bare fastify)`, ratio: pct(result.perSecond / ceiling.perSecond), target: '≥ 10 000, ≥ 30 %' },
      { scenario: 'ingest', measure: 'p50 / p99 ms', value: `${result.p50} / ${result.p99}`, ceiling: `${ceiling.p50} / ${ceiling.p99}`, ratio: '', target: 'p99 ≤ 25' },
      { scenario: 'ingest', measure: 'errors, non-2xx', value: `${result.errors}, ${result.non2xx}`, ceiling: `${ceiling.errors}, ${ceiling.non2xx}`, ratio: '', target: '0' },
      { scenario: 'ingest', measure: projector ? 'peak RSS MB (web / projector)' : 'peak RSS MB', value: projector ? `${rss} / ${projectorRss}` : String(rss), ceiling: String(bareRss), ratio: '', target: '≤ 300' },
    );
  } finally {
    await projector?.stop();
    await service.stop();
    await db.drop();
  }
}

async function projection() {
  const db = await freshDatabase('projection');
  const root = await openBenchRoot(db.url);
  const database = root.resolve('database');
  try {
    await seedEvents(database.db, projectEvents, o.accounts, 'p');
    // The projector as production runs it (`ledger project`, a process of its own), timed from its first commit to
    // its last, so that start-up is not counted.
    const projector = startWorker('src/cli.ts', ['project'], { DATABASE_URL: db.url, LOG_LEVEL: 'warn' });
    let first: { at: number; events: bigint } | null = null;
    let events = 0n;
    const deadline = Date.now() + 30 * 60_000;
    while (events < BigInt(projectEvents) && Date.now() < deadline) {
      events = (await readCheckpoint(database.db, 'ledger', 'ledger')).events;
      if (events > 0n && !first) first = { at: performance.now(), events };
      await new Promise((r) => setTimeout(r, 20));
    }
    const seconds = (performance.now() - (first?.at ?? performance.now())) / 1000;
    const perSecond = Math.round(Number(events - (first?.events ?? 0n)) / seconds);
    const rss = projector.peakRssMb();
    await projector.stop();
    // Ceiling: plain PostgreSQL writing the same number of rows in batches, nothing computed.
    const ceiling = await plainInsertCeiling(database.db, projectEvents);
    results.projection = { events: Number(events), seconds, perSecond, ceilingRowsPerSecond: ceiling, projectorPeakRssMb: rss };
    rows.push(
      { scenario: 'projection', measure: `events/s (${projectEvents} from zero, ledger project)`, value: String(perSecond), ceiling: `${ceiling} rows/s (plain insert)`, ratio: pct(perSecond / ceiling), target: '≥ 20 000' },
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

async function statements() {
  const db = await freshDatabase('statements');
  const root = await openBenchRoot(db.url);
  let service: Awaited<ReturnType<typeof startService>> | null = null;
  try {
    const { db: seedDb } = root.resolve('database');
    await seedEvents(seedDb, rebuildEvents, o.accounts, 's');
    // One account with 100 000 lines, for the one-month statement of a busy account.
    const busy = Math.min(100_000, rebuildEvents);
    await seedEvents(seedDb, busy, 1, 'busy', o.accounts);
    await root.close();
    // `ledger rebuild` as an operator runs it; it also builds the (empty) grants read model.
    const started = performance.now();
    const rebuild = startWorker('src/cli.ts', ['rebuild'], { DATABASE_URL: db.url, LOG_LEVEL: 'warn' });
    const code = await rebuild.exited;
    const rebuildSeconds = (performance.now() - started) / 1000;
    if (code !== 0) throw new Error(`ledger rebuild exited with ${code}`);
    const eventsReplayed = rebuildEvents + busy;
    results.rebuild = { events: eventsReplayed, seconds: rebuildSeconds, peakRssMb: rebuild.peakRssMb() };
    rows.push(
      { scenario: 'rebuild', measure: `seconds for ${eventsReplayed} events (ledger rebuild)`, value: rebuildSeconds.toFixed(1), ceiling: '', ratio: '', target: '≤ 60 s for 1 000 000' },
      { scenario: 'rebuild', measure: 'peak RSS MB', value: String(rebuild.peakRssMb()), ceiling: '', ratio: '', target: '≤ 300' },
    );

    // The load generator is one client asking as fast as it can: the per-key statement limit would measure itself.
    service = await startService('src/main.ts', { DATABASE_URL: db.url, WEBHOOK_TOKEN: TOKEN, LOG_LEVEL: 'warn', RATE_LIMIT_STATEMENTS: '0' });
    const ids = Array.from({ length: o.accounts }, (_, i) => accountIdOf('3c26a8ed-efb5-11ed-8620-0ae7e48c82d8', String(i).padStart(12, '0')));
    let k = 0;
    const month = (m: number) => `from=2025-${String(m).padStart(2, '0')}-01&to=2025-${String(m).padStart(2, '0')}-28`;
    const result = await load({
      url: service.url,
      connections: o.statementConnections,
      duration,
      requests: [{ method: 'GET', setupRequest: (req: autocannon.Request) => ({ ...req, path: `/accounts/${ids[(k = (k * 7 + 13) % ids.length)]}/statement?${month((k % 12) + 1)}` }) }],
    });
    const busyId = accountIdOf('3c26a8ed-efb5-11ed-8620-0ae7e48c82d8', String(o.accounts).padStart(12, '0'));
    // One month of the busy account, first page (the default 500 lines; totals and digest cover the whole month).
    const busyResult = await load({ url: `${service.url}/accounts/${busyId}/statement?${month(6)}`, connections: 1, duration: Math.min(duration, 5) });
    const rss = service.peakRssMb();
    results.statements = { events: eventsReplayed, rebuildSeconds, random: result, busyAccount: busyResult, peakRssMb: rss };
    rows.push(
      { scenario: 'statements', measure: `req/s, ${o.statementConnections} conns, random accounts`, value: String(result.perSecond), ceiling: '', ratio: '', target: '≥ 3 000' },
      { scenario: 'statements', measure: 'p50 / p99 ms', value: `${result.p50} / ${result.p99}`, ceiling: '', ratio: '', target: 'p99 ≤ 20' },
      { scenario: 'statements', measure: `1 month of a ${busy}-line account, p99 ms`, value: String(busyResult.p99), ceiling: '', ratio: '', target: '< 50' },
      { scenario: 'statements', measure: 'errors, non-2xx', value: `${result.errors}, ${result.non2xx}`, ceiling: '', ratio: '', target: '0' },
      { scenario: 'statements', measure: 'peak RSS MB', value: String(rss), ceiling: '', ratio: '', target: '≤ 300' },
    );
  } finally {
    await service?.stop();
    await root.close(); // closed already after seeding, unless seeding failed
    await db.drop();
  }
}

const pct = (x: number) => `${(x * 100).toFixed(0)} %`;

const machine = {
  cpus: `${cpus().length} × ${cpus()[0]?.model ?? 'unknown'}`,
  memoryGb: Math.round(totalmem() / 2 ** 30),
  node: process.version,
  postgres: execSync(`psql "${ADMIN_URL}" -Atc 'show server_version'`).toString().trim(),
  fsync: execSync(`psql "${ADMIN_URL}" -Atc 'show fsync'`).toString().trim(),
};
if (only.has('ingest')) await ingest();
if (only.has('projection')) await projection();
if (only.has('statements')) await statements();

console.table(rows);
mkdirSync(join(ROOT, 'bench'), { recursive: true });
writeFileSync(join(ROOT, 'bench', 'results.json'), `${JSON.stringify({ at: new Date().toISOString(), machine, options: { duration, projectEvents, rebuildEvents, ...o }, rows, results }, null, 2)}\n`);
console.log(`machine: ${machine.cpus}, ${machine.memoryGb} GiB, Node ${machine.node}, PostgreSQL ${machine.postgres} (fsync ${machine.fsync}); written to bench/results.json`);
process.exit(0);

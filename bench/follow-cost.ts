import { spawn } from 'node:child_process';
import { openSync, readdirSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { openRoot } from '../src/composition-root';
import { loadConfig } from '../src/config';
import { decodePosition } from '../src/application/ports/event-store';
import { ADMIN_URL } from '../test/support/postgres';
import { cpuMicros, freshDatabase, profileInto, startWorker } from './lib';
import { eventsOfIngest, run } from './store';

/**
 * What the projector (`ledger project`, dist/cli.js) costs an event while it FOLLOWS a log appended at a held rate:
 * the projector's CPU and its PostgreSQL backends' CPU (its connections carry an application_name of their own, so
 * the appender's backends are left out), per event appended. A warm-up first appends `--warm` events and lets the
 * projector catch up (accounts known, JIT warm); the window then appends `--rate` events a second for `--seconds`
 * and ends when the projector's checkpoint reaches the log's head. Where the server has pg_stat_statements (a private
 * cluster: TEST_PG_ADMIN_URL), its statements of the window are listed too.
 *
 *   flock /tmp/balance-ledger-cpu.lock npx tsx bench/follow-cost.ts --rate 1500 --seconds 8 --warm 3000
 */
const { values: o } = parseArgs({
  options: {
    rate: { type: 'string', default: '1500' },
    seconds: { type: 'string', default: '8' },
    warm: { type: 'string', default: '3000' },
    accounts: { type: 'string', default: '1000' },
    statements: { type: 'boolean', default: false },
    profile: { type: 'string' },
    flags: { type: 'string' },
  },
});
const rate = Number(o.rate);
const seconds = Number(o.seconds);
const warmCount = Number(o.warm);
const APP = 'follow_cost_projector';

const db = await freshDatabase('follow');
const root = await openRoot(loadConfig({ DATABASE_URL: db.url, LOG_LEVEL: 'silent' }));
const store = root.resolve('eventStore');
const admin = new pg.Client({ connectionString: ADMIN_URL });
await admin.connect();
const client = new pg.Client({ connectionString: db.url });
await client.connect();
if (o.profile) profileInto(o.profile);
const projectorUrl = new URL(db.url);
projectorUrl.searchParams.set('application_name', APP);
const projector = o.flags
  ? spawnedWorker(o.flags.split(' '), { DATABASE_URL: projectorUrl.toString(), LOG_LEVEL: 'warn' })
  : startWorker('projector (follow)', 'dist/cli.js', ['project'], { DATABASE_URL: projectorUrl.toString(), LOG_LEVEL: 'warn' });

/** The projector with extra node flags (e.g. --trace-gc), its stdout in /tmp/follow-cost-projector.log. */
function spawnedWorker(extra: readonly string[], env: Record<string, string>) {
  const scripts = (JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: Record<string, string> }).scripts;
  const words = scripts.ledger!.trim().split(/\s+/);
  const flags = words.slice(1, words.indexOf('dist/cli.js'));
  const out = openSync('/tmp/follow-cost-projector.log', 'w');
  const child = spawn(process.execPath, [...flags, ...extra, 'dist/cli.js', 'project'], { env: { ...process.env, ...env }, stdio: ['ignore', out, 'inherit'] });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  return {
    cpuMicros: () => cpuMicros(child.pid),
    stop: async () => (child.kill('SIGTERM'), await exited),
  };
}

/** The projector's pid: the child of this process that runs dist/cli.js. */
const projectorPid = (() => {
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(') ') + 2).split(' ')[1]);
      if (ppid === process.pid && readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('dist/cli.js')) return Number(pid);
    } catch {}
  }
  throw new Error('projector not found');
})();
const head = async () => BigInt((await client.query<{ h: string | null }>('select max(seq) as h from events')).rows[0]?.h ?? 0);
const projected = async () => {
  try {
    const { rows } = await client.query<{ position: string | null }>(`select position from ledger.checkpoint where projection = 'ledger'`);
    const position = rows[0]?.position ?? null;
    return position === null ? 0n : decodePosition(position).minor;
  } catch {
    return -1n;
  }
};
const caughtUp = async () => {
  const h = await head();
  while ((await projected()) < h) await new Promise((r) => setTimeout(r, 5));
};
const projectorBackends = async () => {
  const { rows } = await client.query<{ pid: number }>('select pid from pg_stat_activity where application_name = $1', [APP]);
  return rows.map((r) => r.pid);
};
/** User and system CPU (µs) of each thread of a process, by thread name. */
function threadsOf(pid: number | undefined): Map<string, { user: number; sys: number }> {
  const out = new Map<string, { user: number; sys: number }>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const f = stat.slice(stat.lastIndexOf(') ') + 2).split(' ');
      const key = tid === String(pid) ? 'main' : name;
      const t = out.get(key) ?? { user: 0, sys: 0 };
      t.user += Number(f[11]) * 10_000;
      t.sys += Number(f[12]) * 10_000;
      out.set(key, t);
    } catch {}
  }
  return out;
}
const ticksOf = (pids: readonly number[]) => new Map(pids.map((pid) => [pid, cpuMicros(pid)]));
const hasStatements = (await admin.query(`select 1 from pg_extension where extname = 'pg_stat_statements'`)).rows.length > 0;

try {
  const all = await eventsOfIngest(warmCount + Math.ceil(rate * seconds), Number(o.accounts));
  const warm = all.slice(0, warmCount);
  const timed = all.slice(warmCount);
  const append = (a: (typeof all)[number]) => store.appendToStream(a.streamId, [a.event], 'no_stream');
  await run(warm, 64, append);
  while ((await projected()) < 0n) await new Promise((r) => setTimeout(r, 50));
  await caughtUp();
  await new Promise((r) => setTimeout(r, 1000));

  if (hasStatements) await admin.query('select pg_stat_statements_reset()');
  const pidsBefore = await projectorBackends();
  const backendsBefore = ticksOf(pidsBefore);
  const projectorBefore = projector.cpuMicros();
  const threadsBefore = threadsOf(projectorPid);
  const started = performance.now();
  // Held rate: every tick, what should have been appended by now is sent (the store groups them).
  let sent = 0;
  const pending: Promise<unknown>[] = [];
  while (sent < timed.length) {
    const due = Math.min(timed.length, Math.floor(((performance.now() - started) / 1000) * rate));
    for (; sent < due; sent++) pending.push(append(timed[sent]!));
    await new Promise((r) => setTimeout(r, 5));
  }
  await Promise.all(pending);
  const appendedIn = (performance.now() - started) / 1000;
  await caughtUp();
  const lagSeconds = (performance.now() - started) / 1000 - appendedIn;
  const projectorMicros = projector.cpuMicros() - projectorBefore;
  const threads = [...threadsOf(projectorPid)].map(([name, t]) => {
    const b = threadsBefore.get(name) ?? { user: 0, sys: 0 };
    return `${name} ${Math.round((t.user - b.user) / timed.length)}+${Math.round((t.sys - b.sys) / timed.length)}`;
  });
  const pidsAfter = await projectorBackends();
  let backendMicros = 0;
  for (const pid of pidsAfter) backendMicros += cpuMicros(pid) - (backendsBefore.get(pid) ?? 0);
  const events = timed.length;
  console.log(
    JSON.stringify({
      rate,
      events,
      appendedIn: Number(appendedIn.toFixed(2)),
      lagSeconds: Number(lagSeconds.toFixed(2)),
      projectorMicrosPerEvent: Math.round(projectorMicros / events),
      projectorBackendsMicrosPerEvent: Math.round(backendMicros / events),
      backends: `${pidsBefore.length}→${pidsAfter.length}`,
      threads: threads.join(', '),
      load: (await import('node:os')).loadavg()[0]?.toFixed(2),
    }),
  );
  if (hasStatements && o.statements) {
    const { rows } = await admin.query(
      `select calls, rows, round(total_exec_time::numeric, 1) as total_ms, round((total_exec_time / greatest(calls, 1))::numeric, 3) as mean_ms,
              round((1000 * total_exec_time / $1)::numeric, 2) as us_per_event, left(regexp_replace(query, '\\s+', ' ', 'g'), 150) as query
       from pg_stat_statements s join pg_database d on d.oid = s.dbid where d.datname = $2 order by total_exec_time desc limit 25`,
      [events, db.name],
    );
    console.table(rows);
  }
} finally {
  await projector.stop();
  await client.end();
  await admin.end();
  await root.close();
  await db.drop();
}

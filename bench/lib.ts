import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { migrateToLatest } from '../src/infrastructure/postgres/migrations';
import { accountIdOf } from '../src/projections/ledger.projection';
import { ADMIN_URL, createTestDatabase } from '../test/support/postgres';
import { freePort, NODE_FLAGS, ROOT } from '../test/support/service';
import { webhookBodies } from './generate';
import { monotonicMicros } from './profile-summary';

export { freePort, NODE_FLAGS, ROOT } from '../test/support/service';

/** The secrets every service the bench starts is given. */
export const BENCH_WEBHOOK_TOKEN = 'bench-webhook-token-0123456789abcdef';
export const BENCH_API_TOKEN = 'bench-api-token-0123456789abcdef';

/** The ingest load's requests: distinct TRANSACTIONS webhooks over `accounts` accounts, POSTed with the bench's token. */
export function webhookRequests(accounts: number): autocannon.Request[] {
  const makeBody = webhookBodies(accounts);
  return [
    {
      method: 'POST',
      path: `/webhooks/bankhub?token=${BENCH_WEBHOOK_TOKEN}`,
      headers: { 'content-type': 'application/json' },
      setupRequest: (req: autocannon.Request) => ({ ...req, body: makeBody() }),
    },
  ];
}

/**
 * The statements scenario's requests over a seeded database: distinct one-month statements spread over the accounts and
 * months, asked in turn, and the busy account's month.
 */
export function benchStatements(accounts: number, statements: number) {
  const idOf = (n: number) => accountIdOf('3c26a8ed-efb5-11ed-8620-0ae7e48c82d8', String(n).padStart(12, '0'));
  const month = (m: number) => `from=2025-${String(m).padStart(2, '0')}-01&to=2025-${String(m).padStart(2, '0')}-28`;
  const paths = Array.from({ length: Math.min(statements, accounts * 12) }, (_, i) => `/accounts/${idOf((i * 7) % accounts)}/statement?${month((i % 12) + 1)}`);
  const busyId = idOf(accounts);
  return { paths, busyId, busyPath: `/accounts/${busyId}/statement?${month(6)}` };
}

/** A database of the benchmark's own, dropped afterwards (the same helper the tests use). */
export async function freshDatabase(label: string): Promise<{ url: string; name: string; drop: () => Promise<void> }> {
  return createTestDatabase(`bench_${label}`);
}

/** A fresh database with the service's tables (migrated) and one connection to it, for timing statements alone. */
export async function migratedClient(label: string): Promise<{ client: pg.Client; url: string; drop: () => Promise<void> }> {
  const database = await freshDatabase(label);
  const migrating = new Kysely<never>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: database.url, max: 1 }) }) });
  await migrateToLatest(migrating as never);
  await migrating.destroy();
  const client = new pg.Client({ connectionString: database.url });
  await client.connect();
  return { client, url: database.url, drop: async () => (await client.end(), await database.drop()) };
}

/** The bench runs what production runs: the bundle in dist/, built now from the current sources. */
export function buildDist(): void {
  const build = spawnSync(process.execPath, [join(ROOT, 'tools', 'build.mjs')], { cwd: ROOT, stdio: 'inherit' });
  if (build.status !== 0) throw new Error('npm run build failed');
}

/** A process the bench started and profiled (with --profile): its label, its profile, the window under load. */
export interface Profiled {
  readonly label: string;
  readonly file: string;
  window: { from: number; to: number } | null;
}

let profileDir: string | null = null;
const profiled: Profiled[] = [];
/** From now on every process started is profiled (`node --cpu-prof`) into `dir`. */
export function profileInto(dir: string): void {
  mkdirSync(dir, { recursive: true });
  profileDir = dir;
}
export const profiledProcesses = (): readonly Profiled[] => profiled;
let stdoutPiped = false;
/** From now on every process started writes its standard output to a pipe that is read and dropped, as a log collector's. */
export function pipeStandardOutput(): void {
  stdoutPiped = true;
}

/**
 * The node flags of a package.json script (`npm start` for dist/main.js, `npm run ledger` for dist/cli.js), with
 * which the bench starts that script: it runs them as production does. Other processes get NODE_FLAGS.
 */
function scriptFlags(script: string): string[] {
  const name = SCRIPT_OF[script];
  if (name === undefined) return [...NODE_FLAGS];
  const scripts = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
  const words = (scripts[name] ?? '').trim().split(/\s+/);
  const at = words.indexOf(script);
  if (words[0] !== 'node' || at < 0) throw new Error(`package.json: the ${name} script is not \`node <flags> ${script}\``);
  return words.slice(1, at);
}
const SCRIPT_OF: Record<string, string> = { 'dist/main.js': 'start', 'dist/cli.js': 'ledger' };

function spawnNode(label: string, script: string, args: readonly string[], env: Record<string, string>, stdio: 'ipc' | 'none'): { child: ChildProcess; profile: Profiled | null } {
  let profile: Profiled | null = null;
  const flags = scriptFlags(script);
  if (profileDir) {
    const name = `${String(profiled.length + 1).padStart(2, '0')}-${label.replace(/[^a-z0-9]+/gi, '-')}.cpuprofile`;
    flags.push('--cpu-prof', `--cpu-prof-dir=${profileDir}`, `--cpu-prof-name=${name}`);
    profile = { label, file: join(profileDir, name), window: null };
    profiled.push(profile);
  }
  const child = spawn(process.execPath, [...flags, script, ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', stdoutPiped ? 'pipe' : 'ignore', 'inherit', ...(stdio === 'ipc' ? (['ipc'] as const) : [])],
  });
  child.stdout?.resume();
  return { child, profile };
}

/** Peak resident memory (VmHWM) of a process, sampled while it lives: /proc forgets a process once it has exited. */
function peakRss(child: ChildProcess) {
  let peak = 0;
  const sample = () => {
    try {
      peak = Math.max(peak, Math.round(Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1] ?? 0) / 1024));
    } catch {}
  };
  const sampler = setInterval(sample, 200);
  child.once('exit', () => clearInterval(sampler));
  return () => (sample(), peak);
}

/** CPU time a process has used so far (user + system, from /proc: clock ticks of 10 ms), in µs; NaN once it is gone. */
export function cpuMicros(pid: number | undefined): number {
  try {
    // The fields after the command name (which may hold spaces, so it is skipped by its closing parenthesis).
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1_000_000) / TICKS_PER_SECOND;
  } catch {
    return Number.NaN;
  }
}
const TICKS_PER_SECOND = 100;

/**
 * CPU used so far by each PostgreSQL backend connected to `database` (its process title names the database), in
 * ticks by pid: backends of other databases on the same server, and the server's own helpers, are left out.
 */
export function backendTicks(database: string): Map<string, number> {
  const ticks = new Map<string, number>();
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      if (!readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(` ${database} `)) continue;
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      ticks.set(pid, Number(fields[11]) + Number(fields[12]));
    } catch {}
  }
  return ticks;
}

/** The CPU (µs) that the backends of the second reading used since the first (a backend that exited is not counted). */
export function backendMicrosBetween(before: Map<string, number>, after: Map<string, number>): number {
  let ticks = 0;
  for (const [pid, t] of after) ticks += t - (before.get(pid) ?? 0);
  return (ticks * 1_000_000) / TICKS_PER_SECOND;
}

/** CPU the whole machine used so far (every core, idle and I/O wait left out; /proc/stat's first line), in µs. */
export function machineCpuMicros(): number {
  const [user, nice, system, , , irq, softirq, steal] = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  return (((user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0)) * 1_000_000) / TICKS_PER_SECOND;
}

export interface Worker {
  readonly exited: Promise<number | null>;
  /** CPU time used so far (user + system), in µs. */
  cpuMicros(): number;
  /** Peak resident memory of the process so far, in MB. */
  peakRssMb(): number;
  /** Marks the start and the end of the window its profile summary counts (the load, not start-up). */
  markLoad(edge: 'from' | 'to'): void;
  stop(): Promise<void>;
}

export interface Service extends Worker {
  readonly url: string;
}

/** A Node process without HTTP (the projector, `ledger rebuild`), started from the compiled bundle. */
export function startWorker(label: string, script: string, args: readonly string[], env: Record<string, string>): Worker {
  const { child, profile } = spawnNode(label, script, args, env, 'none');
  const peakRssMb = peakRss(child);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    exited,
    peakRssMb,
    cpuMicros: () => cpuMicros(child.pid),
    markLoad(edge) {
      if (!profile) return;
      profile.window ??= { from: 0, to: Number.MAX_SAFE_INTEGER };
      profile.window[edge] = monotonicMicros();
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

/**
 * Starts an HTTP process (one process, so its memory is its own) and waits until `/health` answers. `ledger project`
 * answers on METRICS_PORT (`portVariable`), so that the load starts only once the projector is running.
 */
export async function startService(
  label: string,
  script: string,
  env: Record<string, string>,
  { args = [], portVariable = 'PORT' }: { args?: readonly string[]; portVariable?: 'PORT' | 'METRICS_PORT' } = {},
): Promise<Service> {
  const port = await freePort();
  const worker = startWorker(label, script, args, { ...env, [portVariable]: String(port), HOST: '127.0.0.1', DRAIN_DELAY_MS: '0' });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  let exited = false;
  void worker.exited.then(() => (exited = true));
  for (;;) {
    if (exited) throw new Error(`${script} exited before answering`);
    if ((await fetch(`${url}/health`).catch(() => null))?.ok) break;
    if (Date.now() > deadline) {
      await worker.stop();
      throw new Error(`${script} did not start`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { ...worker, url };
}

export interface LoadResult {
  readonly requests: number;
  readonly perSecond: number;
  readonly p50: number;
  readonly p99: number;
  readonly errors: number;
  readonly non2xx: number;
  /** CPU each process given used per request during the run, in µs (steadier than throughput on a shared machine). */
  readonly cpuMicrosPerRequest: readonly number[];
  /** CPU per request of the PostgreSQL backends connected to the database given (none given: 0), in µs. */
  readonly postgresCpuMicrosPerRequest: number;
  /** CPU per request of the whole machine (the load generator included), in µs. */
  readonly machineCpuMicrosPerRequest: number;
  /**
   * The part of the machine's that neither the processes given, nor their backends, nor the load generator (this
   * process) used, in µs a request: the server's helpers, the kernel's writeback, other programs. Large, it says the
   * run was disturbed.
   */
  readonly outsideCpuMicrosPerRequest: number;
}

/**
 * Before a load: PostgreSQL writes its dirty buffers (CHECKPOINT) and the kernel its dirty pages (sync), so that what
 * the previous scenario wrote is not flushed, at the cost of the fsyncs and the CPU, inside the next one's window.
 * CHECKPOINT needs a superuser or pg_checkpoint; where the admin role has neither, only the sync runs.
 */
export async function flushWrites(): Promise<void> {
  const client = new pg.Client({ connectionString: ADMIN_URL });
  await client.connect();
  try {
    await client.query('checkpoint').catch((error: unknown) => console.warn(`bench: no CHECKPOINT before the load (${(error as Error).message})`));
  } finally {
    await client.end();
  }
  spawnSync('sync');
}

/** One autocannon run; the processes given have their profile window set to it and their CPU counted. */
export async function load(options: autocannon.Options, under: readonly Worker[] = [], database?: string): Promise<LoadResult> {
  for (const w of under) w.markLoad('from');
  const cpuBefore = under.map((w) => w.cpuMicros());
  const [backendsBefore, machineBefore, generatorBefore] = [database ? backendTicks(database) : new Map<string, number>(), machineCpuMicros(), process.cpuUsage()];
  const result = await autocannon(options);
  const cpuUsed = under.map((w, i) => w.cpuMicros() - cpuBefore[i]!);
  const machineUsed = machineCpuMicros() - machineBefore;
  const generator = process.cpuUsage(generatorBefore);
  const postgresUsed = database ? backendMicrosBetween(backendsBefore, backendTicks(database)) : 0;
  const outside = machineUsed - postgresUsed - (generator.user + generator.system) - cpuUsed.reduce((a, b) => a + b, 0);
  for (const w of under) w.markLoad('to');
  const perRequest = (micros: number) => Math.round(micros / Math.max(1, result.requests.total));
  return {
    cpuMicrosPerRequest: cpuUsed.map(perRequest),
    postgresCpuMicrosPerRequest: perRequest(postgresUsed),
    machineCpuMicrosPerRequest: perRequest(machineUsed),
    outsideCpuMicrosPerRequest: perRequest(Math.max(0, outside)),
    requests: result.requests.total,
    perSecond: Math.round(result.requests.total / (result.duration || 1)),
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
  };
}

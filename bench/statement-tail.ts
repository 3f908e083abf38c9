/**
 * Where the statements bench's tail comes from (issue 14 item 5: warm p99 ≤ 20 ms, the busy month < 50 ms). On a
 * database the bench kept (`npm run bench -- --only statements --keep-database`), for each build given (a worktree
 * with dist/ built), in turn for several rounds, the bench's statement run as it is (bench/run.ts `statementRun`: a
 * fresh service, the pass over the 500 statements 8 at a time, the busy month once, the 500 in turn over 32
 * connections, /health the same way, the busy month over one connection), with the cache and then with it off,
 * and beside each load what statement-tail-hook.mjs saw inside the service: its own latency per request (request
 * event to the response's finish), the event loop's delay, GC pauses; the CPU of the service, of PostgreSQL's
 * backends, of this process (the load generator) and of the machine; the load average. The SHA-256 of the pass's
 * and the busy month's answers too.
 *
 *   flock /tmp/balance-ledger-cpu.lock npx tsx bench/statement-tail.ts --database-url <url> --build <base worktree> --build . --rounds 1
 */
import { createHash } from 'node:crypto';
import { loadavg } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { resolve } from 'node:path';
import autocannon from 'autocannon';
import { Command } from 'commander';
import { headers, startKeptService } from './kept-service';
import { backendMicrosBetween, backendTicks, benchStatements, cpuMicros, machineCpuMicros } from './lib';

const o = new Command('statement-tail')
  .requiredOption('--database-url <url>', 'a database the statements bench kept')
  .option('--build <dir...>', 'worktrees whose dist/main.js to run, alternated', ['.'])
  .option('--rounds <n>', 'rounds', Number, 1)
  .option('--duration <s>', 'seconds per load (the bench: 10)', Number, 10)
  .option('--modes <list>', 'warm,off (the bench runs both, in that order)', 'warm,off')
  .option('--accounts <n>', 'accounts of the bench database', Number, 1000)
  .option('--statements <n>', 'distinct statements', Number, 500)
  .option('--env <k=v...>', 'extra environment for the service (every build)', [])
  .option('--phases <list>', 'random,health,busy (the bench runs all three, in that order)', 'random,health,busy')
  .option('--profile <dir>', 'the service runs with --cpu-prof into this folder')
  .option('--node-arg <arg...>', 'more node flags for the service', [])
  .option('--stdout', "the service's stdout to this process's stderr")
  .parse()
  .opts<{ nodeArg: string[]; stdout?: boolean; databaseUrl: string; build: string[]; rounds: number; duration: number; modes: string; accounts: number; statements: number; env: string[]; phases: string; profile?: string }>();
const phases = new Set(o.phases.split(','));

const HOOK = resolve(import.meta.dirname, 'statement-tail-hook.mjs');
const database = new URL(o.databaseUrl).pathname.slice(1);
const { paths, busyId, busyPath } = benchStatements(o.accounts, o.statements);
const extraEnv = Object.fromEntries(o.env.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));

async function measured(url: string, pid: number, options: autocannon.Options) {
  await fetch(`${url}/__tail`);
  const [svc0, pg0, me0, m0] = [cpuMicros(pid), backendTicks(database), process.cpuUsage(), machineCpuMicros()];
  // The load generator's own event loop (autocannon runs in this process): its delays are in every latency it measures.
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  const r = await autocannon(options);
  loop.disable();
  const me = process.cpuUsage(me0);
  const [svc, pg, m] = [cpuMicros(pid) - svc0, backendMicrosBetween(pg0, backendTicks(database)), machineCpuMicros() - m0];
  const inside = (await (await fetch(`${url}/__tail`)).json()) as Record<string, unknown>;
  const l = r.latency as unknown as Record<string, number>;
  const s = r.duration || 1;
  return {
    perSecond: Math.round(r.requests.total / s),
    client: { p50: l.p50, p90: l.p90, p99: l.p99, p999: l.p99_9, max: l.max },
    errors: r.errors + r.timeouts + r.non2xx,
    cpuPct: { service: Math.round(svc / s / 10_000), postgres: Math.round(pg / s / 10_000), loadGen: Math.round((me.user + me.system) / s / 10_000), machine: Math.round(m / s / 10_000) },
    inside,
    loadGenLoop: { p50: +(loop.percentile(50) / 1e6).toFixed(2), p99: +(loop.percentile(99) / 1e6).toFixed(2), max: +(loop.max / 1e6).toFixed(2) },
    load1: +loadavg()[0]!.toFixed(2),
  };
}

async function run(dir: string, mode: string) {
  const service = await startKeptService(dir, o.databaseUrl, {
    hook: HOOK,
    nodeArgs: [...(o.profile ? ['--cpu-prof', `--cpu-prof-dir=${resolve(o.profile)}`] : []), ...o.nodeArg],
    env: { TAIL_BUSY_ID: busyId, ...(mode === 'off' ? { STATEMENT_CACHE_MB: '0' } : {}), ...extraEnv },
    stdout: o.stdout ? process.stderr : 'ignore',
  });
  const { url, child } = service;
  try {
    const passSha = await service.pass(paths);
    const started = performance.now();
    const busyBody = await service.get(busyPath);
    const busyFirstMs = Math.round(performance.now() - started);
    let k = 0;
    const random = !phases.has('random') ? null : await measured(url, child.pid!, {
      url,
      connections: 32,
      duration: o.duration,
      headers,
      requests: [{ method: 'GET', setupRequest: (req: autocannon.Request) => ({ ...req, path: paths[(k = (k + 1) % paths.length)]! }) }],
    });
    const health = !phases.has('health') ? null : await measured(url, child.pid!, { url: `${url}/health`, connections: 32, duration: o.duration, headers });
    const busy = !phases.has('busy') ? null : await measured(url, child.pid!, { url: `${url}${busyPath}`, connections: 1, duration: Math.min(o.duration, 5), headers });
    return {
      dir,
      mode,
      passSha,
      busySha: createHash('sha256').update(busyBody).digest('hex').slice(0, 16),
      busyFirstMs,
      random,
      health,
      busy,
    };
  } finally {
    await service.stop();
  }
}

const modes = o.modes.split(',');
for (let round = 0; round < o.rounds; round++) {
  for (const dir of o.build) {
    for (const mode of modes) console.log(JSON.stringify(await run(resolve(dir), mode)));
  }
}

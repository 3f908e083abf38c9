/**
 * The web process's CPU a webhook at a held rate, for builds or settings alternated in one run (the bench's ingest
 * load, one process at a time, each on a fresh database, warmed before it is measured):
 *
 *   npx tsx bench/ingest-cpu.ts [--rate 1500] [--duration 6] [--rounds 3] [--projector] label=script[,NAME=value...] ...
 *
 * `script` is a bundle next to dist/main.js (e.g. dist/main-a.js, a copy of another build's), run with `npm start`'s
 * flags; the NAME=value pairs are its environment. Rounds rotate the order of the variants. Prints one line per run
 * and the median of each variant: web (and projector) CPU µs a webhook, PostgreSQL's, the machine's, rate and p99.
 * The bench runs the service at LOG_LEVEL=warn with its output dropped; `label=script,LOG_LEVEL=info` with
 * `--stdout-pipe` counts the request lines as production writes them, to a pipe.
 */
import autocannon from 'autocannon';
import { Command } from 'commander';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BENCH_WEBHOOK_TOKEN, freshDatabase, load, type LoadResult, pipeStandardOutput, profiledProcesses, profileInto, type Service, startService, webhookRequests } from './lib';

const program = new Command('ingest-cpu')
  .option('--rate <n>', 'webhooks/s held (0: as fast as it goes)', Number, 1500)
  .option('--duration <s>', 'seconds measured', Number, 6)
  .option('--warmup <s>', 'seconds of load before the measure', Number, 2)
  .option('--rounds <n>', 'rounds', Number, 3)
  .option('--connections <n>', 'connections', Number, 64)
  .option('--rotate <n>', 'rotate the order of the variants by this much first (to alternate across runs)', Number, 0)
  .option('--profile <dir>', 'CPU profiles of the web processes into dir, with window.json (each run\'s window and webhooks)')
  .option('--parallel', 'all variants at once, each at its share of the rate and connections (paired under the same machine load)')
  .option('--projector', 'the projector beside (ledger project), as the bench runs it')
  .option('--stdout-pipe', 'standard output of every process to a pipe read by the bench (dropped), as a log collector reads it')
  .argument('<variants...>')
  .parse();
const o = program.opts<{ rate: number; duration: number; warmup: number; rounds: number; connections: number; rotate: number; profile?: string; parallel?: boolean; projector?: boolean; stdoutPipe?: boolean }>();
const variants = program.args.map((arg) => {
  const at = arg.indexOf('=');
  const [script, ...pairs] = arg.slice(at + 1).split(',');
  return { label: arg.slice(0, at), script: script!, env: Object.fromEntries(pairs.map((p) => [p.slice(0, p.indexOf('=')), p.slice(p.indexOf('=') + 1)])) };
});

// One generator for every load, so a variant's measured load goes on from its warm-up's balances.
const requests = webhookRequests(1000);
const loadOf = (url: string, seconds: number): autocannon.Options => ({
  url,
  connections: o.connections,
  duration: seconds,
  ...(o.rate > 0 ? { overallRate: o.rate } : {}),
  requests,
});

const results = new Map<string, LoadResult[]>();
const windows: { label: string; file: string; window: unknown; webhooks: number }[] = [];
if (o.profile) profileInto(o.profile);
if (o.stdoutPipe) pipeStandardOutput();
type Variant = (typeof variants)[number];
/** One variant on a fresh database: started, warmed, then `measure` runs the load (alone, or beside the others). */
async function withVariant<T>(v: Variant, use: (web: Service, db: { name: string }, projector: Service | null) => Promise<T>): Promise<T> {
  const db = await freshDatabase('ingestcpu');
  const web = await startService(`web ${v.label}`, v.script, { DATABASE_URL: db.url, WEBHOOK_TOKEN: BENCH_WEBHOOK_TOKEN, LOG_LEVEL: 'warn', RUN_PROJECTIONS: 'false', ...v.env });
  const projector = o.projector
    ? await startService('projector', 'dist/cli.js', { DATABASE_URL: db.url, LOG_LEVEL: 'warn' }, { args: ['project'], portVariable: 'METRICS_PORT' })
    : null;
  try {
    return await use(web, db, projector);
  } finally {
    await projector?.stop();
    await web.stop();
    await db.drop();
  }
}
function note(v: Variant, r: LoadResult): void {
  results.set(v.label, [...(results.get(v.label) ?? []), r]);
  const profiled = profiledProcesses().find((p) => p.label === `web ${v.label}` && !windows.some((w) => w.file === p.file));
  if (o.profile && profiled) windows.push({ label: v.label, file: profiled.file, window: profiled.window, webhooks: r.requests });
  console.log(`${v.label.padEnd(14)} web ${r.cpuMicrosPerRequest.join('/')} µs  pg ${r.postgresCpuMicrosPerRequest}  machine ${r.machineCpuMicrosPerRequest}  ${r.perSecond}/s p50 ${r.p50} p99 ${r.p99} ms  non2xx ${r.non2xx} err ${r.errors}`);
}
for (let round = 0; round < o.rounds; round++) {
  if (o.parallel) {
    // Every variant at once, each at its share of the rate: whatever else loads the machine loads them all alike.
    const started: { v: Variant; web: Service; db: { name: string }; projector: Service | null }[] = [];
    let go!: () => void;
    const ready = new Promise<void>((r) => (go = r));
    let done!: () => void;
    const finished = new Promise<void>((r) => (done = r));
    const runs = variants.map((v) =>
      withVariant(v, async (web, db, projector) => {
        started.push({ v, web, db, projector });
        if (started.length === variants.length) go();
        await ready;
        await finished;
      }),
    );
    await ready;
    const share = (url: string, seconds: number) => ({ ...loadOf(url, seconds), connections: Math.max(1, Math.round(o.connections / variants.length)), ...(o.rate > 0 ? { overallRate: o.rate / variants.length } : {}) });
    if (o.warmup > 0) await Promise.all(started.map((s) => autocannon(share(s.web.url, o.warmup))));
    const measured = await Promise.all(started.map((s) => load(share(s.web.url, o.duration), s.projector ? [s.web, s.projector] : [s.web], s.db.name)));
    started.forEach((s, i) => note(s.v, measured[i]!));
    done();
    await Promise.all(runs);
    continue;
  }
  for (let k = 0; k < variants.length; k++) {
    const v = variants[(k + round + o.rotate) % variants.length]!;
    await withVariant(v, async (web, db, projector) => {
      if (o.warmup > 0) await autocannon(loadOf(web.url, o.warmup));
      note(v, await load(loadOf(web.url, o.duration), projector ? [web, projector] : [web], db.name));
    });
  }
}
if (o.profile) writeFileSync(join(o.profile, 'window.json'), JSON.stringify(windows, null, 1));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
console.log('\nmedians:');
for (const v of variants) {
  const rs = results.get(v.label) ?? [];
  console.log(
    `${v.label.padEnd(14)} web ${median(rs.map((r) => r.cpuMicrosPerRequest[0]!))} [${rs.map((r) => r.cpuMicrosPerRequest[0]).join(', ')}] µs  pg ${median(rs.map((r) => r.postgresCpuMicrosPerRequest))}  machine ${median(rs.map((r) => r.machineCpuMicrosPerRequest))}  ${median(rs.map((r) => r.perSecond))}/s  p99 ${median(rs.map((r) => r.p99))} ms`,
  );
}

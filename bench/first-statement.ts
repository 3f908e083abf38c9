/**
 * The busy month's first computation, taken apart (issue 14 item 5). On a database the bench kept
 * (`npm run bench -- --only statements --keep-database`), for each build given (a worktree with dist/ built), in
 * turn for several rounds: a fresh service as the bench's warm one (cache on, API key), the bench's pass over the
 * 500 statements (8 at a time), then the busy month once, timed from here, with first-statement-hook.mjs in the
 * service timing its parts. Prints one JSON line per run and a summary per build; the SHA-256 of each answer too.
 *
 *   flock /tmp/balance-ledger-cpu.lock npx tsx bench/first-statement.ts --database-url <url> --build <base worktree> --build . --rounds 4
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Command } from 'commander';
import { startKeptService } from './kept-service';
import { benchStatements } from './lib';

const o = new Command('first-statement')
  .requiredOption('--database-url <url>', 'a database the statements bench kept')
  .option('--build <dir...>', 'worktrees whose dist/main.js to run, alternated', ['.'])
  .option('--rounds <n>', 'rounds', Number, 3)
  .option('--accounts <n>', 'accounts of the bench database', Number, 1000)
  .option('--statements <n>', 'distinct statements in the pass', Number, 500)
  .option('--cache-off', 'STATEMENT_CACHE_MB=0 (as the bench second service)')
  .parse()
  .opts<{ databaseUrl: string; build: string[]; rounds: number; accounts: number; statements: number; cacheOff?: boolean }>();

const HOOK = resolve(import.meta.dirname, 'first-statement-hook.mjs');
const { paths, busyId, busyPath } = benchStatements(o.accounts, o.statements);

/** What first-statement-hook.mjs wrote of the busy request (times in ms from its arrival). */
interface Trace {
  finishMs: number;
  nodeCpuMs: number;
  gcMs: number;
  queries: { kind: string; calledMs: number; firstRowMs: number; readyMs: number; backendCpuMs: number; backendFaults: number }[];
}

async function run(dir: string) {
  const out = join(mkdtempSync(join(tmpdir(), 'first-statement-')), 'trace.jsonl');
  const service = await startKeptService(dir, o.databaseUrl, {
    hook: HOOK,
    env: { FIRST_TIMING_PATH: busyId, FIRST_TIMING_OUT: out, ...(o.cacheOff ? { STATEMENT_CACHE_MB: '0' } : {}) },
  });
  try {
    const passSha = await service.pass(paths);
    const started = performance.now();
    const body = await service.get(busyPath);
    const firstMs = +(performance.now() - started).toFixed(1);
    const again = performance.now();
    await service.get(busyPath);
    const secondMs = +(performance.now() - again).toFixed(1);
    await new Promise((r) => setTimeout(r, 50));
    const trace = JSON.parse(readFileSync(out, 'utf8').split('\n')[0]!) as Trace;
    return { dir, firstMs, secondMs, busySha: createHash('sha256').update(body).digest('hex').slice(0, 16), passSha, ...trace };
  } finally {
    await service.stop();
    rmSync(join(out, '..'), { recursive: true, force: true });
  }
}

const results: Awaited<ReturnType<typeof run>>[] = [];
for (let round = 0; round < o.rounds; round++) {
  for (const dir of o.build) {
    const r = await run(resolve(dir));
    console.log(JSON.stringify(r));
    results.push(r);
  }
}
const stat = (xs: number[]) => {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const sd = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, xs.length - 1));
  return `${mean.toFixed(1)} ± ${sd.toFixed(1)} (${Math.min(...xs).toFixed(1)}–${Math.max(...xs).toFixed(1)})`;
};
for (const dir of o.build) {
  const mine = results.filter((r) => r.dir === resolve(dir));
  const q = (r: (typeof mine)[number]) => r.queries.find((x) => x.kind === 'statement')!;
  console.log(`\n${dir}: ${mine.length} runs; busy sha ${[...new Set(mine.map((r) => r.busySha))].join(',')}; pass sha ${[...new Set(mine.map((r) => r.passSha))].join(',')}`);
  console.log(`  first (client) ms   ${stat(mine.map((r) => r.firstMs))}   second ${stat(mine.map((r) => r.secondMs))}`);
  console.log(`  in service ms       ${stat(mine.map((r) => r.finishMs))}   node CPU ${stat(mine.map((r) => r.nodeCpuMs))}  GC ${stat(mine.map((r) => r.gcMs))}`);
  console.log(`  before query ms     ${stat(mine.map((r) => q(r).calledMs))}`);
  console.log(`  query→first row ms  ${stat(mine.map((r) => q(r).firstRowMs - q(r).calledMs))}`);
  console.log(`  first row→ready ms  ${stat(mine.map((r) => q(r).readyMs - q(r).firstRowMs))}`);
  console.log(`  ready→finish ms     ${stat(mine.map((r) => (r.finishMs) - q(r).readyMs))}`);
  console.log(`  backend CPU ms      ${stat(mine.map((r) => q(r).backendCpuMs))}   faults ${stat(mine.map((r) => q(r).backendFaults))}`);
}

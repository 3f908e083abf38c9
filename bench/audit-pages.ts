import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';

/**
 * The auditor's account view, timed: `tsx bench/audit-pages.ts <url> <tree> <accountId> [limit] [rounds]` pages the
 * account's events through the `accountEventRefs` of the sources in <tree> (over the `ledger` schema its build made),
 * from the start to the end, `rounds` times, and then asks 200 pages after positions drawn from the account's own
 * lines; it prints the median, p90 and p99 ms a page of each. The route adds one read of the log per page to this.
 */
const [url, tree, account, limitText, roundsText] = process.argv.slice(2);
const limit = Number(limitText ?? 100);
const rounds = Number(roundsText ?? 3);
const { accountEventRefs } = await import(`${tree}/src/projections/audit.queries.ts`);
const { readModelIn } = await import(`${tree}/src/projections/read-model.ts`);
const db = new Kysely<any>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: url, max: 1 }) }) });
const rm = readModelIn(db, 'ledger');
const timed = async (after: string | null) => {
  const started = performance.now();
  const refs: { position: string }[] = await accountEventRefs(rm, account!, { after, limit });
  return { ms: performance.now() - started, refs };
};
const summary = (times: number[]) => {
  const sorted = [...times].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))]!.toFixed(2);
  return `${sorted.length} pages: median ${at(0.5)} ms, p90 ${at(0.9)}, p99 ${at(0.99)}`;
};
const walk: number[] = [];
const positions: string[] = [];
for (let round = 0; round < rounds; round++) {
  let after: string | null = null;
  for (;;) {
    const { ms, refs } = await timed(after);
    walk.push(ms);
    if (round === 0) positions.push(...refs.map((r) => r.position));
    if (refs.length < limit) break;
    after = refs[refs.length - 1]!.position;
  }
}
const jumps: number[] = [];
for (let i = 0; i < 200; i++) jumps.push((await timed(positions[(i * 7919) % positions.length]!)).ms);
process.stdout.write(`whole history, limit ${limit}: ${summary(walk)}\nafter 200 positions: ${summary(jumps)}\n`);
await db.destroy();

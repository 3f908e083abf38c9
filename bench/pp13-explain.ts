import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
const tree = process.argv[2]!;
const { accountEventRefs } = await import(`${tree}/src/projections/audit.queries.ts`);
const { readModelIn } = await import(`${tree}/src/projections/read-model.ts`);
const url = process.argv[3]!;
const account = process.argv[4]!;
const db = new Kysely<any>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: url, max: 1 }) }), log: process.env.SHOWSQL ? (e) => { if (e.level === 'query') console.log(e.query.sql, e.query.parameters); } : undefined });
const rm = readModelIn(db, 'ledger');
const limit = Number(process.argv[5] ?? 100);
// page through the account, timing each page
let after: string | null = process.argv[6] ?? null;
const times: number[] = [];
let n = 0;
for (;;) {
  const t0 = performance.now();
  const refs = await accountEventRefs(rm, account, { after, limit });
  times.push(performance.now() - t0);
  n += refs.length;
  if (refs.length < limit || times.length >= Number(process.env.PAGES ?? 1e9)) break;
  after = refs[refs.length - 1].position;
}
times.sort((a, b) => a - b);
console.log(`pages ${times.length} refs ${n} median ${times[times.length >> 1]!.toFixed(2)} ms p90 ${times[Math.floor(times.length * 0.9)]!.toFixed(2)} max ${times[times.length - 1]!.toFixed(2)}`);
await db.destroy();

/**
 * What PostgreSQL spends compressing a webhook's raw body as it inserts the row. Written when an events row of the
 * webhook path carried the body inline (~2.1 KB, over the 2 KB toast threshold, so the server compressed its largest
 * value, the ~900-byte body, on every insert); since migration 0008 the body is a row of `event_attachments` and a
 * webhook's rows stay under the threshold. It still prices pglz against lz4 for a value that is compressed. The same
 * bodies inserted with pglz (the server's default) and with lz4, alternated, beside a value that may not be compressed
 * (the rest of the row), in a fresh database of the local server.
 *
 *   npx tsx bench/toast-compression.ts
 */
import pg from 'pg';
import { freshDatabase } from './lib';
import { eventsOfIngest } from './store';

const ROWS = 5_000;
const REPEATS = 8;
const database = await freshDatabase('toast_compression');
const client = new pg.Client({ connectionString: database.url });
await client.connect();
try {
  const appends = await eventsOfIngest(ROWS, 1000);
  await client.query('create table bodies (body text)');
  await client.query('alter table bodies alter column body set storage plain');
  await client.query('insert into bodies select unnest($1::text[])', [appends.map((a) => a.event.attachment)]);
  const methods = ['pglz', 'lz4'] as const;
  for (const method of methods) {
    await client.query(`create table rows_${method} (rest text, body text compression ${method})`);
    await client.query(`alter table rows_${method} alter column rest set storage plain`);
  }
  const rest = 'x'.repeat(1_300); // data and metadata's share of the row; stored plain, so the body is what is compressed
  for (let round = 0; round < 4; round++) {
    for (const method of methods) {
      await client.query(`truncate rows_${method}`);
      const started = performance.now();
      for (let k = 0; k < REPEATS; k++) await client.query(`insert into rows_${method} select $1, body from bodies`, [rest]);
      console.log(`${method.padEnd(5)} ${(((performance.now() - started) * 1000) / (ROWS * REPEATS)).toFixed(2)} µs a row`);
    }
  }
  const { rows } = await client.query(`
    select 'pglz' as method, avg(pg_column_size(body))::int as stored, avg(octet_length(body))::int as bytes,
      count(*) filter (where pg_column_compression(body) = 'pglz') as compressed from rows_pglz
    union all
    select 'lz4', avg(pg_column_size(body))::int, avg(octet_length(body))::int,
      count(*) filter (where pg_column_compression(body) = 'lz4') from rows_lz4`);
  console.table(rows);
} finally {
  await client.end();
  await database.drop();
}

import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Database, openDatabase } from '../../src/infrastructure/postgres/database';
import { createTestDatabase, type TestDatabase } from '../support/postgres';

let testDb: TestDatabase;
let database: Database;
beforeAll(async () => {
  testDb = await createTestDatabase('database');
  database = openDatabase({ databaseUrl: testDb.url, dataDir: '', poolSize: 2 });
});
afterAll(async () => {
  await database?.close();
  await testDb?.drop();
});

describe('PostgreSQL connections', () => {
  it('prepare a statement once per text, and stop preparing new texts past a bound', async () => {
    const counts = await database.db.transaction().execute(async (trx) => {
      for (let i = 0; i < 3; i++) await sql`select ${i}::int as n`.execute(trx);
      const once = await sql<{ n: string }>`select count(*) as n from pg_prepared_statements`.execute(trx);
      for (let i = 0; i < 600; i++) await sql`select ${sql.raw(String(i))}::int as distinct_text, ${i}::int as n`.execute(trx);
      const after = await sql<{ n: string }>`select count(*) as n from pg_prepared_statements`.execute(trx);
      return { once: Number(once.rows[0]!.n), after: Number(after.rows[0]!.n) };
    });
    expect(counts.once).toBe(2); // the repeated select, and the count itself
    expect(counts.after).toBe(500);
  });

  it('read int8, numeric and date as text: money never becomes a float', async () => {
    const { rows } = await sql<{ big: unknown; num: unknown; day: unknown }>`
      select 9007199254740993::int8 as big, 12345678901234567890.5::numeric as num, '2026-02-03'::date as day`.execute(database.db);
    expect(rows[0]).toEqual({ big: '9007199254740993', num: '12345678901234567890.5', day: '2026-02-03' });
  });
});

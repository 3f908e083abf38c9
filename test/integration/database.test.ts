import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compose, type Root } from '../../src/composition-root';
import { loadConfig } from '../../src/config';
import { type Database, advisoryLockKey } from '../../src/infrastructure/postgres/database';
import { isQueryCanceled, isUnavailableError } from '../../src/infrastructure/postgres/errors';
import { createTestDatabase, type TestDatabase } from '../support/postgres';

let testDb: TestDatabase;
let root: Root;
let database: Database;
beforeAll(async () => {
  testDb = await createTestDatabase('database');
  // The connections as the service configures them, with small pools and short timeouts; nothing else is opened.
  root = await compose(
    loadConfig({
      DATABASE_URL: testDb.url,
      DB_POOL_SIZE: '2',
      DB_READ_POOL_SIZE: '2',
      DB_READ_STATEMENT_TIMEOUT_MS: '300',
      DB_IDLE_IN_TRANSACTION_TIMEOUT_MS: '500',
      LOG_LEVEL: 'silent',
    }),
  );
  database = root.resolve('database');
});
afterAll(async () => {
  await root?.close();
  await testDb?.drop();
});

describe('PostgreSQL connections', () => {
  it('prepare a statement once per text, and stop preparing new texts past a bound', async () => {
    const counts = await database.db.transaction().execute(async (trx) => {
      for (let i = 0; i < 3; i++) await sql`select ${i}::int as n`.execute(trx);
      // A comment before the statement does not keep it from being prepared.
      for (let i = 0; i < 2; i++) await sql`-- the period's lines
      with one as (select ${i}::int as n) select n from one`.execute(trx);
      const once = await sql<{ n: string }>`select count(*) as n from pg_prepared_statements`.execute(trx);
      for (let i = 0; i < 600; i++) await sql`select ${sql.raw(String(i))}::int as distinct_text, ${i}::int as n`.execute(trx);
      const after = await sql<{ n: string }>`select count(*) as n from pg_prepared_statements`.execute(trx);
      return { once: Number(once.rows[0]!.n), after: Number(after.rows[0]!.n) };
    });
    expect(counts.once).toBe(3); // the repeated select, the commented one, and the count itself
    expect(counts.after).toBe(500);
  });

  it('read int8, numeric and date as text: money never becomes a float', async () => {
    const { rows } = await sql<{ big: unknown; num: unknown; day: unknown }>`
      select 9007199254740993::int8 as big, 12345678901234567890.5::numeric as num, '2026-02-03'::date as day`.execute(database.db);
    expect(rows[0]).toEqual({ big: '9007199254740993', num: '12345678901234567890.5', day: '2026-02-03' });
  });
});

/** Ends the server sessions whose last statement matches, as a crash or an operator would. */
async function terminate(db: Database['db'], queryLike: string): Promise<number> {
  const { rows } = await sql<{ n: string }>`
    select count(pg_terminate_backend(pid)) as n from pg_stat_activity
    where datname = current_database() and pid <> pg_backend_pid() and query like ${queryLike}`.execute(db);
  return Number(rows[0]!.n);
}

describe('connections that the server drops', () => {
  it('a transaction whose session is killed between two statements fails as "unavailable", the process lives on, and the next query prepares anew on a new connection', async () => {
    const marker = `select 'in-flight-${Date.now()}' as marker`;
    const failed = await database.db
      .transaction()
      .execute(async (trx) => {
        await sql.raw(marker).execute(trx);
        // The client is checked out and idle between statements: nobody but our listener hears its 'error'.
        expect(await terminate(database.readDb, marker)).toBe(1);
        await new Promise((r) => setTimeout(r, 100));
        await sql`select ${1}::int as n`.execute(trx);
      })
      .then(
        () => null,
        (error: unknown) => error,
      );
    expect(isUnavailableError(failed)).toBe(true);
    // The same prepared texts run on whatever connection the pool opens now.
    for (let i = 0; i < 4; i++) {
      const { rows } = await sql<{ n: number }>`select ${i}::int as n`.execute(database.db);
      expect(rows[0]!.n).toBe(i);
    }
  });

  it('an advisory lock whose connection is lost is released and reported lost, so another holder can take it', async () => {
    const key = advisoryLockKey(`lost-${Date.now()}`);
    let reportedLost = false;
    const held = await database.tryWithAdvisoryLock(key, async (lost) => {
      expect(await database.tryWithAdvisoryLock(key, async () => {})).toBe(false);
      expect(await terminate(database.db, 'select pg_try_advisory_lock%')).toBe(1);
      await lost;
      reportedLost = true;
    });
    expect(held).toBe(true);
    expect(reportedLost).toBe(true);
    expect(await database.tryWithAdvisoryLock(key, async () => {})).toBe(true);
  });
});

describe('bounded sessions', () => {
  it('cancels a read statement that runs past the read statement timeout; writes have none', async () => {
    const failed = await sql`select pg_sleep(2)`.execute(database.readDb).then(
      () => null,
      (error: unknown) => error,
    );
    expect(isQueryCanceled(failed)).toBe(true);
    await sql`select pg_sleep(0.5)`.execute(database.db);
  });

  it('ends a session left idle inside a transaction', async () => {
    const failed = await database.db
      .transaction()
      .execute(async (trx) => {
        await sql`select 1`.execute(trx);
        await new Promise((r) => setTimeout(r, 1_000));
        await sql`select 2`.execute(trx);
      })
      .then(
        () => null,
        (error: unknown) => error,
      );
    expect(failed).toBeInstanceOf(Error);
    expect((await sql<{ n: number }>`select 3::int as n`.execute(database.db)).rows[0]!.n).toBe(3);
  });

  it('reads cannot take the write connections: with every read connection busy, a write still runs at once', async () => {
    const busy = Array.from({ length: 4 }, () => sql`select pg_sleep(0.25)`.execute(database.readDb).catch(() => null));
    const { rows } = await sql<{ n: number }>`select 7::int as n`.execute(database.db);
    expect(rows[0]!.n).toBe(7);
    // The read pool is still busy when the write is answered.
    const stillBusy = await Promise.race([Promise.all(busy).then(() => false), Promise.resolve(true)]);
    expect(stillBusy).toBe(true);
    await Promise.all(busy);
  });
});

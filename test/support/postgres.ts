import { randomBytes } from 'node:crypto';
import pg from 'pg';

/** The local server that tests run on; every test file gets a database of its own, dropped afterwards. */
export const ADMIN_URL = process.env.TEST_PG_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export interface TestDatabase {
  readonly url: string;
  readonly name: string;
  drop(): Promise<void>;
}

export async function createTestDatabase(label = 'test'): Promise<TestDatabase> {
  const name = `bl_${label.replace(/[^a-z0-9]/gi, '_').toLowerCase()}_${process.pid}_${randomBytes(4).toString('hex')}`;
  await admin(`create database ${name}`);
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    name,
    drop: async () => {
      await sessionsGone(name, 5_000);
      await admin(`drop database if exists ${name} with (force)`);
    },
  };
}

/**
 * Waits (at most `timeoutMs`) until no session is connected to database `name`. pg-pool's `end()` resolves once it has
 * asked its idle clients to close, not once they have; a forced drop that reaches such a client first makes its pool
 * emit an error nobody listens to (Emmett's store, closed just before a bench database's drop, took a run down so).
 * What is still connected after the wait is ended by the drop's `force`.
 */
async function sessionsGone(name: string, timeoutMs: number): Promise<void> {
  const client = new pg.Client({ connectionString: ADMIN_URL });
  await client.connect();
  try {
    for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; await new Promise((r) => setTimeout(r, 20))) {
      const { rows } = await client.query<{ n: number }>('select count(*)::int as n from pg_stat_activity where datname = $1', [name]);
      if (rows[0]!.n === 0) return;
    }
  } finally {
    await client.end();
  }
}

async function admin(statement: string): Promise<void> {
  const client = new pg.Client({ connectionString: ADMIN_URL });
  await client.connect();
  try {
    await client.query(statement);
  } finally {
    await client.end();
  }
}

/** Polls until `check` passes or the deadline is reached; projections are asynchronous, so tests wait this way. */
export async function eventually<T>(check: () => Promise<T>, { timeoutMs = 10_000, intervalMs = 20 } = {}): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  }
}

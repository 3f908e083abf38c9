import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Root } from '../../src/composition-root';
import { bankTx, createLedgerContext, type LedgerContext } from '../support/ledger';
import { eventually } from '../support/postgres';

let ctx: LedgerContext;
/** A second "process": a graph with pools of its own on the same database, as another service instance or a CLI would have. */
let other: Root;

const scratchSchemas = async () =>
  (
    await sql<{ schema_name: string }>`
      select schema_name from information_schema.schemata where schema_name like 'ledger\\_verify\\_%' order by 1`.execute(ctx.database.db)
  ).rows.map((r) => r.schema_name);

beforeAll(async () => {
  ctx = await createLedgerContext('verifyruns');
  other = await ctx.another();
  for (let i = 1; i <= 30; i++) await ctx.deliver(bankTx({ fiId: 'fi-v', accountNumber: '1', amount: 1n, runningBalance: BigInt(i) }));
  await ctx.project();
});
afterAll(async () => {
  await ctx?.close();
});

describe('verify, one at a time across processes', () => {
  it('refuses a second verify in another process, naming the running one; start-up clean-up leaves its scratch schema alone', async () => {
    const here = ctx.root.resolve('verifier');
    const there = other.resolve('verifier');
    // Hold the live checkpoint row: the running verify replays, then waits at its comparison.
    const holder = new pg.Client({ connectionString: ctx.testDb.url });
    await holder.connect();
    await holder.query('begin');
    await holder.query('select 1 from ledger.checkpoint for update');
    const running = here.run();
    try {
      await eventually(async () => expect(await scratchSchemas()).toHaveLength(1));
      const [scratch] = await scratchSchemas();
      const busy = await there.run();
      expect(busy.status).toBe('busy');
      const { rows } = await sql<{ id: string }>`select id from verify_runs where finished_at is null`.execute(ctx.database.db);
      expect(busy).toMatchObject({ running: { id: rows[0]!.id, startedAt: expect.any(Date) } });
      // In this process too, at once.
      expect(await here.run()).toMatchObject({ status: 'busy', running: { id: rows[0]!.id } });
      // Another process starting up must not drop the scratch schema of a verify that runs.
      await ctx.another();
      expect(await scratchSchemas()).toEqual([scratch]);
    } finally {
      await holder.query('rollback');
      await holder.end();
    }
    const done = await running;
    expect(done).toMatchObject({ status: 'done', report: { ok: true } });
    expect(await scratchSchemas()).toEqual([]);
    const { rows } = await sql<{ outcome: string }>`select outcome from verify_runs`.execute(ctx.database.db);
    expect(rows).toEqual([{ outcome: 'ok' }]);
    // Free again: the other process may verify now.
    expect(await there.run()).toMatchObject({ status: 'done', report: { ok: true } });
  });

  it('drops at start-up the scratch schemas a crashed verify left, and marks its run abandoned', async () => {
    await sql`create schema ledger_verify_0badc0de`.execute(ctx.database.db);
    await sql`create table ledger_verify_0badc0de.accounts (account_id uuid)`.execute(ctx.database.db);
    await sql`insert into verify_runs (id, started_at, process) values (gen_random_uuid(), now(), 'crashed:1')`.execute(ctx.database.db);
    // A schema that only looks similar is not ours to drop.
    await sql`create schema ledger_verify_notes`.execute(ctx.database.db);
    await ctx.another(); // a process starting up
    expect(await scratchSchemas()).toEqual(['ledger_verify_notes']);
    const { rows } = await sql<{ outcome: string }>`select outcome from verify_runs where process = 'crashed:1'`.execute(ctx.database.db);
    expect(rows).toEqual([{ outcome: 'abandoned' }]);
  });
});

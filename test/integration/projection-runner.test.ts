import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import pino from 'pino';
import { positionOf } from '../../src/infrastructure/eventstore/postgres-appends';
import { createProjectionRunner } from '../../src/infrastructure/projection-runner';
import { readCheckpoint } from '../../src/infrastructure/projection-store';
import { verifyProjection } from '../../src/infrastructure/read-model-maintenance';
import { eventually } from '../support/postgres';
import { accountOf, bankTx, createLedgerContext, type LedgerContext, ledgerRunnerOf } from '../support/ledger';

let ctx: LedgerContext;
beforeAll(async () => {
  ctx = await createLedgerContext('runner');
});
afterAll(async () => {
  await ctx?.close();
});

/** A runner as another process would run it: a graph of its own over the same database. */
const runnerFor = async (c: LedgerContext, batchSize = 50) =>
  ledgerRunnerOf(await c.another({ env: { PROJECTION_BATCH_SIZE: String(batchSize) } }));

describe('projection runner', () => {
  it('follows the log live, reports its lag, and resumes from its checkpoint after a restart', async () => {
    const acct = { fiId: 'fi-runner', accountNumber: '1' };
    let balance = 0n;
    const deliverMany = async (n: number) => {
      for (let i = 0; i < n; i++) {
        balance += 1000n;
        await ctx.deliver(bankTx({ ...acct, amount: 1000n, runningBalance: balance }));
      }
    };
    await deliverMany(120);
    const runner = await runnerFor(ctx);
    const before = await runner.status();
    expect(before.eventsBehind).toBe(120n);
    expect(before.secondsBehind).toBeGreaterThanOrEqual(0);
    runner.start();
    await runner.caughtUp();
    await eventually(async () => expect((await accountOf(ctx, acct.fiId, acct.accountNumber))?.balance).toBe('120000'));
    const caught = await runner.status();
    expect(caught).toMatchObject({ active: true, eventsBehind: 0n, secondsBehind: 0, lastError: null });
    await runner.stop();

    await deliverMany(30); // while no runner runs
    const again = await runnerFor(ctx, 7);
    expect((await again.status()).eventsBehind).toBe(30n);
    again.start();
    await again.caughtUp();
    await eventually(async () => expect((await accountOf(ctx, acct.fiId, acct.accountNumber))?.balance).toBe('150000'));
    await again.stop();
    expect((await verifyProjection({ db: ctx.database.db, eventStore: ctx.store, projection: ctx.projection })).ok).toBe(true);
  });

  it('lets one runner work while a second one stands by', async () => {
    const first = await runnerFor(ctx);
    const second = await runnerFor(ctx);
    first.start();
    await eventually(async () => expect((await first.status()).active).toBe(true));
    second.start();
    await ctx.deliver(bankTx({ fiId: 'fi-runner', accountNumber: '2', amount: 5n, runningBalance: 5n }));
    await eventually(async () => expect((await accountOf(ctx, 'fi-runner', '2'))?.balance).toBe('5'));
    expect((await second.status()).active).toBe(false);
    await first.stop();
    // The stand-by takes over once the lock is free.
    await ctx.deliver(bankTx({ fiId: 'fi-runner', accountNumber: '2', amount: 5n, runningBalance: 10n }));
    await eventually(async () => expect((await accountOf(ctx, 'fi-runner', '2'))?.balance).toBe('10'), { timeoutMs: 15_000 });
    expect((await second.status()).active).toBe(true);
    await second.stop();
  });

  it('resumes after the database dropped every connection', async () => {
    const runner = await runnerFor(ctx);
    runner.start();
    await runner.caughtUp();
    const admin = new pg.Client({ connectionString: ctx.testDb.url });
    await admin.connect();
    try {
      await admin.query('select pg_terminate_backend(pid) from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()');
    } finally {
      await admin.end();
    }
    // The pool hands out dead connections once; the writer retries as Cas would.
    const tx = bankTx({ fiId: 'fi-runner', accountNumber: '4', amount: 11n, runningBalance: 11n });
    await eventually(() => ctx.deliver(tx), { timeoutMs: 10_000 });
    await eventually(async () => expect((await accountOf(ctx, 'fi-runner', '4'))?.balance).toBe('11'), { timeoutMs: 20_000 });
    expect((await runner.status()).active).toBe(true);
    await runner.stop();
  });

  it('commits a move past events of other types at most once a while, and goes on from the committed checkpoint', async () => {
    const other = await ctx.another();
    const runner = createProjectionRunner({
      database: other.resolve('database'),
      eventStore: other.resolve('eventStore'),
      projection: ctx.projection,
      logger: pino({ level: 'silent' }),
      checkpointOnlyMs: 60_000,
    });
    const appendOther = async () => {
      const id = randomUUID();
      await ctx.store.appendToStream(`other-${id}`, [{ eventId: id, type: 'SomethingElse', data: {}, metadata: {} }], 'no_stream');
      const { rows } = await sql<{ seq: string }>`select max(seq) as seq from events`.execute(ctx.database.db);
      return positionOf(rows[0]!.seq);
    };
    const checkpoint = async () => (await readCheckpoint(ctx.database.db, 'ledger', 'ledger')).position;
    runner.start();
    await runner.caughtUp();
    // The first move past other events is committed at once; the next ones within the interval are not.
    const first = await appendOther();
    await eventually(async () => expect(await checkpoint()).toBe(first));
    await appendOther();
    await new Promise((r) => setTimeout(r, 600)); // two polls and more
    expect(await checkpoint()).toBe(first);
    expect((await runner.status()).eventsBehind).toBe(0n);
    // A batch after skipped moves expects the committed checkpoint, not the subscription's position: no resync.
    const tx = bankTx({ fiId: 'fi-runner', accountNumber: '5', amount: 7n, runningBalance: 7n });
    await ctx.deliver(tx);
    await eventually(async () => expect((await accountOf(ctx, 'fi-runner', '5'))?.balance).toBe('7'));
    const { rows } = await sql<{ seq: string }>`select max(seq) as seq from events`.execute(ctx.database.db);
    expect(await checkpoint()).toBe(positionOf(rows[0]!.seq));
    expect((await runner.status()).lastError).toBeNull();
    await runner.stop();
  });

  it('follows a rebuild that swaps the schema under it', async () => {
    const runner = await runnerFor(ctx);
    runner.start();
    await runner.caughtUp();
    const { rebuildProjection } = await import('../../src/infrastructure/read-model-maintenance');
    await rebuildProjection({ db: ctx.database.db, eventStore: ctx.store, projection: ctx.projection });
    await ctx.deliver(bankTx({ fiId: 'fi-runner', accountNumber: '3', amount: 9n, runningBalance: 9n }));
    await eventually(async () => expect((await accountOf(ctx, 'fi-runner', '3'))?.balance).toBe('9'), { timeoutMs: 15_000 });
    await runner.stop();
    const { rows } = await sql<{ n: string }>`select count(*) as n from ledger.statement_lines`.execute(ctx.database.db);
    expect(Number(rows[0]!.n)).toBeGreaterThan(150);
  });
});

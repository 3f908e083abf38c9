import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RecordedEvent } from '../../src/domain/recorded-event';
import { commitBatch, readCheckpoint, type Warm, warmOf } from '../../src/infrastructure/projection-store';
import { rebuildProjection, verifyProjection } from '../../src/infrastructure/read-model-maintenance';
import { accountIdOf } from '../../src/projections/ledger.projection';
import { accountOf, bankTx, createLedgerContext, type LedgerContext, ledgerRunnerOf, linesOf } from '../support/ledger';

/**
 * A warm writer (the runner, a replay) keeps account rows and last lines between its batches. These tests change
 * the read model behind such a writer, or roll back a batch it learnt from, then go on with the same accounts: a
 * writer that kept its memory would build on rows that are no longer there, and verify (a cold replay) would differ.
 */
let ctx: LedgerContext;
beforeAll(async () => {
  ctx = await createLedgerContext('warm_books');
});
afterAll(async () => {
  await ctx?.close();
});

const verify = () => verifyProjection({ db: ctx.database.db, eventStore: ctx.store, projection: ctx.projection });
const at = (hour: number) => `2026-04-01T${String(hour).padStart(2, '0')}:00:00+07:00`;

describe('a warm runner', () => {
  for (const rewrite of ['a parked-event retry', 'a rebuild'] as const) {
    it(`forgets what it remembers when ${rewrite} rewrites its accounts without moving the checkpoint`, async () => {
      const acct = { fiId: `fi-warm-${rewrite.length}`, accountNumber: '1' };
      const txId = (n: number) => `${acct.fiId}-w${n}`;
      const tx = (n: number, balance: bigint) =>
        bankTx({ ...acct, id: txId(n), amount: 10n, runningBalance: balance, transactionDate: '2026-04-01', transactionDateTime: at(n) });
      // A stray line holds w2's transaction id, so w2 is parked and the runner goes on without it (a break w1 → w3).
      await sql`
        insert into ledger.statement_lines (transaction_id, account_id, event_id, instant, group_seq, transaction_date,
          transaction_date_time, amount, late, received_at, source, log_position)
        values (${txId(2)}, ${randomUUID()}, ${randomUUID()}, now(), 0, '2026-04-01', 'x', 1, false, now(), 'webhook',
          '0000000000000000-0000000000000000')`.execute(ctx.database.db);
      const runner = ledgerRunnerOf(await ctx.another());
      runner.start();
      try {
        await ctx.deliver(tx(1, 10n));
        await ctx.deliver(tx(2, 20n));
        await ctx.deliver(tx(3, 30n));
        await runner.caughtUp(30_000);
        expect((await runner.status()).parked).toBe(1);
        // A batch of its own after the failures: the runner now remembers the account (two lines, one open break).
        await ctx.deliver(tx(4, 40n));
        await runner.caughtUp();
        expect(await accountOf(ctx, acct.fiId, acct.accountNumber)).toMatchObject({ line_count: '3', open_breaks: 1 });

        await sql`delete from ledger.statement_lines where transaction_id = ${txId(2)} and account_id <> ${accountIdOf(acct.fiId, acct.accountNumber)}`.execute(
          ctx.database.db,
        );
        const position = (await readCheckpoint(ctx.database.db, 'ledger', 'ledger')).position;
        if (rewrite === 'a rebuild') await rebuildProjection({ db: ctx.database.db, eventStore: ctx.store, projection: ctx.projection });
        else expect(await ctx.root.resolve('parkedEvents').retry('ledger')).toMatchObject([{ outcome: 'applied' }]);
        // Neither moved the checkpoint: only the row's version tells the runner that its memory is stale.
        expect((await readCheckpoint(ctx.database.db, 'ledger', 'ledger')).position).toBe(position);

        await ctx.deliver(tx(5, 50n));
        await runner.caughtUp();
      } finally {
        await runner.stop();
      }
      expect((await linesOf(ctx, acct.fiId, acct.accountNumber)).map((l) => [l.transaction_id, l.balance_after])).toEqual(
        [1, 2, 3, 4, 5].map((n) => [txId(n), `${n * 10}`]),
      );
      expect(await accountOf(ctx, acct.fiId, acct.accountNumber)).toMatchObject({ balance: '50', line_count: '5', open_breaks: 0 });
      expect((await verify()).differences).toEqual([]);
    });
  }
});

describe('a warm writer whose batch does not commit', () => {
  it('forgets what that batch taught it, so the batch tried again builds on the tables', async () => {
    const acct = { fiId: 'fi-warm-rollback', accountNumber: '1' };
    const deliver = async (from: number, to: number) => {
      for (let n = from; n <= to; n++) {
        await ctx.deliver(bankTx({ ...acct, amount: 10n, runningBalance: BigInt(n * 10), transactionDate: '2026-04-02', transactionDateTime: `2026-04-02T09:${String(n).padStart(2, '0')}:00+07:00` }));
      }
    };
    const real = warmOf(ctx.projection)!;
    let failing = false;
    // What a lost connection at COMMIT looks like: everything applied, the transaction rolled back all the same.
    const warm: Warm = {
      version: null,
      memory: {
        async apply(rm, events) {
          await real.memory.apply(rm, events);
          if (failing) throw new Error('Connection terminated unexpectedly');
        },
        forget: () => real.memory.forget(),
      },
    };
    const batch = async (): Promise<void> => {
      const { position } = await readCheckpoint(ctx.database.db, 'ledger', 'ledger');
      const page = await ctx.store.readAll({ after: position, maxCount: 1000, filter: { eventTypes: ctx.projection.eventTypes } });
      const events: readonly RecordedEvent[] = page.events;
      await commitBatch(ctx.database.db, ctx.projection, 'ledger', position, events, page.lastPosition!, { warm });
    };
    await deliver(1, 5);
    await batch();
    await deliver(6, 10);
    failing = true;
    await expect(batch()).rejects.toThrow('Connection terminated');
    failing = false;
    expect(await accountOf(ctx, acct.fiId, acct.accountNumber)).toMatchObject({ balance: '50', line_count: '5' });
    await batch();
    await deliver(11, 12);
    await batch();
    expect(await accountOf(ctx, acct.fiId, acct.accountNumber)).toMatchObject({ balance: '120', line_count: '12', open_breaks: 0 });
    expect((await verify()).differences).toEqual([]);
  });
});

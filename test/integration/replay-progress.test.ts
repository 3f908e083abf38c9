import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EventStore } from '../../src/application/ports/event-store';
import { type Progress, rebuildProjection } from '../../src/infrastructure/read-model-maintenance';
import { accountOf, bankTx, createLedgerContext, type LedgerContext } from '../support/ledger';

let ctx: LedgerContext;
beforeAll(async () => {
  ctx = await createLedgerContext('progress');
  let balance = 0n;
  for (let i = 0; i < 25; i++) {
    balance += 100n;
    await ctx.deliver(bankTx({ fiId: 'fi-progress', accountNumber: '1', amount: 100n, runningBalance: balance }));
  }
});
afterAll(async () => {
  await ctx?.close();
});

/** The test database's store, remembering from where it was asked to count. */
function countingStore(store: EventStore): { store: EventStore; counted: (string | null)[] } {
  const counted: (string | null)[] = [];
  return {
    counted,
    store: {
      ...store,
      countAfter: (after, filter) => {
        counted.push(after);
        return store.countAfter!(after, filter);
      },
    },
  };
}

describe('a replay reports its progress', () => {
  it('counts what is left only when a first page is not the last, and reaches the count', async () => {
    const { store, counted } = countingStore(ctx.store);
    const reports: Progress[] = [];
    const { eventsReplayed } = await rebuildProjection({ db: ctx.database.db, eventStore: store, projection: ctx.projection, batchSize: 10, onProgress: (p) => reports.push(p) });
    expect(eventsReplayed).toBe(25);
    // The scratch replay (three pages) counted once, from event zero; the tail after the swap (one empty page) not at all.
    expect(counted).toEqual([null]);
    expect(reports.map((r) => r.eventsDone)).toEqual([10, 20, 25]);
    // The count runs beside the replay: a report may come before it does, never with another total.
    for (const { eventsTotal } of reports) expect([null, 25]).toContain(eventsTotal);
    expect((await accountOf(ctx, 'fi-progress', '1'))?.balance).toBe('2500');
  });

  it('does not count a replay of one page', async () => {
    const { store, counted } = countingStore(ctx.store);
    const reports: Progress[] = [];
    await rebuildProjection({ db: ctx.database.db, eventStore: store, projection: ctx.projection, onProgress: (p) => reports.push(p) });
    expect(counted).toEqual([]);
    expect(reports).toEqual([{ eventsDone: 25, eventsTotal: null }]);
  });
});

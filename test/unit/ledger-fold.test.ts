import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodePosition } from '../../src/application/ports/event-store';
import type { BankTransaction } from '../../src/domain/bank-transaction';
import { buildStatement } from '../../src/domain/chain';
import { encodeEvent } from '../../src/domain/event-codec';
import type { RecordedEvent } from '../../src/domain/recorded-event';
import type { StoredLine } from '../../src/projections/account-book';
import { decodeLedgerBatch, foldLedger, foldLoading, type LedgerContext } from '../../src/projections/ledger-fold';
import { accountIdOf } from '../../src/projections/ledger.projection';
import { bankTx } from '../support/ledger';
import { MemoryLedger } from '../support/memory-ledger';

/**
 * The ledger fold without a database: histories folded batch by batch over an in-memory read model that loads what
 * the real one would (ledger-load.ts's plan, with windows of a few lines so that carries and groups run past them),
 * compared with buildStatement, the from-scratch reference.
 */

const T0 = Date.parse('2026-03-02T08:00:00+07:00');
const at = (minute: number) => new Date(T0 + minute * 60_000).toISOString();

let sequence = 0;
/** Log events as the store hands them to the projection. */
function logOf(deliveries: readonly Delivery[]): RecordedEvent[] {
  return deliveries.map((d) => {
    sequence += 1;
    const n = sequence.toString(16).padStart(12, '0');
    const event =
      d.kind === 'booked'
        ? encodeEvent({ type: 'BalanceChanged', data: { transaction: d.tx, source: 'webhook', grantId: 'grant-1' } })
        : encodeEvent({ type: 'ConflictingDuplicateReceived', data: { transaction: d.tx, source: 'webhook', grantId: 'grant-1', originalEventId: d.original } });
    return {
      position: encodePosition(0n, BigInt(sequence)),
      streamId: `bankTx-${d.tx.id}`,
      revision: d.kind === 'booked' ? 0n : 1n,
      eventId: `00000000-0000-4000-8000-${n}`,
      type: event.type,
      data: event.data,
      metadata: { receivedAt: new Date(T0 + sequence * 1000).toISOString(), source: 'webhook' },
      recordedAt: new Date(T0 + sequence * 1000),
    };
  });
}

type Delivery = { kind: 'booked'; tx: BankTransaction } | { kind: 'conflict'; tx: BankTransaction; original: string };

/** Folds the log into the memory ledger in batches of the given sizes (the last size repeats). */
async function project(ledger: MemoryLedger, log: readonly RecordedEvent[], sizes: readonly number[]): Promise<void> {
  const ids = new Map<string, string>();
  const idOf = (fiId: string, accountNumber: string) => {
    const key = `${fiId}/${accountNumber}`;
    if (!ids.has(key)) ids.set(key, accountIdOf(fiId, accountNumber));
    return ids.get(key)!;
  };
  for (let i = 0, b = 0; i < log.length; b++) {
    const size = Math.max(1, sizes[Math.min(b, sizes.length - 1)] ?? 1);
    const batch = decodeLedgerBatch(log.slice(i, i + size), idOf);
    ledger.write(await foldLoading(batch, ledger.load(batch), (wanted) => ledger.loadWanted(wanted)));
    i += size;
  }
}

const ACCOUNTS = [
  { fiId: 'fi-a', accountNumber: '001' },
  { fiId: 'fi-a', accountNumber: '002' },
  { fiId: 'fi-b', accountNumber: '001' },
];

/** A bank's history of up to three accounts: same-minute groups, lines without running balance, cycles. */
const histories = fc
  .record({
    opening: fc.bigInt({ min: 0n, max: 1_000_000_000n }),
    steps: fc.array(
      fc.record({
        account: fc.nat({ max: 2 }),
        amount: fc.oneof(fc.bigInt({ min: -5_000_000n, max: -1n }), fc.bigInt({ min: 1n, max: 5_000_000n }), fc.constantFrom(10_000n, -10_000n)),
        gapMinutes: fc.constantFrom(0, 0, 0, 1, 2, 30),
        withoutRunningBalance: fc.integer({ min: 0, max: 4 }).map((n) => n === 0),
        missing: fc.integer({ min: 0, max: 7 }).map((n) => n === 0),
        repeated: fc.integer({ min: 0, max: 5 }).map((n) => n === 0),
        conflicting: fc.integer({ min: 0, max: 8 }).map((n) => n === 0),
      }),
      { minLength: 1, maxLength: 40 },
    ),
    order: fc.array(fc.nat(), { minLength: 1, maxLength: 60 }),
    sizes: fc.array(fc.integer({ min: 1, max: 12 }), { minLength: 1, maxLength: 8 }),
    window: fc.integer({ min: 1, max: 4 }),
  })
  .map(({ opening, steps, order, sizes, window }) => {
    sequence += 1000;
    const run = sequence.toString(36);
    const balances = ACCOUNTS.map(() => opening);
    const minutes = ACCOUNTS.map(() => 0);
    const all = steps.map((step, i) => {
      balances[step.account]! += step.amount;
      minutes[step.account]! += step.gapMinutes;
      return {
        step,
        tx: bankTx({
          ...ACCOUNTS[step.account]!,
          id: `r${run}t${i.toString().padStart(3, '0')}`,
          amount: step.amount,
          runningBalance: step.withoutRunningBalance ? null : balances[step.account]!,
          transactionDateTime: at(minutes[step.account]!),
        }),
      };
    });
    const delivered = all.filter(({ step }) => !step.missing);
    // A repeat is another BalanceChanged of the same transaction (as an older adapter could store): the first wins.
    const deliveries: Delivery[] = [
      ...delivered.map(({ tx }) => ({ kind: 'booked' as const, tx })),
      ...delivered.filter(({ step }) => step.repeated).map(({ tx }) => ({ kind: 'booked' as const, tx: { ...tx, amount: tx.amount + 1n } })),
    ];
    const shuffled = deliveries
      .map((d, i) => ({ d, k: order[i % order.length]! * 1000 + i }))
      .sort((a, b) => a.k - b.k)
      .map((x) => x.d);
    // A conflicting repeat follows its original in the log (it is appended to the original's stream).
    const withConflicts = shuffled.flatMap((d) => {
      const step = all.find((x) => x.tx.id === d.tx.id)!.step;
      return d.kind === 'booked' && step.conflicting && d.tx === delivered.find((x) => x.tx.id === d.tx.id)?.tx
        ? [d, { kind: 'conflict' as const, tx: { ...d.tx, amount: d.tx.amount + 7n }, original: 'the-first' }]
        : [d];
    });
    return { deliveries: withConflicts, sizes, window };
  });

/** The reference: each transaction's first booked version, as buildStatement orders it from scratch. */
function reference(deliveries: readonly Delivery[], accountNumber: string, fiId: string) {
  const first = new Map<string, BankTransaction>();
  for (const d of deliveries) if (d.kind === 'booked' && !first.has(d.tx.id)) first.set(d.tx.id, d.tx);
  const mine = [...first.values()].filter((tx) => tx.fiId === fiId && tx.accountNumber === accountNumber);
  return buildStatement(mine.map((tx) => ({ ...tx, instant: Date.parse(tx.transactionDateTime) })));
}

/** Late as the fold defines it: when first delivered, a line already delivered follows it in statement order. */
function lateIds(deliveries: readonly Delivery[]): Set<string> {
  const seen = new Map<string, BankTransaction>();
  const late = new Set<string>();
  for (const d of deliveries) {
    if (d.kind !== 'booked' || seen.has(d.tx.id)) continue;
    seen.set(d.tx.id, d.tx);
    const same = [...seen.values()].filter((tx) => tx.fiId === d.tx.fiId && tx.accountNumber === d.tx.accountNumber);
    const { lines } = buildStatement(same.map((tx) => ({ ...tx, instant: Date.parse(tx.transactionDateTime) })));
    if (lines.at(-1)!.transaction.id !== d.tx.id) late.add(d.tx.id);
  }
  return late;
}

const view = (lines: readonly StoredLine[]) => lines.map((l) => [l.id, l.before, l.after]);

describe('the ledger fold against the reference statement', () => {
  it('gives the reference lines, balances, open breaks, late flags and conflicts for any arrival order, batching and window', async () => {
    await fc.assert(
      fc.asyncProperty(histories, async ({ deliveries, sizes, window }) => {
        const ledger = new MemoryLedger(window);
        await project(ledger, logOf(deliveries), sizes);
        const late = lateIds(deliveries);
        for (const { fiId, accountNumber } of ACCOUNTS) {
          const id = accountIdOf(fiId, accountNumber);
          const expected = reference(deliveries, accountNumber, fiId);
          const lines = ledger.linesOf(id);
          expect(view(lines)).toEqual(expected.lines.map((l) => [l.transaction.id, l.before, l.after]));
          // Within a same-instant group the stored order is 0, 1, 2, …
          lines.forEach((l, i) => expect(l.seq).toBe(i > 0 && lines[i - 1]!.instant === l.instant ? lines[i - 1]!.seq + 1 : 0));
          const open = [...ledger.breaks.values()].filter((b) => b.accountId === id && b.status === 'open');
          expect(open.map((b) => [b.afterTransactionId, b.beforeTransactionId, b.missingAmount]).sort()).toEqual(
            expected.breaks.map((b) => [b.afterTransactionId, b.beforeTransactionId, b.missingAmount]).sort(),
          );
          expect(lines.filter((l) => l.late).map((l) => l.id)).toEqual(lines.filter((l) => late.has(l.id)).map((l) => l.id));
          const account = ledger.accounts.get(id);
          if (lines.length === 0) {
            expect(account).toBeUndefined();
            continue;
          }
          expect(account).toMatchObject({
            balance: expected.lines.at(-1)!.after,
            lastTransactionId: expected.lines.at(-1)!.transaction.id,
            lineCount: BigInt(lines.length),
            openBreaks: expected.breaks.length,
            lateDeliveries: late.size === 0 ? 0 : lines.filter((l) => late.has(l.id)).length,
          });
          const lateAnomalies = [...ledger.anomalies.values()].filter((a) => a.kind === 'late' && a.accountId === id);
          expect(lateAnomalies.map((a) => a.transactionId).sort()).toEqual(lines.filter((l) => l.late).map((l) => l.id).sort());
        }
        const conflicts = [...ledger.anomalies.values()].filter((a) => a.kind === 'conflict');
        expect(conflicts).toHaveLength(deliveries.filter((d) => d.kind === 'conflict').length);
        for (const c of conflicts) expect(ledger.lines.get(c.transactionId)?.accountId).toBe(c.accountId);
      }),
      { numRuns: Number(process.env.FC_RUNS ?? 300), ...(process.env.FC_SEED ? { seed: Number(process.env.FC_SEED), ...(process.env.FC_PATH ? { path: process.env.FC_PATH } : {}) } : {}) },
    );
  });

  it('leaves the same read model however the log is cut into batches and however many lines a load brings', async () => {
    await fc.assert(
      fc.asyncProperty(histories, fc.array(fc.integer({ min: 1, max: 50 }), { minLength: 1, maxLength: 5 }), fc.integer({ min: 1, max: 40 }), async (h, otherSizes, otherWindow) => {
        const log = logOf(h.deliveries);
        const one = new MemoryLedger(h.window);
        const two = new MemoryLedger(otherWindow);
        await project(one, log, h.sizes);
        await project(two, log, otherSizes);
        expect(two.snapshot()).toEqual(one.snapshot());
      }),
      { numRuns: Number(process.env.FC_RUNS ?? 150) },
    );
  });

  it('changes nothing when a batch is folded again (a replay)', async () => {
    await fc.assert(
      fc.asyncProperty(histories, fc.nat(), async ({ deliveries, sizes, window }, cut) => {
        const log = logOf(deliveries);
        const ledger = new MemoryLedger(window);
        await project(ledger, log, sizes);
        const before = ledger.snapshot();
        await project(ledger, log.slice(cut % log.length), sizes);
        expect(ledger.snapshot()).toEqual(before);
      }),
      { numRuns: 100 },
    );
  });
});

describe('breaks in a same-instant group', () => {
  it('resolves a break whose lines a re-ordering of their group moves to the ends of the changed region', async () => {
    // One minute: 0 → −10 000 (a), −10 000 → 0 (b), 0 → 10 000 (c). With a and c alone the chain cannot link them;
    // b arriving last re-orders the group to a, b, c, which links throughout.
    const acct = { fiId: 'fi-group', accountNumber: '7' };
    const id = accountIdOf(acct.fiId, acct.accountNumber);
    const a = bankTx({ ...acct, id: 'g-a', amount: -10_000n, runningBalance: -10_000n, transactionDateTime: at(0) });
    const b = bankTx({ ...acct, id: 'g-b', amount: 10_000n, runningBalance: 0n, transactionDateTime: at(0) });
    const c = bankTx({ ...acct, id: 'g-c', amount: 10_000n, runningBalance: 10_000n, transactionDateTime: at(0) });
    for (const window of [1, 32]) {
      const ledger = new MemoryLedger(window);
      await project(ledger, logOf([a, c].map((tx) => ({ kind: 'booked', tx }))), [1]);
      expect([...ledger.breaks.values()].filter((x) => x.accountId === id && x.status === 'open')).toHaveLength(1);
      await project(ledger, logOf([{ kind: 'booked', tx: b }]), [1]);
      expect(ledger.linesOf(id).map((l) => l.id)).toEqual(['g-a', 'g-b', 'g-c']);
      expect([...ledger.breaks.values()].filter((x) => x.accountId === id).map((x) => [x.status, x.resolution])).toEqual([['resolved', 'reordered']]);
      expect(ledger.accounts.get(id)).toMatchObject({ openBreaks: 0, balance: 10_000n });
    }
  });
});

describe('the ledger fold asking for lines', () => {
  const acct = { fiId: 'fi-ask', accountNumber: '42' };
  const id = accountIdOf(acct.fiId, acct.accountNumber);
  const log = (txs: BankTransaction[]) => logOf(txs.map((tx) => ({ kind: 'booked', tx })));
  const chain = (n: number, from: number) =>
    Array.from({ length: n }, (_, i) => bankTx({ ...acct, id: `ask-${from + i}`, amount: -1n, runningBalance: null, transactionDateTime: at(from + i) }));

  it('needs nothing but the account row for an append after the last line', async () => {
    const ledger = new MemoryLedger(1);
    await project(ledger, log([bankTx({ ...acct, id: 'ask-0', amount: 100n, runningBalance: 100n, transactionDateTime: at(0) }), ...chain(5, 1)]), [1]);
    expect(ledger.requests).toEqual([]);
    expect(ledger.accounts.get(id)).toMatchObject({ balance: 95n, lineCount: 6n });
  });

  it('asks for the lines after the last one it holds when a carry runs on, and goes on from there once given them', async () => {
    const ledger = new MemoryLedger(2);
    await project(ledger, log([bankTx({ ...acct, id: 'ask-0', amount: 100n, runningBalance: 100n, transactionDateTime: at(0) }), ...chain(10, 10)]), [100]);
    // A late transaction before a run of ten lines without running balance: its carry goes through all of them.
    const late = decodeLedgerBatch(log([bankTx({ ...acct, id: 'ask-late', amount: 50n, runningBalance: 150n, transactionDateTime: at(5) })]), accountIdOf);
    const context: LedgerContext = ledger.load(late);
    const first = foldLedger(late, context);
    expect(first).toMatchObject({ kind: 'wants', wanted: [{ accountId: id, afterTransactionId: 'ask-11', limit: 64 }] });
    const changes = await foldLoading(late, context, (wanted) => ledger.loadWanted(wanted));
    ledger.write(changes);
    expect(ledger.linesOf(id).map((l) => l.after)).toEqual([100n, 150n, ...Array.from({ length: 10 }, (_, i) => 149n - BigInt(i))]);
    expect(ledger.accounts.get(id)).toMatchObject({ balance: 140n });
  });

  it('never carries across a gap between two loaded islands: it asks for what lies between', async () => {
    const ledger = new MemoryLedger(1);
    await project(ledger, log([bankTx({ ...acct, id: 'ask-0', amount: 100n, runningBalance: 100n, transactionDateTime: at(0) }), ...chain(6, 10)]), [100]);
    // Two late arrivals in one batch: islands around minute 5 (ask-10) and minute 13 (ask-13); the carry from the first
    // runs through ask-11 and ask-12, which neither island holds.
    const batchTxs = [
      bankTx({ ...acct, id: 'ask-late-1', amount: 50n, runningBalance: 150n, transactionDateTime: at(5) }),
      bankTx({ ...acct, id: 'ask-late-2', amount: 0n, runningBalance: null, transactionDateTime: at(13) }),
    ];
    const batch = log(batchTxs);
    await project(ledger, batch, [2]);
    expect(ledger.requests[0]).toMatchObject({ afterTransactionId: 'ask-10' });
    const everything = [bankTx({ ...acct, id: 'ask-0', amount: 100n, runningBalance: 100n, transactionDateTime: at(0) }), ...chain(6, 10), ...batchTxs];
    expect(view(ledger.linesOf(id))).toEqual(
      reference(everything.map((tx) => ({ kind: 'booked', tx })), acct.accountNumber, acct.fiId).lines.map((l) => [l.transaction.id, l.before, l.after]),
    );
    expect(ledger.linesOf(id).map((l) => l.after)).toEqual([100n, 150n, 149n, 148n, 147n, 146n, 146n, 145n, 144n]);
  });
});

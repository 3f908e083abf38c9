import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BankTransaction } from '../../src/domain/bank-transaction';
import { encodeEvent } from '../../src/domain/event-codec';
import { grantStreamId } from '../../src/domain/events';
import type { ParkedEvents } from '../../src/infrastructure/parked-events';
import { createProjectionSchema, readCheckpoint } from '../../src/infrastructure/projection-store';
import { projectFromLog, rebuildProjection, verifyProjection } from '../../src/infrastructure/read-model-maintenance';
import { createGrantsProjection } from '../../src/projections/grants.projection';
import { listGrants } from '../../src/projections/grants.queries';
import { accountIdOf } from '../../src/projections/ledger.projection';
import { getAccount, statement } from '../../src/projections/ledger.queries';
import type { Projection } from '../../src/projections/projection';
import { appendStoredTransaction, bankTx, createLedgerContext, insertStrayLine, type LedgerContext, ledgerRunnerOf, linesOf } from '../support/ledger';
import { readModelIn } from '../../src/projections/read-model';

let ctx: LedgerContext;
let parkedEvents: ParkedEvents;
let clock = Date.parse('2026-03-01T00:00:00Z');

beforeAll(async () => {
  ctx = await createLedgerContext('parking');
  parkedEvents = ctx.root.resolve('parkedEvents');
});
afterAll(async () => {
  await ctx?.close();
});

/** Stored through the port, as an older version could have; each a second after the one before. */
async function appendStored(tx: BankTransaction): Promise<string> {
  clock += 1000;
  return appendStoredTransaction(ctx.store, tx, new Date(clock));
}

const readModels = () => readModelIn(ctx.database.db, 'ledger');
const verify = () => verifyProjection({ db: ctx.database.db, eventStore: ctx.store, projection: ctx.projection });
const at = (day: string, hour: number) => `${day}T${String(hour).padStart(2, '0')}:00:00+07:00`;

describe('an event the ledger cannot apply', () => {
  const x = { fiId: 'fi-park', accountNumber: '100' };
  const y = { fiId: 'fi-park', accountNumber: '200' };
  const X = accountIdOf(x.fiId, x.accountNumber);
  let poison: string;
  let yearZero: string;

  it('is parked after a few tries; the runner projects everything else and says so', async () => {
    await appendStored(bankTx({ ...x, id: 'x1', amount: 100n, runningBalance: 100n, transactionDate: '2026-03-02', transactionDateTime: at('2026-03-02', 9) }));
    // 10^30 đồng: the log holds it, a bigint column cannot.
    poison = await appendStored(
      bankTx({ ...x, id: 'x2', amount: 10n ** 30n, runningBalance: 10n ** 30n + 100n, transactionDate: '2026-03-03', transactionDateTime: at('2026-03-03', 9) }),
    );
    await appendStored(bankTx({ ...x, id: 'x3', amount: 50n, runningBalance: 150n, transactionDate: '2026-03-04', transactionDateTime: at('2026-03-04', 9) }));
    // Year 0000: a date PostgreSQL cannot hold.
    yearZero = await appendStored(bankTx({ ...y, id: 'y0', amount: 5n, runningBalance: 5n, transactionDate: '0000-01-01', transactionDateTime: '0000-01-01T00:00:00Z' }));
    await appendStored(bankTx({ ...y, id: 'y1', amount: 7n, runningBalance: 7n, transactionDate: '2026-03-05', transactionDateTime: at('2026-03-05', 9) }));

    const runner = ledgerRunnerOf(await ctx.another({ env: { PROJECTION_BATCH_SIZE: '100' } }));
    runner.start();
    try {
      await runner.caughtUp(30_000);
      expect(await runner.status()).toMatchObject({ eventsBehind: 0n, lastError: null, parked: 2, eventsProjected: 3n });
    } finally {
      await runner.stop();
    }
    expect((await linesOf(ctx, x.fiId, x.accountNumber)).map((l) => l.transaction_id)).toEqual(['x1', 'x3']);
    expect((await linesOf(ctx, y.fiId, y.accountNumber)).map((l) => l.transaction_id)).toEqual(['y1']);

    const page = await parkedEvents.list({ limit: 10 });
    expect(page.items).toMatchObject([
      { projection: 'ledger', eventId: poison, type: 'BalanceChanged', streamId: 'bankTx-x2', subject: X, transactionDate: '2026-03-03', tries: 3 },
      { projection: 'ledger', eventId: yearZero, subject: accountIdOf(y.fiId, y.accountNumber), transactionDate: '0000-01-01', tries: 3 },
    ]);
    expect(page.items[0]!.error).toMatch(/out of range for type bigint/);
    expect(page.items[1]!.error).toMatch(/out of range/);
    expect(page.next).toBeNull();
  });

  it('shows on its account, whose statements are not reconciled from its date on', async () => {
    expect(await getAccount(readModels(), X)).toMatchObject({ balance: '150', parkedEvents: 1, openBreaks: 0 });
    const march = await statement(readModels(), X, { from: '2026-03-01', to: '2026-03-31', limit: 10, cursor: null });
    expect(march).toMatchObject({ lineCount: 2, parkedEvents: 1, reconciled: false });
    // A period that ends before the parked transaction's date does not depend on it.
    const before = await statement(readModels(), X, { from: '2026-03-01', to: '2026-03-02', limit: 10, cursor: null });
    expect(before).toMatchObject({ lineCount: 1, parkedEvents: 0, reconciled: true });
    // Year 0000 comes before every period: all of Y's statements wait for it.
    const ofY = await statement(readModels(), accountIdOf(y.fiId, y.accountNumber), { from: '2026-03-01', to: '2026-03-31', limit: 10, cursor: null });
    expect(ofY).toMatchObject({ parkedEvents: 1, reconciled: false });
  });

  it('is parked the same way by a rebuild and by verify, so rebuild equals live', async () => {
    const report = await verify();
    expect(report.differences).toEqual([]);
    expect(report).toMatchObject({ ok: true, tablesCompared: 5 });
    await rebuildProjection({ db: ctx.database.db, eventStore: ctx.store, projection: ctx.projection });
    const after = await parkedEvents.list({ limit: 10 });
    expect(after.items.map((p) => [p.eventId, p.tries])).toEqual([
      [poison, 1],
      [yearZero, 1],
    ]);
    expect((await verify()).ok).toBe(true);
  });

  it('stays parked, with the new error and one more try, when a retry fails again', async () => {
    const outcomes = await parkedEvents.retry('ledger', poison);
    expect(outcomes).toMatchObject([{ eventId: poison, outcome: 'failed_again', tries: 2 }]);
    expect(outcomes![0]!.error).toMatch(/out of range for type bigint/);
    expect((await parkedEvents.list({ limit: 10 })).items.map((p) => [p.eventId, p.tries])).toEqual([
      [poison, 2],
      [yearZero, 1],
    ]);
    const { rows } = await sql<{ outcome: string; event_id: string }>`
      select outcome, event_id from parked_event_retries order by id`.execute(ctx.database.db);
    expect(rows).toEqual([{ outcome: 'failed_again', event_id: poison }]);
    // Account X was re-derived for the retry: still exactly what a replay gives.
    expect((await linesOf(ctx, x.fiId, x.accountNumber)).map((l) => l.transaction_id)).toEqual(['x1', 'x3']);
    expect((await verify()).ok).toBe(true);
    expect(await parkedEvents.retry('nothing-like-it')).toBeNull();
    expect(await parkedEvents.retry('ledger', randomUUID())).toEqual([]);
  });

  it('changes nothing when the same batch, parked event included, is replayed', async () => {
    const before = await sql`select * from ledger.parked_events order by event_id`.execute(ctx.database.db);
    const lines = await linesOf(ctx, x.fiId, x.accountNumber);
    const events = (await ctx.store.readAll({ after: null, maxCount: 1000 })).events;
    const { applyIsolating, parkEvents } = await import('../../src/infrastructure/projection-store');
    await ctx.database.db.transaction().execute(async (trx) => {
      const rm = readModelIn(trx, 'ledger');
      const failed = await applyIsolating(rm, ctx.projection, events);
      expect(failed.map((f) => f.event.eventId).sort()).toEqual([poison, yearZero].sort());
      await parkEvents(rm, ctx.projection, failed.map((f) => ({ event: f.event, error: 'again', tries: 9, firstAt: new Date(), at: new Date() })));
    });
    expect((await sql`select * from ledger.parked_events order by event_id`.execute(ctx.database.db)).rows).toEqual(before.rows);
    expect(await linesOf(ctx, x.fiId, x.accountNumber)).toEqual(lines);
    expect((await verify()).ok).toBe(true);
  });
});

describe('a retry once the cause is gone', () => {
  const z = { fiId: 'fi-retry', accountNumber: '300' };
  const Z = accountIdOf(z.fiId, z.accountNumber);

  it('re-derives the account in log order: the same lines, late flags and breaks as a replay of the log', async () => {
    // A stray line under another account holds the transaction id z2 (a hand edit, a restore gone wrong):
    // the primary key refuses z2's own line, so z2 is parked and everything else goes on.
    const removeStray = await insertStrayLine(ctx, 'z2', '2026-03-10');
    await appendStored(bankTx({ ...z, id: 'z1', amount: 100n, runningBalance: 100n, transactionDate: '2026-03-10', transactionDateTime: at('2026-03-10', 9) }));
    const z2 = await appendStored(bankTx({ ...z, id: 'z2', amount: 20n, runningBalance: 120n, transactionDate: '2026-03-10', transactionDateTime: at('2026-03-10', 10) }));
    await ctx.project();
    await appendStored(bankTx({ ...z, id: 'z3', amount: 30n, runningBalance: 150n, transactionDate: '2026-03-10', transactionDateTime: at('2026-03-10', 11) }));
    await ctx.project();
    expect((await parkedEvents.list({ limit: 10 })).items.find((p) => p.eventId === z2)?.error).toMatch(/duplicate key/);
    // Without z2, the bank's chain z1 → z3 does not link: a break is open.
    expect(await getAccount(readModels(), Z)).toMatchObject({ balance: '150', openBreaks: 1, parkedEvents: 1 });
    // Verify sees what the log says and the live books do not: the stray row, z2's line, z2 parked.
    const tainted = await verify();
    expect(tainted.ok).toBe(false);
    expect(tainted.differences.map((d) => d.table).sort()).toEqual(
      expect.arrayContaining(['parked_events', 'statement_lines', 'breaks', 'accounts']),
    );

    await removeStray();
    expect(await parkedEvents.retry('ledger', z2)).toMatchObject([{ eventId: z2, outcome: 'applied', error: null }]);
    // In log order z2 came before z3: it is not late, and no break ever opened (a late application would say otherwise).
    expect(await linesOf(ctx, z.fiId, z.accountNumber)).toEqual([
      { transaction_id: 'z1', balance_before: '0', balance_after: '100', late: false },
      { transaction_id: 'z2', balance_before: '100', balance_after: '120', late: false },
      { transaction_id: 'z3', balance_before: '120', balance_after: '150', late: false },
    ]);
    const { rows: breaks } = await sql`select * from ledger.breaks where account_id = ${Z}`.execute(ctx.database.db);
    expect(breaks).toEqual([]);
    expect(await getAccount(readModels(), Z)).toMatchObject({ balance: '150', openBreaks: 0, parkedEvents: 0, lateDeliveries: 0 });
    expect(await statement(readModels(), Z, { from: '2026-03-10', to: '2026-03-10', limit: 10, cursor: null })).toMatchObject({
      reconciled: true,
      parkedEvents: 0,
    });
    const { rows } = await sql<{ outcome: string }>`select outcome from parked_event_retries where event_id = ${z2}`.execute(ctx.database.db);
    expect(rows).toEqual([{ outcome: 'applied' }]);
    expect((await verify()).differences).toEqual([]);
  });
});

describe('the grants projection', () => {
  const grants = createGrantsProjection();
  /** The grants projection with a bug that refuses some events; clearing the set is deploying the fix. */
  const refused = new Set<string>();
  const buggy: Projection = {
    ...grants,
    async apply(rm, events) {
      const bad = events.find((e) => refused.has(e.eventId));
      if (bad) throw new TypeError(`cannot read the accounts of ${bad.eventId}`);
      await grants.apply(rm, events);
    },
  };

  it('re-folds the grant in log order when an older event is retried after newer ones', async () => {
    await createProjectionSchema(ctx.database.db, grants, 'grants');
    const append = async (data: Parameters<typeof encodeEvent>[0]) => {
      clock += 1000;
      const eventId = randomUUID();
      await ctx.store.appendToStream(grantStreamId('g-park'), [{ eventId, ...encodeEvent(data), metadata: { receivedAt: new Date(clock).toISOString() } }], 'any');
      return eventId;
    };
    const linked = await append({
      type: 'GrantLinked',
      data: { grantId: 'g-park', fiId: 'fi-vcb', accounts: [{ accountNumber: '1', accountName: 'A', currency: 'VND', fiId: 'fi-vcb' }], linkedAt: new Date(clock).toISOString(), requestId: null },
    });
    await append({ type: 'GrantWebhookReceived', data: { grantId: 'g-park', webhookCode: 'ERROR', environment: 'dev', error: { errorType: 'GRANT_ERROR', errorCode: 'GRANT_LOGIN_REQUIRED', errorMessage: null } } });
    refused.add(linked);
    await projectFromLog({ db: ctx.database.db, eventStore: ctx.store, projection: buggy, schema: 'grants' });
    const grantsOf = async () => (await listGrants(readModelIn(ctx.database.db, 'grants'))).find((g) => g.grantId === 'g-park');
    // Without its link, the grant is known from its webhook alone.
    expect(await grantsOf()).toMatchObject({ status: 'login_required', accounts: [], linkedAt: null });

    const service = (await ctx.another({ overrides: { projections: [buggy] } })).resolve('parkedEvents');
    expect(await service.retry('grants')).toMatchObject([{ eventId: linked, outcome: 'failed_again' }]);
    refused.clear();
    expect(await service.retry('grants')).toMatchObject([{ eventId: linked, outcome: 'applied' }]);
    // The link folded first, then the webhook: accounts from the link, the status the webhook left.
    expect(await grantsOf()).toMatchObject({ status: 'login_required', accounts: [{ accountNumber: '1' }], fiId: 'fi-vcb' });
    expect(await grantsOf().then((g) => g?.linkedAt)).not.toBeNull();
    const report = await verifyProjection({ db: ctx.database.db, eventStore: ctx.store, projection: grants });
    expect(report.differences).toEqual([]);
    expect((await readCheckpoint(ctx.database.db, 'grants', 'grants')).events).toBe(1n);
  });
});

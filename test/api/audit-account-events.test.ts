import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accountEventRefs } from '../../src/projections/audit.queries';
import { accountIdOf } from '../../src/projections/ledger.projection';
import { readModelIn } from '../../src/projections/read-model';
import { createTestApp, sample, TEST_TOKEN, type TestApp } from '../support/app';

// An account's events in log order, read without an index led by the log position: the lines that are not late from
// the instant index (ordered by time, then position), the late ones and the conflicting repeats apart. Here the log
// order disagrees with the statement order in every way it can: late lines (dated far from their times), a
// same-instant group that a later line re-orders (x2 and y, neither late, end up y before x2), conflicting repeats of
// late and of timely lines, and another account's events between them.
const FI = '3c26a8ed-efb5-11ed-8620-0ae7e48c82d8';
const A = '555000111';
const B = '555000222';
const AID = accountIdOf(FI, A);

/** [account, id, bank date, time (+07:00, 2026-05-04), amount, running balance]; a repeated id is a conflicting repeat. */
const DELIVERIES: [string, string, string, string, number, number | null][] = [
  [A, 'a01', '2026-05-04', '09:01', 1_000_000, 1_000_000],
  [B, 'b01', '2026-05-04', '09:02', 50, 50],
  [A, 'x2', '2026-05-04', '09:10', 10, 1_000_010],
  [A, 'y', '2026-05-04', '09:10', -10, 1_000_000],
  [B, 'b02', '2026-05-04', '09:03', 50, 100],
  [A, 'x1', '2026-05-04', '09:10', 10, 1_000_010],
  [A, 'a02', '2026-01-04', '09:05', 5, null],
  [A, 'a01', '2026-05-04', '09:01', 999, 1_000_999],
  [A, 'a03', '2026-09-01', '10:00', 10, 1_000_020],
  [B, 'b03', '2026-05-05', '12:00', 50, 150],
  [A, 'a04', '2026-05-04', '09:30', 10, 1_000_030],
  [A, 'x1', '2026-05-04', '09:10', 11, 1_000_011],
  [A, 'a05', '2026-05-04', '11:00', 10, 1_000_040],
  [A, 'a06', '2025-12-31', '08:00', -3, null],
  [B, 'b04', '2026-05-05', '12:30', 50, 200],
  [A, 'a05', '2026-05-04', '11:00', 12, 1_000_042],
  [A, 'a07', '2026-05-03', '12:00', 1, 1_000_041],
];

function webhook([account, id, date, at, amount, runningBalance]: (typeof DELIVERIES)[number]): string {
  const body = JSON.parse(sample('transaction-webhook.json').toString('utf8'));
  const transactionDateTime = `2026-05-04T${at}:00+07:00`;
  return JSON.stringify({ ...body, transaction: { ...body.transaction, id, accountNumber: account, transactionDate: date, bookingDate: date, transactionDateTime, amount, runningBalance } });
}

interface AuditEvent {
  position: string;
  eventId: string;
  type: string;
  data: { transaction: { id: string; accountNumber: string } };
}

describe("the auditor's view of one account", () => {
  let t: TestApp;
  let log: AuditEvent[];
  /** Account A's events in log order, each with the bank date of the line it books or contradicts. */
  let expected: { eventId: string; position: string; date: string }[];

  beforeAll(async () => {
    t = await createTestApp();
    for (const delivery of DELIVERIES) {
      const res = await t.app.inject({ method: 'POST', url: `/webhooks/bankhub?token=${TEST_TOKEN}`, headers: { 'content-type': 'application/json' }, payload: webhook(delivery) });
      expect(res.statusCode).toBe(200);
    }
    await t.runner.caughtUp();
    log = (await t.app.inject({ url: '/audit/events?limit=1000' })).json().events;
    const dateOf = new Map(DELIVERIES.filter(([account]) => account === A).reverse().map(([, id, date]) => [id, date]));
    expected = log
      .filter((e) => e.data.transaction?.accountNumber === A)
      .map((e) => ({ eventId: e.eventId, position: e.position, date: dateOf.get(e.data.transaction.id)! }));
  });
  afterAll(async () => {
    await t?.close();
  });

  it('has what makes log order differ from statement order: late lines, a re-ordered group, conflicting repeats', async () => {
    const statement = (await t.app.inject({ url: `/accounts/${AID}/statement?from=2025-12-01&to=2026-09-30&limit=500` })).json();
    const order = statement.lines.map((l: { transactionId: string }) => l.transactionId);
    expect(order.indexOf('y')).toBeLessThan(order.indexOf('x2'));
    const rows = await t.stores.database.db
      .selectFrom('ledger.statement_lines' as never)
      .select(['transaction_id' as never, 'late' as never])
      .where('account_id' as never, '=', AID as never)
      .execute();
    const late = (rows as unknown as { transaction_id: string; late: boolean }[]).filter((r) => r.late).map((r) => r.transaction_id);
    expect(late.sort()).toEqual(['a02', 'a04', 'a06', 'x1']);
    const types = expected.map((e) => log.find((l) => l.eventId === e.eventId)?.type);
    expect(types.filter((type) => type === 'ConflictingDuplicateReceived')).toHaveLength(3);
  });

  it('pages through them in log order at every page size', async () => {
    for (let limit = 1; limit <= expected.length + 1; limit++) {
      const seen: string[] = [];
      let after: string | null = null;
      do {
        const page: { events: AuditEvent[]; next: string | null } = (await t.app.inject({ url: `/audit/accounts/${AID}/events?limit=${limit}${after ? `&after=${after}` : ''}` })).json();
        seen.push(...page.events.map((e: AuditEvent) => e.eventId));
        after = page.next;
      } while (after !== null && seen.length <= expected.length);
      expect(seen).toEqual(expected.map((e) => e.eventId));
    }
  });

  it('starts right after any position of the log, whichever account or kind of event it is', async () => {
    const rm = readModelIn(t.stores.database.db, 'ledger');
    const positions = ['0000000000000000-0000000000000000', ...log.map((e) => e.position), 'ffffffffffffffff-ffffffffffffffff'];
    for (const after of positions) {
      const refs = await accountEventRefs(rm, AID, { after, limit: 3 });
      expect(refs).toEqual(expected.filter((e) => e.position > after).slice(0, 3).map(({ eventId, position }) => ({ eventId, position })));
    }
  });

  it.each([
    ['2026-05-04', '2026-05-04'],
    ['2026-01-01', '2026-01-31'],
    ['2026-09-01', '2026-09-30'],
    ['2025-12-31', '2026-05-03'],
    ['2026-05-05', '2026-08-31'],
  ])('keeps only the transactions dated %s to %s, from any position', async (from, to) => {
    const rm = readModelIn(t.stores.database.db, 'ledger');
    for (const after of [null, ...expected.map((e) => e.position)]) {
      const refs = await accountEventRefs(rm, AID, { after, limit: 100, from, to });
      const inPeriod = expected.filter((e) => e.date >= from && e.date <= to && (after === null || e.position > after));
      expect(refs).toEqual(inPeriod.map(({ eventId, position }) => ({ eventId, position })));
    }
  });
});

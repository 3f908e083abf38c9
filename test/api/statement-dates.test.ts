import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accountIdOf } from '../../src/projections/ledger.projection';
import { encodeCursor, statementDigest } from '../../src/projections/ledger.queries';
import { createTestApp, sample, TEST_TOKEN, type TestApp } from '../support/app';

// A statement period is a range of the bank's dates (transactionDate), its order the transactions' times
// (transactionDateTime, then the order within a group). The bank's date need not be the local date of the time: here
// lines dated in March lie before, among and after lines dated in February and April. The period's figures and its
// pages (read in time order between the period's first and last lines) must hold March's lines, and only them.
const FI = '3c26a8ed-efb5-11ed-8620-0ae7e48c82d8';
const ACCOUNT = '999000333';
const D = accountIdOf(FI, ACCOUNT);

/** [id, bank date, time, amount, running balance] */
const LINES: [string, string, string, number, number | null][] = [
  ['d1', '2026-03-01', '2026-03-01T09:00:00+07:00', 100_000, 600_000],
  ['d2', '2026-04-01', '2026-03-01T10:00:00+07:00', -50_000, 550_000],
  ['d3', '2026-03-31', '2026-03-01T11:00:00+07:00', 20_000, 570_000],
  ['d4', '2026-03-02', '2026-03-02T09:00:00+07:00', -10_000, null],
  ['d5', '2026-02-28', '2026-03-02T10:00:00+07:00', 5_000, 565_000],
  ['d6', '2026-03-03', '2026-02-27T08:00:00+07:00', 500_000, 500_000],
  ['d7', '2026-03-15', '2026-03-15T09:00:00+07:00', 1_000, 566_000],
  ['d8', '2026-03-02', '2026-04-02T09:00:00+07:00', 4_000, 570_000],
  ['d9', '2026-04-01', '2026-03-20T09:00:00+07:00', -70_000, 500_000],
];

function webhook([id, date, at, amount, runningBalance]: (typeof LINES)[number]): string {
  const body = JSON.parse(sample('transaction-webhook.json').toString('utf8'));
  return JSON.stringify({
    ...body,
    transaction: { ...body.transaction, id, accountNumber: ACCOUNT, transactionDate: date, bookingDate: date, transactionDateTime: at, amount, runningBalance },
  });
}

/** The lines of [from, to] by bank date, in time order: what the statement must hold. */
const expected = (from: string, to: string) =>
  LINES.filter(([, date]) => date >= from && date <= to)
    .sort((a, b) => Date.parse(a[2]) - Date.parse(b[2]))
    .map(([id]) => id);

interface Line {
  transactionId: string;
  eventId: string;
  amount: string;
  balanceBefore: string | null;
  balanceAfter: string | null;
}

describe('a statement whose bank dates disagree with the times', () => {
  let t: TestApp;
  const get = async (url: string) => {
    const res = await t.app.inject({ method: 'GET', url });
    expect(res.statusCode).toBe(200);
    return res.json();
  };
  const big = (v: string | null) => (v === null ? null : BigInt(v));

  beforeAll(async () => {
    t = await createTestApp();
    for (const line of LINES) {
      const res = await t.app.inject({
        method: 'POST',
        url: `/webhooks/bankhub?token=${TEST_TOKEN}`,
        headers: { 'content-type': 'application/json' },
        payload: webhook(line),
      });
      expect(res.statusCode).toBe(200);
    }
    await t.runner.caughtUp();
  });
  afterAll(async () => {
    await t?.close();
  });

  it.each([
    ['2026-03-01', '2026-03-31'],
    ['2026-04-01', '2026-04-30'],
    ['2026-02-01', '2026-02-28'],
    ['2026-03-02', '2026-03-02'],
    ['2026-02-28', '2026-04-01'],
  ])('holds the lines dated %s to %s in time order, page by page at every size, with a digest of them', async (from, to) => {
    const period = `/accounts/${D}/statement?from=${from}&to=${to}`;
    const whole = await get(period);
    const ids = expected(from, to);
    expect(whole.lines.map((l: Line) => l.transactionId)).toEqual(ids);
    expect(whole.lineCount).toBe(ids.length);
    expect(whole.nextCursor).toBeNull();
    expect(whole.digest).toBe(
      statementDigest({
        lines: whole.lines.map((l: Line) => ({ eventId: l.eventId, amount: BigInt(l.amount), balanceBefore: big(l.balanceBefore), balanceAfter: big(l.balanceAfter) })),
        openingBalance: big(whole.openingBalance),
        closingBalance: big(whole.closingBalance),
      }),
    );
    const { lines: _lines, nextCursor: _next, ...figures } = whole;
    for (let limit = 1; limit <= ids.length + 1; limit++) {
      const pages = [];
      let cursor: string | null = null;
      do {
        const page = await get(`${period}&limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`);
        const { lines: _l, nextCursor: _c, ...pageFigures } = page;
        expect(pageFigures).toEqual(figures);
        pages.push(page);
        cursor = page.nextCursor;
      } while (cursor !== null && pages.length <= ids.length);
      expect(pages.flatMap((p) => p.lines)).toEqual(whole.lines);
      expect(pages.length).toBe(Math.max(1, Math.ceil(ids.length / limit)));
    }
  });

  it.each([
    ['2026-03-04', '2026-03-14', '2026-03-03'],
    ['2026-03-16', '2026-03-30', '2026-03-15'],
    ['2026-04-02', '2026-04-30', '2026-04-01'],
    ['2026-02-01', '2026-02-27', null],
  ])('opens a period without lines (%s to %s) with the last line in time order of the latest earlier date (%s)', async (from, to, earlier) => {
    const empty = await get(`/accounts/${D}/statement?from=${from}&to=${to}`);
    expect(empty.lines).toEqual([]);
    expect(empty.lineCount).toBe(0);
    // The latest earlier date's lines may lie anywhere in time: its last line in time order is the one that opens.
    const opening = earlier === null ? null : (await get(`/accounts/${D}/statement?from=${earlier}&to=${earlier}`)).lines.at(-1).balanceAfter;
    if (earlier !== null) expect(opening).not.toBeNull();
    if (earlier !== null) expect(LINES.filter(([, date]) => date > earlier && date < from)).toEqual([]);
    expect(empty.openingBalance).toBe(opening);
    expect(empty.closingBalance).toBe(opening);
  });

  it('starts at the period’s first line for a cursor before the period, and answers no line for one after it', async () => {
    const march = `/accounts/${D}/statement?from=2026-03-01&to=2026-03-31`;
    const whole = await get(march);
    const early = await get(`${march}&limit=2&cursor=${encodeCursor({ instant: new Date('2000-01-01T00:00:00Z'), seq: 0 })}`);
    expect(early.lines).toEqual(whole.lines.slice(0, 2));
    const late = await get(`${march}&limit=2&cursor=${encodeCursor({ instant: new Date('2030-01-01T00:00:00Z'), seq: 0 })}`);
    expect(late.lines).toEqual([]);
    expect(late.nextCursor).toBeNull();
    expect(late.digest).toBe(whole.digest);
  });
  it('finds a line dated far from its time, delivered in a batch of its own before lines dated near theirs', async () => {
    // The account's widest gaps are kept across batches: a later batch of ordinary lines must not narrow them.
    const post = async (line: (typeof LINES)[number]) => {
      const res = await t.app.inject({ method: 'POST', url: `/webhooks/bankhub?token=${TEST_TOKEN}`, headers: { 'content-type': 'application/json' }, payload: webhook(line) });
      expect(res.statusCode).toBe(200);
      await t.runner.caughtUp();
    };
    await post(['f1', '2027-05-01', '2026-03-25T09:00:00+07:00', 1, null]);
    await post(['f2', '2024-11-30', '2026-05-20T09:00:00+07:00', 2, null]);
    await post(['f3', '2026-05-21', '2026-05-21T09:00:00+07:00', 3, null]);
    expect((await get(`/accounts/${D}/statement?from=2027-05-01&to=2027-05-01`)).lines.map((l: Line) => l.transactionId)).toEqual(['f1']);
    expect((await get(`/accounts/${D}/statement?from=2024-11-30&to=2024-11-30`)).lines.map((l: Line) => l.transactionId)).toEqual(['f2']);
    // Periods without lines whose latest earlier date is a line more than a year away in time.
    const f1 = (await get(`/accounts/${D}/statement?from=2027-05-01&to=2027-05-01`)).lines[0].balanceAfter;
    const afterF1 = await get(`/accounts/${D}/statement?from=2027-06-01&to=2027-06-30`);
    expect([afterF1.lineCount, afterF1.openingBalance]).toEqual([0, f1]);
    const f2 = (await get(`/accounts/${D}/statement?from=2024-11-30&to=2024-11-30`)).lines[0].balanceAfter;
    const afterF2 = await get(`/accounts/${D}/statement?from=2024-12-01&to=2025-12-31`);
    expect([afterF2.lineCount, afterF2.openingBalance]).toEqual([0, f2]);
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accountIdOf } from '../../src/projections/ledger.projection';
import { statementSchema } from '../../src/infrastructure/http/statements.routes';
import { serializerCompiler } from '../../src/infrastructure/http/serializer';
import { statementDigest } from '../../src/projections/ledger.queries';
import { createTestApp, sample, TEST_TOKEN, type TestApp } from '../support/app';

const FI = '3c26a8ed-efb5-11ed-8620-0ae7e48c82d8';
const A = accountIdOf(FI, '867623232');
const B = accountIdOf(FI, '555000111');
const C = accountIdOf(FI, '777000222');
const TRICKY = 'Chuyển tiền "học phí", tháng 3 — Nguyễn Văn Ánh';
const FORMULA = '=HYPERLINK("http://x","bấm")';

/** A TRANSACTIONS webhook of the sample's shape for account A (Hanoi time), or B with `accountNumber`. */
function webhook(id: string, at: string, amount: number, runningBalance: number | null, extra: Record<string, unknown> = {}): string {
  const body = JSON.parse(sample('transaction-webhook.json').toString('utf8'));
  const date = at.slice(0, 10);
  return JSON.stringify({
    ...body,
    transaction: { ...body.transaction, id, transactionDate: date, bookingDate: date, transactionDateTime: at, amount, runningBalance, ...extra },
  });
}

// Account A in March 2026: t4 (−30 000) is never delivered, t2 arrives after t3, t1 twice, t5 again with another amount.
const t1 = webhook('a1', '2026-03-01T09:00:00+07:00', 1_000_000, 1_000_000);
const t2 = webhook('a2', '2026-03-01T10:00:00+07:00', -200_000, 800_000, { description: 'Rút tiền' });
const t3 = webhook('a3', '2026-03-02T09:00:00+07:00', 50_000, 850_000, { description: TRICKY, counterAccountName: 'NGUYỄN VĂN ÁNH' });
const t4 = webhook('a4', '2026-03-02T15:00:00+07:00', -30_000, 820_000);
const t5 = webhook('a5', '2026-03-03T08:00:00+07:00', 100_000, 920_000);
const t6 = webhook('a6', '2026-03-31T23:30:00+07:00', 10_000, 930_000, { description: FORMULA });
const t7 = webhook('a7', '2026-04-01T00:10:00+07:00', 5_000, 935_000);
const b1 = webhook('b1', '2026-03-05T12:00:00+07:00', 70_000, 70_000, { accountNumber: '555000111' });
// Some banks send no running balance: b2's is carried from b1; c1, the first line of C, has none to carry.
const b2 = webhook('b2', '2026-03-06T12:00:00+07:00', 5_000, null, { accountNumber: '555000111' });
const c1 = webhook('c1', '2026-03-07T08:00:00+07:00', 40_000, null, { accountNumber: '777000222' });
// Text that JSON must escape, and text it need not: the statement's JSON is written by PostgreSQL (statementJson).
const ESCAPES = 'tab\t, line\nfeed, bell\u0007, del\u007f, "quoted" \\ back/slash, 😀 đồng';
const c2 = webhook('c2', '2026-03-07T09:00:00+07:00', 10_000, 60_000, { accountNumber: '777000222', description: ESCAPES });

describe('accountants’ API', () => {
  let t: TestApp;
  const deliver = async (...bodies: string[]) => {
    const statuses: string[] = [];
    for (const payload of bodies) {
      const res = await t.app.inject({
        method: 'POST',
        url: `/webhooks/bankhub?token=${TEST_TOKEN}`,
        headers: { 'content-type': 'application/json' },
        payload,
      });
      expect(res.statusCode).toBe(200);
      statuses.push(res.json().status);
    }
    await t.runner.caughtUp();
    return statuses;
  };
  const get = (url: string, headers: Record<string, string> = {}) => t.app.inject({ method: 'GET', url, headers });
  const march = `/accounts/${A}/statement?from=2026-03-01&to=2026-03-31`;

  beforeAll(async () => {
    t = await createTestApp();
    // Projected between deliveries, so that t2 is late (t3 already follows it) and breaks open as the bank's gaps appear.
    expect(await deliver(t1, t3)).toEqual(['accepted', 'accepted']);
    expect(await deliver(t5, t2, b1, b2, c1, c2)).toEqual(Array(6).fill('accepted'));
    expect(await deliver(t1, webhook('a5', '2026-03-03T08:00:00+07:00', 100_001, 920_001), t6, t7)).toEqual([
      'duplicate',
      'conflict',
      'accepted',
      'accepted',
    ]);
  });
  afterAll(async () => {
    await t?.close();
  });

  describe('GET /accounts', () => {
    it('lists every account with its balance, last transaction as the bank sent it, open breaks and late deliveries', async () => {
      const res = await get('/accounts');
      expect(res.statusCode).toBe(200);
      expect(res.json().accounts).toEqual([
        {
          id: B,
          fiId: FI,
          fiName: 'VietinBank',
          accountNumber: '555000111',
          currency: 'VND',
          balance: '75000',
          lastTransactionAt: '2026-03-06T12:00:00+07:00',
          openBreaks: 0,
          lateDeliveries: 0,
          parkedEvents: 0,
        },
        {
          id: C,
          fiId: FI,
          fiName: 'VietinBank',
          accountNumber: '777000222',
          currency: 'VND',
          balance: '60000',
          lastTransactionAt: '2026-03-07T09:00:00+07:00',
          openBreaks: 0,
          lateDeliveries: 0,
          parkedEvents: 0,
        },
        {
          id: A,
          fiId: FI,
          fiName: 'VietinBank',
          accountNumber: '867623232',
          currency: 'VND',
          balance: '935000',
          lastTransactionAt: '2026-04-01T00:10:00+07:00',
          openBreaks: 1,
          lateDeliveries: 1,
          parkedEvents: 0,
        },
      ]);
      expect(res.json().nextCursor).toBeNull();
    });

    it('pages by bank, account number and id: the pages concatenate to the whole list', async () => {
      const whole = (await get('/accounts')).json().accounts;
      const ids: string[] = [];
      let cursor: string | null = null;
      do {
        const page = await get(`/accounts?limit=1${cursor ? `&cursor=${cursor}` : ''}`);
        expect(page.statusCode).toBe(200);
        expect(page.json().accounts).toHaveLength(1);
        ids.push(page.json().accounts[0].id);
        cursor = page.json().nextCursor;
      } while (cursor);
      expect(ids).toEqual(whole.map((a: { id: string }) => a.id));
      expect((await get('/accounts?limit=2')).json()).toMatchObject({ accounts: [{ id: B }, { id: C }], nextCursor: expect.any(String) });
    });

    it('answers 400 naming the parameter for a cursor of another listing, a forged one, or a limit over 5 000', async () => {
      const breaksCursor = (await get('/breaks?limit=1')).json().nextCursor;
      const forged = Buffer.from(JSON.stringify(['accounts', 'x', 'y', 'not-a-uuid'])).toString('base64url');
      for (const query of [`cursor=${breaksCursor}`, `cursor=${forged}`, 'cursor=%%%', 'limit=5001', 'limit=0']) {
        const res = await get(`/accounts?${query}`);
        expect(res.statusCode, query).toBe(400);
        expect(res.json().errors.map((e: { field: string }) => e.field)).toEqual([`querystring.${query.split('=')[0]}`]);
      }
    });
    it('GET /accounts/{id} answers one account, and 404 problem+json for an unknown or malformed id', async () => {
      const one = await get(`/accounts/${A}`);
      expect(one.json()).toMatchObject({ id: A, balance: '935000', openBreaks: 1 });
      for (const id of [accountIdOf(FI, 'nope'), 'not-an-id']) {
        const res = await get(`/accounts/${id}`);
        expect(res.statusCode).toBe(404);
        expect(res.headers['content-type']).toContain('application/problem+json');
        expect(res.json()).toMatchObject({ status: 404, detail: expect.stringContaining(id) });
      }
    });
  });

  describe('GET /accounts/{id}/balance', () => {
    it.each([
      ['before the first line', '2026-03-01T08:59:59+07:00', null, null],
      ['at the instant of a line (inclusive)', '2026-03-01T09:00:00+07:00', '1000000', 'a1'],
      ['between two lines, in another offset', '2026-03-01T23:00:00Z', '800000', 'a2'],
      ['one millisecond before a line', '2026-03-02T01:59:59.999Z', '800000', 'a2'],
      ['at a line given in UTC', '2026-03-02T02:00:00Z', '850000', 'a3'],
      ['across the missing transaction', '2026-03-02T20:00:00+07:00', '850000', 'a3'],
      ['after everything', '2030-01-01T00:00:00+07:00', '935000', 'a7'],
    ])('%s', async (_name, at, balance, transactionId) => {
      const res = await get(`/accounts/${A}/balance?at=${encodeURIComponent(at)}`);
      expect(res.statusCode).toBe(200);
      expect(res.json()).toEqual({ accountId: A, at, balance, transactionId });
    });

    it.each([
      ['not a date', 'yesterday'],
      ['no offset', '2026-03-01T09:00:00'],
      ['an impossible day', '2026-02-30T09:00:00Z'],
      ['missing', null],
    ])('answers 400 naming `at` when it is %s', async (_name, at) => {
      const res = await get(`/accounts/${A}/balance${at === null ? '' : `?at=${encodeURIComponent(at)}`}`);
      expect(res.statusCode).toBe(400);
      expect(res.headers['content-type']).toContain('application/problem+json');
      expect(res.json().errors.map((e: { field: string }) => e.field)).toEqual(['querystring.at']);
    });

    it('answers 404 for an unknown account', async () => {
      expect((await get(`/accounts/${accountIdOf(FI, 'nope')}/balance?at=2026-03-01T09:00:00Z`)).statusCode).toBe(404);
    });
  });

  describe('GET /accounts/{id}/statement', () => {
    it('gives the period’s lines in statement order with totals, opening and closing, the open break and no reconciliation', async () => {
      const res = await get(march);
      expect(res.statusCode).toBe(200);
      const s = res.json();
      expect(s).toMatchObject({
        accountId: A,
        currency: 'VND',
        from: '2026-03-01',
        to: '2026-03-31',
        openingBalance: '0',
        closingBalance: '930000',
        totalCredits: '1160000',
        totalDebits: '200000',
        reconciled: false,
        lineCount: 5,
        nextCursor: null,
      });
      expect(s.lines.map((l: { transactionId: string }) => l.transactionId)).toEqual(['a1', 'a2', 'a3', 'a5', 'a6']);
      expect(s.lines[1]).toMatchObject({
        transactionDate: '2026-03-01',
        transactionDateTime: '2026-03-01T10:00:00+07:00',
        bookingDate: '2026-03-01',
        amount: '-200000',
        runningBalance: '800000',
        balanceBefore: '1000000',
        balanceAfter: '800000',
        description: 'Rút tiền',
        late: true,
      });
      // The first version of a5 stays authoritative; the conflicting repeat is an anomaly, not a line.
      expect(s.lines[3]).toMatchObject({ transactionId: 'a5', amount: '100000', late: false });
      expect(s.breaks).toEqual([
        expect.objectContaining({ afterTransactionId: 'a3', beforeTransactionId: 'a5', missingAmount: '-30000', status: 'open' }),
      ]);
    });

    it('is reconciled when the lines link, yet lists an open break that touches the period', async () => {
      const s = (await get(`/accounts/${A}/statement?from=2026-03-01&to=2026-03-02`)).json();
      expect(s).toMatchObject({ reconciled: true, openingBalance: '0', closingBalance: '850000', lineCount: 3 });
      expect(s.breaks.map((b: { beforeTransactionId: string }) => b.beforeTransactionId)).toEqual(['a5']);
    });

    it('is not reconciled when the first line does not link to the line before the period', async () => {
      const s = (await get(`/accounts/${A}/statement?from=2026-03-03&to=2026-03-31`)).json();
      expect(s).toMatchObject({ reconciled: false, openingBalance: '820000', closingBalance: '930000', totalDebits: '0' });
      const april = (await get(`/accounts/${A}/statement?from=2026-04-01&to=2026-04-30`)).json();
      expect(april).toMatchObject({ reconciled: true, openingBalance: '930000', closingBalance: '935000', breaks: [] });
    });

    it('carries the balance at the end of the day before `from` through a period without lines', async () => {
      const may = (await get(`/accounts/${A}/statement?from=2026-05-01&to=2026-05-31`)).json();
      expect(may).toMatchObject({ openingBalance: '935000', closingBalance: '935000', totalCredits: '0', totalDebits: '0', lines: [], reconciled: true });
      const before = (await get(`/accounts/${A}/statement?from=2026-02-01&to=2026-02-28`)).json();
      expect(before).toMatchObject({ openingBalance: null, closingBalance: null, lines: [], breaks: [] });
    });

    it('carries a balance the bank did not send, and does not call unknown balances reconciled', async () => {
      const b = (await get(`/accounts/${B}/statement?from=2026-03-01&to=2026-03-31`)).json();
      expect(b).toMatchObject({ reconciled: true, openingBalance: '0', closingBalance: '75000' });
      expect(b.lines[1]).toMatchObject({ transactionId: 'b2', runningBalance: null, balanceBefore: '70000', balanceAfter: '75000' });
      const c = (await get(`/accounts/${C}/statement?from=2026-03-01&to=2026-03-31`)).json();
      expect(c).toMatchObject({ reconciled: false, openingBalance: null, closingBalance: '60000', breaks: [] });
      expect(c.lines[0]).toMatchObject({ transactionId: 'c1', runningBalance: null, balanceBefore: null, balanceAfter: null });
      const cAt = (await get(`/accounts/${C}/balance?at=2026-03-07T08:30:00%2B07:00`)).json();
      expect(cAt).toEqual({ accountId: C, at: '2026-03-07T08:30:00+07:00', balance: null, transactionId: 'c1' });
    });

    it('pages the lines with limit and cursor; the pages concatenate to the period and every figure stays the same', async () => {
      const whole = (await get(march)).json();
      const pages = [];
      let cursor: string | null = null;
      do {
        const res = await get(`${march}&limit=2${cursor ? `&cursor=${cursor}` : ''}`);
        expect(res.statusCode).toBe(200);
        const page = res.json();
        pages.push(page);
        cursor = page.nextCursor;
      } while (cursor !== null && pages.length < 10);
      expect(pages.map((p) => p.lines.length)).toEqual([2, 2, 1]);
      expect(pages.flatMap((p) => p.lines)).toEqual(whole.lines);
      for (const page of pages) {
        const { lines: _l, nextCursor: _c, ...figures } = page;
        const { lines: _wl, nextCursor: _wc, ...wholeFigures } = whole;
        expect(figures).toEqual(wholeFigures);
      }
    });

    it('answers the bytes the response schema’s serializer writes, on every page, with or without lines and breaks', async () => {
      const serialize = serializerCompiler({ schema: statementSchema, method: 'GET', url: '/accounts/:id/statement', httpStatus: '200' });
      const queries = [
        march,
        `${march}&limit=2`,
        `/accounts/${A}/statement?from=2026-05-01&to=2026-05-31`,
        `/accounts/${A}/statement?from=2026-02-01&to=2026-02-28`,
        `/accounts/${B}/statement?from=2026-03-01&to=2026-03-31`,
        `/accounts/${C}/statement?from=2026-03-01&to=2026-03-31`,
      ];
      const second = (await get(`${march}&limit=2`)).json().nextCursor;
      queries.push(`${march}&limit=2&cursor=${second}`);
      for (const query of queries) {
        const res = await get(query);
        expect(res.statusCode).toBe(200);
        expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
        expect(res.body).toBe(serialize(res.json()));
      }
      const c = (await get(`/accounts/${C}/statement?from=2026-03-01&to=2026-03-31`)).json();
      expect(c.lines[1].description).toBe(ESCAPES);
    });

    it('signs the whole period with a digest anyone can recompute from the lines and balances', async () => {
      const s = (await get(march)).json();
      const recomputed = statementDigest({
        lines: s.lines.map((l: { eventId: string; amount: string; balanceBefore: string | null; balanceAfter: string | null }) => ({
          eventId: l.eventId,
          amount: BigInt(l.amount),
          balanceBefore: l.balanceBefore === null ? null : BigInt(l.balanceBefore),
          balanceAfter: l.balanceAfter === null ? null : BigInt(l.balanceAfter),
        })),
        openingBalance: BigInt(s.openingBalance),
        closingBalance: BigInt(s.closingBalance),
      });
      expect(s.digest).toMatch(/^[0-9a-f]{64}$/);
      expect(s.digest).toBe(recomputed);
      expect(s.digest).not.toBe(statementDigest({ lines: [], openingBalance: 0n, closingBalance: 930_000n }));
    });

    it.each([
      ['an impossible date', '?from=2026-02-30&to=2026-03-31', ['querystring.from']],
      ['a date in another format', '?from=01/03/2026&to=2026-03-31', ['querystring.from']],
      ['a reversed range', '?from=2026-03-31&to=2026-03-01', ['querystring.from']],
      ['no `to`', '?from=2026-03-01', ['querystring.to']],
      ['a cursor this API never wrote', '?from=2026-03-01&to=2026-03-31&cursor=not%2Ba%2Bcursor', ['querystring.cursor']],
      ['a well-formed but foreign cursor', `?from=2026-03-01&to=2026-03-31&cursor=${Buffer.from('hello').toString('base64url')}`, ['querystring.cursor']],
      ['a limit of 0', '?from=2026-03-01&to=2026-03-31&limit=0', ['querystring.limit']],
      ['a limit over 5 000', '?from=2026-03-01&to=2026-03-31&limit=5001', ['querystring.limit']],
    ])('answers 400 naming the parameter for %s', async (_name, query, fields) => {
      const res = await get(`/accounts/${A}/statement${query}`);
      expect(res.statusCode).toBe(400);
      expect(res.headers['content-type']).toContain('application/problem+json');
      expect(res.json().errors.map((e: { field: string }) => e.field)).toEqual(fields);
    });

    it('answers 404 for an unknown account', async () => {
      const res = await get(`/accounts/${accountIdOf(FI, 'nope')}/statement?from=2026-03-01&to=2026-03-31`);
      expect(res.statusCode).toBe(404);
      expect(res.headers['content-type']).toContain('application/problem+json');
    });
  });

  describe('statement as CSV', () => {
    it('answers UTF-8 with a BOM, a header, opening, every line (not paged) and closing, quoted so a spreadsheet reads it back', async () => {
      const res = await get(`${march}&format=csv&limit=1`);
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toBe('text/csv; charset=utf-8');
      expect(res.headers['content-disposition']).toBe('attachment; filename="statement-867623232-2026-03-01-2026-03-31.csv"');
      expect([...res.rawPayload.subarray(0, 3)]).toEqual([0xef, 0xbb, 0xbf]);
      expect(res.payload).toContain('"Chuyển tiền ""học phí"", tháng 3 — Nguyễn Văn Ánh"');

      const rows = parseCsv(res.rawPayload.subarray(3).toString('utf8'));
      const [header, ...body] = rows;
      expect(header!.slice(0, 10)).toEqual([
        'row',
        'transactionId',
        'transactionDate',
        'transactionDateTime',
        'bookingDate',
        'amount',
        'balanceBefore',
        'balanceAfter',
        'runningBalance',
        'description',
      ]);
      const records = body.map((r) => Object.fromEntries(header!.map((h, i) => [h, r[i]])));
      expect(records.map((r) => [r.row, r.transactionId, r.balanceAfter])).toEqual([
        ['opening', '', '0'],
        ['line', 'a1', '1000000'],
        ['line', 'a2', '800000'],
        ['line', 'a3', '850000'],
        ['line', 'a5', '920000'],
        ['line', 'a6', '930000'],
        ['closing', '', '930000'],
      ]);
      expect(records[3]).toMatchObject({ amount: '50000', description: TRICKY, counterAccountName: 'NGUYỄN VĂN ÁNH', late: 'false' });
      expect(records[2]).toMatchObject({ amount: '-200000', late: 'true' });
      // A description that a spreadsheet would run as a formula stays text.
      expect(records[5]!.description).toBe(`'${FORMULA}`);
    });

    it('is chosen by Accept: text/csv unless JSON is preferred or format=json is asked for', async () => {
      expect((await get(march, { accept: 'text/csv' })).headers['content-type']).toBe('text/csv; charset=utf-8');
      expect((await get(march, { accept: 'application/json;q=0.5, text/csv' })).headers['content-type']).toBe('text/csv; charset=utf-8');
      expect((await get(march, { accept: 'application/json, text/csv;q=0.5' })).headers['content-type']).toContain('application/json');
      expect((await get(`${march}&format=json`, { accept: 'text/csv' })).headers['content-type']).toContain('application/json');
    });

    it('still reports an unknown account as problem+json', async () => {
      const res = await get(`/accounts/${accountIdOf(FI, 'nope')}/statement?from=2026-03-01&to=2026-03-31&format=csv`);
      expect(res.statusCode).toBe(404);
      expect(res.headers['content-type']).toContain('application/problem+json');
    });
  });

  describe('GET /breaks and GET /anomalies', () => {
    it('lists breaks with their history, filtered by status and account', async () => {
      const all = (await get('/breaks')).json().breaks;
      expect(all).toHaveLength(2);
      const [resolved] = (await get('/breaks?status=resolved')).json().breaks;
      expect(resolved).toMatchObject({
        accountId: A,
        afterTransactionId: 'a1',
        beforeTransactionId: 'a3',
        missingAmount: '-200000',
        status: 'resolved',
        resolution: 'filled',
        resolvedBySource: 'webhook',
        resolvedAt: expect.any(String),
        healing: { attempts: 0, lastAttemptAt: null, lastOutcome: null, lastDetail: null },
      });
      const open = (await get(`/breaks?status=open&accountId=${A}`)).json().breaks;
      expect(open).toEqual([expect.objectContaining({ afterTransactionId: 'a3', beforeTransactionId: 'a5', resolvedAt: null })]);
      expect((await get(`/breaks?accountId=${B}`)).json().breaks).toEqual([]);
      expect((await get('/breaks?accountId=not-an-id')).json().breaks).toEqual([]);
      // Open first, then resolved; paged one at a time they come in the same order, filters and all.
      expect(all.map((b: { status: string }) => b.status)).toEqual(['open', 'resolved']);
      const first = (await get('/breaks?limit=1')).json();
      expect(first.breaks).toEqual([all[0]]);
      const second = (await get(`/breaks?limit=1&cursor=${first.nextCursor}`)).json();
      expect(second).toEqual({ breaks: [all[1]], nextCursor: null });
      const filtered = (await get(`/breaks?accountId=${A}&status=resolved&limit=1`)).json();
      expect(filtered).toEqual({ breaks: [resolved], nextCursor: null });
      const bad = await get('/breaks?status=closed');
      expect(bad.statusCode).toBe(400);
      expect(bad.json().errors.map((e: { field: string }) => e.field)).toEqual(['querystring.status']);
    });

    it('lists one anomaly per late line and per conflicting repeat', async () => {
      const late = (await get('/anomalies?kind=late')).json().anomalies;
      expect(late).toEqual([
        {
          kind: 'late',
          accountId: A,
          transactionId: 'a2',
          receivedAt: expect.any(String),
          eventId: expect.any(String),
          source: 'webhook',
          details: { followingTransactionId: 'a3', transactionDateTime: '2026-03-01T10:00:00+07:00' },
        },
      ]);
      const conflicts = (await get(`/anomalies?kind=conflict&accountId=${A}`)).json().anomalies;
      expect(conflicts).toEqual([expect.objectContaining({ kind: 'conflict', transactionId: 'a5', details: expect.objectContaining({ amount: '100001' }) })]);
      const both = (await get('/anomalies')).json().anomalies;
      expect(both).toHaveLength(2);
      // In the order they were detected (when the delivery reached us).
      expect(both.map((a: { receivedAt: string }) => a.receivedAt)).toEqual(both.map((a: { receivedAt: string }) => a.receivedAt).sort());
      const page1 = (await get('/anomalies?limit=1')).json();
      const page2 = (await get(`/anomalies?limit=1&cursor=${page1.nextCursor}`)).json();
      expect([...page1.anomalies, ...page2.anomalies]).toEqual(both);
      expect(page2.nextCursor).toBeNull();
      expect((await get(`/anomalies?kind=late&limit=1&cursor=${page1.nextCursor}`)).json().anomalies).toEqual(
        both.slice(1).filter((a: { kind: string }) => a.kind === 'late'),
      );
      expect((await get(`/anomalies?accountId=${B}`)).json().anomalies).toEqual([]);
      expect((await get('/anomalies?kind=early')).statusCode).toBe(400);
    });
  });

  describe('the OpenAPI document', () => {
    it('lists every route with its parameters and responses, and /docs serves it', async () => {
      const doc = (await get('/openapi.json')).json();
      expect(doc.openapi).toMatch(/^3\./);
      const expected: Record<string, string[]> = {
        '/webhooks/bankhub': ['post'],
        '/accounts': ['get'],
        '/accounts/{id}': ['get'],
        '/accounts/{id}/balance': ['get'],
        '/accounts/{id}/statement': ['get'],
        '/breaks': ['get'],
        '/anomalies': ['get'],
      };
      for (const [path, methods] of Object.entries(expected)) {
        for (const method of methods) expect(doc.paths[path]?.[method]?.responses?.['200'], `${method} ${path}`).toBeDefined();
      }
      const params = (path: string) => doc.paths[path].get.parameters.map((p: { name: string; in: string }) => `${p.in}:${p.name}`);
      expect(params('/accounts/{id}/statement').sort()).toEqual(
        ['path:id', 'query:cursor', 'query:format', 'query:from', 'query:limit', 'query:to'].sort(),
      );
      expect(params('/accounts/{id}/balance').sort()).toEqual(['path:id', 'query:at']);
      expect(doc.paths['/accounts/{id}/statement'].get.responses['404']).toBeDefined();
      expect(Object.keys(doc.components.schemas)).toEqual(expect.arrayContaining(['Account', 'Statement', 'StatementLine', 'Break', 'Anomaly']));

      const docs = await get('/docs');
      expect(docs.statusCode).toBe(200);
      expect(docs.headers['content-type']).toContain('text/html');
    });
  });

  it('reconciles March once the missing transaction arrives: the break resolves and the digest changes', async () => {
    const before = (await get(march)).json();
    expect(await deliver(t4)).toEqual(['accepted']);
    const after = (await get(march)).json();
    expect(after).toMatchObject({ reconciled: true, breaks: [], totalDebits: '230000', closingBalance: '930000', lineCount: 6 });
    expect(after.lines.map((l: { transactionId: string }) => l.transactionId)).toEqual(['a1', 'a2', 'a3', 'a4', 'a5', 'a6']);
    expect(after.digest).not.toBe(before.digest);
    expect((await get('/breaks?status=open')).json().breaks).toEqual([]);
    expect((await get(`/accounts/${A}`)).json()).toMatchObject({ openBreaks: 0, lateDeliveries: 2 });
  });
});

/** RFC 4180, as a spreadsheet reads it: quoted fields may hold commas, quotes ("") and line breaks. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') (field += '"'), i++;
      else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') row.push(field), (field = '');
    else if (c === '\r' && text[i + 1] === '\n') {
      row.push(field), rows.push(row), (row = []), (field = ''), i++;
    } else field += c;
  }
  if (field !== '' || row.length > 0) row.push(field), rows.push(row);
  return rows;
}

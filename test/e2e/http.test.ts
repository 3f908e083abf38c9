import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, sample, TEST_TOKEN, type TestApp } from '../support/app';

function webhook(id: string, at: string, amount: number, runningBalance: number): string {
  const body = JSON.parse(sample('transaction-webhook.json').toString('utf8'));
  const date = at.slice(0, 10);
  return JSON.stringify({
    ...body,
    transaction: { ...body.transaction, id, transactionDate: date, bookingDate: date, transactionDateTime: at, amount, runningBalance, description: 'Thanh toán, "hoá đơn" 05' },
  });
}

describe('over real HTTP', () => {
  let t: TestApp;
  let base: string;
  const post = async (body: string) => {
    const res = await fetch(`${base}/webhooks/bankhub?token=${TEST_TOKEN}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    });
    expect(res.status).toBe(200);
    return ((await res.json()) as { status: string }).status;
  };
  const getJson = async (path: string) => {
    const res = await fetch(`${base}${path}`);
    return { status: res.status, type: res.headers.get('content-type'), body: (await res.json()) as any };
  };

  beforeAll(async () => {
    t = await createTestApp();
    await t.app.listen({ host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await t?.close();
  });

  it('books webhooks posted by a client and answers the statement, balance, breaks and anomalies they imply', async () => {
    // e3 (−1 000) is never delivered; e2 comes after e4; e1 comes twice; e4 once more with another balance.
    expect(await post(webhook('e1', '2026-06-01T08:00:00+07:00', 500_000, 500_000))).toBe('accepted');
    expect(await post(webhook('e4', '2026-06-03T08:00:00+07:00', 2_000, 401_000))).toBe('accepted');
    await t.runner.caughtUp();
    expect(await post(webhook('e2', '2026-06-02T08:00:00+07:00', -100_000, 400_000))).toBe('accepted');
    expect(await post(webhook('e1', '2026-06-01T08:00:00+07:00', 500_000, 500_000))).toBe('duplicate');
    expect(await post(webhook('e4', '2026-06-03T08:00:00+07:00', 2_000, 401_500))).toBe('conflict');
    await t.runner.caughtUp();

    const { body: accounts } = await getJson('/accounts');
    expect(accounts.accounts).toHaveLength(1);
    const id: string = accounts.accounts[0].id;
    expect(accounts.accounts[0]).toMatchObject({ balance: '401000', openBreaks: 1, lateDeliveries: 1 });

    const statement = await getJson(`/accounts/${id}/statement?from=2026-06-01&to=2026-06-30`);
    expect(statement.status).toBe(200);
    expect(statement.body).toMatchObject({
      openingBalance: '0',
      closingBalance: '401000',
      totalCredits: '502000',
      totalDebits: '100000',
      reconciled: false,
      breaks: [{ afterTransactionId: 'e2', beforeTransactionId: 'e4', missingAmount: '-1000', status: 'open' }],
    });
    expect(statement.body.lines.map((l: { transactionId: string; late: boolean }) => [l.transactionId, l.late])).toEqual([
      ['e1', false],
      ['e2', true],
      ['e4', false],
    ]);

    const balance = await getJson(`/accounts/${id}/balance?at=${encodeURIComponent('2026-06-02T12:00:00+07:00')}`);
    expect(balance.body).toEqual({ accountId: id, at: '2026-06-02T12:00:00+07:00', balance: '400000', transactionId: 'e2' });

    const breaks = await getJson('/breaks?status=resolved');
    expect(breaks.body.breaks).toEqual([expect.objectContaining({ afterTransactionId: 'e1', beforeTransactionId: 'e4', resolution: 'narrowed' })]);
    const anomalies = await getJson(`/anomalies?accountId=${id}`);
    expect(anomalies.body.anomalies.map((a: { kind: string; transactionId: string }) => `${a.kind}:${a.transactionId}`).sort()).toEqual([
      'conflict:e4',
      'late:e2',
    ]);

    const csv = await fetch(`${base}/accounts/${id}/statement?from=2026-06-01&to=2026-06-30`, { headers: { accept: 'text/csv' } });
    expect(csv.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    const bytes = Buffer.from(await csv.arrayBuffer());
    expect([...bytes.subarray(0, 3)]).toEqual([0xef, 0xbb, 0xbf]);
    const rows = bytes.subarray(3).toString('utf8').trimEnd().split('\r\n');
    expect(rows).toHaveLength(1 + 1 + 3 + 1);
    expect(rows[2]).toContain('"Thanh toán, ""hoá đơn"" 05"');

    const missing = await getJson(`/accounts/${id}/statement?from=2026-06-30&to=2026-06-01`);
    expect(missing.status).toBe(400);
    expect(missing.type).toContain('application/problem+json');
    expect(missing.body.errors[0].field).toBe('querystring.from');
  });
});

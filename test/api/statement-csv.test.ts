import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { stringify as stringifyCsv } from 'csv-stringify/sync';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordTransaction } from '../../src/application/ingest-webhook';
import { accountIdOf } from '../../src/projections/ledger.projection';
import { bankTx } from '../support/ledger';
import { eventually } from '../support/postgres';
import { createTestApp, type TestApp } from '../support/app';

const acct = { fiId: 'fi-csv', accountNumber: '42' };
const ID = accountIdOf(acct.fiId, acct.accountNumber);
const LINES = 2_600;
const odd = ['Chuyển tiền "học phí", tháng 3', '=HYPERLINK("http://x","bấm")', 'hai\ndòng', '+84 912', 'a,b;c', '@SUM(A1)', ''];

/**
 * The CSV as the service built it before it was streamed: the whole period in memory, one csv-stringify call. The
 * streamed CSV must give the same bytes; this reference is fed the JSON API's pages.
 */
const CSV_COLUMNS = [
  'row', 'transactionId', 'transactionDate', 'transactionDateTime', 'bookingDate', 'amount', 'balanceBefore', 'balanceAfter',
  'runningBalance', 'description', 'reference', 'counterAccountNumber', 'counterAccountName', 'counterAccountBankName',
  'virtualAccountNumber', 'late', 'eventId',
] as const;
const TEXT_COLUMNS = new Set(['transactionId', 'description', 'reference', 'counterAccountNumber', 'counterAccountName', 'counterAccountBankName', 'virtualAccountNumber']);
const inert = (value: string) => (/^[=+\-@\t\r]/.test(value) ? `'${value}` : value);
function referenceCsv(s: { from: string; to: string; openingBalance: string | null; closingBalance: string | null }, lines: Record<string, unknown>[]): Buffer {
  const rows = [
    { row: 'opening', transactionDate: s.from, balanceAfter: s.openingBalance, description: 'Opening balance' },
    ...lines.map((l) => ({ row: 'line', ...l, late: String(l.late) })),
    { row: 'closing', transactionDate: s.to, balanceAfter: s.closingBalance, description: 'Closing balance' },
  ];
  const safe = rows.map((r) =>
    r.row === 'line' ? Object.fromEntries(Object.entries(r).map(([c, v]) => [c, typeof v === 'string' && TEXT_COLUMNS.has(c) ? inert(v) : v])) : r,
  );
  return Buffer.from(`\uFEFF${stringifyCsv(safe, { header: true, columns: [...CSV_COLUMNS], record_delimiter: 'windows' })}`, 'utf8');
}

describe('the statement CSV, streamed', () => {
  let t: TestApp;
  const get = (url: string) => t.app.inject({ method: 'GET', url });

  beforeAll(async () => {
    t = await createTestApp();
    // 2 600 lines over ~27 days, some without running balance, with text that needs quoting or defusing.
    let balance = 1_000_000n;
    const txs = Array.from({ length: LINES }, (_, i) => {
      const amount = BigInt((i % 7) - 3) * 1000n + 1n;
      balance += amount;
      const at = new Date(Date.parse('2026-03-01T00:00:00+07:00') + i * 900_000 + (i % 3 === 0 ? 0 : 1));
      const local = new Date(at.getTime() + 7 * 3_600_000).toISOString();
      return bankTx({
        ...acct,
        id: `csv${String(i).padStart(6, '0')}`,
        amount,
        runningBalance: i % 11 === 5 ? null : balance,
        transactionDate: local.slice(0, 10),
        transactionDateTime: `${local.slice(0, 19)}+07:00`,
        description: odd[i % odd.length]!,
        counterAccountName: i % 5 === 0 ? 'NGUYỄN VĂN ÁNH' : null,
      });
    });
    for (let i = 0; i < txs.length; i += 200) {
      await Promise.all(
        txs.slice(i, i + 200).map((transaction) =>
          recordTransaction(t.stores.eventStore, { transaction, source: 'webhook', grantId: null, metadata: { receivedAt: new Date().toISOString(), source: 'webhook' }, attachment: '{}' }),
        ),
      );
    }
    await t.runner.caughtUp(60_000);
  }, 120_000);
  afterAll(async () => {
    await t?.close();
  });

  it.each([
    ['the whole history (three chunks)', '2026-02-01', '2026-04-30'],
    ['a period in the middle', '2026-03-05', '2026-03-19'],
    ['one day', '2026-03-10', '2026-03-10'],
    ['a period without lines after the history', '2026-05-01', '2026-05-31'],
    ['a period without lines before it', '2026-01-01', '2026-01-31'],
  ])('gives the same bytes as the whole-period CSV did: %s', async (_name, from, to) => {
    type Page = { from: string; to: string; openingBalance: string | null; closingBalance: string | null; lineCount: number; lines: Record<string, unknown>[]; nextCursor: string | null };
    const lines: Record<string, unknown>[] = [];
    let first: Page | null = null;
    let cursor: string | null = null;
    do {
      const page: Page = (await get(`/accounts/${ID}/statement?from=${from}&to=${to}&limit=700${cursor ? `&cursor=${cursor}` : ''}`)).json();
      first ??= page;
      lines.push(...page.lines);
      cursor = page.nextCursor;
    } while (cursor);
    expect(lines).toHaveLength(first!.lineCount);
    const res = await get(`/accounts/${ID}/statement?from=${from}&to=${to}&format=csv`);
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/csv; charset=utf-8');
    expect(res.rawPayload.equals(referenceCsv(first!, lines))).toBe(true);
  });

  it('holds one snapshot while a slow client reads, and leaves no transaction open when the client goes away', async () => {
    // Loopback takes ~4 MB into socket buffers before a writer waits: the CSV must be larger than that, or the export
    // finishes whether the client reads or not (then nothing is left open to see). ~10 MB: 2 400 lines of 4 KB.
    const big = { fiId: 'fi-csv-big', accountNumber: '43' };
    const bigTxs = Array.from({ length: 2_400 }, (_, i) =>
      bankTx({
        ...big,
        id: `csvbig${String(i).padStart(6, '0')}`,
        amount: 1n,
        runningBalance: BigInt(i + 1),
        transactionDate: '2026-03-02',
        transactionDateTime: new Date(Date.parse('2026-03-02T00:00:00Z') + i * 1000).toISOString().replace('Z', '+00:00').replace('.000', ''),
        description: `${i} ${'dòng dài '.repeat(450)}`,
      }),
    );
    for (let i = 0; i < bigTxs.length; i += 200) {
      await Promise.all(
        bigTxs.slice(i, i + 200).map((transaction) =>
          recordTransaction(t.stores.eventStore, { transaction, source: 'webhook', grantId: null, metadata: { receivedAt: new Date().toISOString(), source: 'webhook' }, attachment: '{}' }),
        ),
      );
    }
    await t.runner.caughtUp(60_000);
    const BIG = accountIdOf(big.fiId, big.accountNumber);
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = t.app.server.address() as AddressInfo;
    const openTransactions = async () =>
      (
        await sql<{ n: number }>`
          select count(*)::int as n from pg_stat_activity
          where datname = current_database() and state like 'idle in transaction%' and pid <> pg_backend_pid()`.execute(t.stores.database.db)
      ).rows[0]!.n;
    // The client reads the first bytes, then stops reading: the export waits (its transaction open) for it.
    let client: ReturnType<typeof httpRequest> | undefined;
    const received = await new Promise<Buffer>((resolve, reject) => {
      const req = httpRequest({ port, host: '127.0.0.1', path: `/accounts/${BIG}/statement?from=2026-01-01&to=2026-12-31&format=csv` }, (res) => {
        res.once('data', (chunk: Buffer) => {
          res.pause();
          resolve(chunk);
        });
      });
      req.on('error', () => {});
      req.end();
      client = req;
      setTimeout(() => reject(new Error('no bytes')), 10_000);
    });
    expect(received.subarray(0, 3).equals(Buffer.from([0xef, 0xbb, 0xbf]))).toBe(true);
    // The export waits for the reader with its snapshot open: memory stays at what the socket holds.
    await eventually(async () => expect(await openTransactions()).toBe(1), { timeoutMs: 10_000 });
    client!.destroy(); // gone before the end
    await eventually(async () => expect(await openTransactions()).toBe(0), { timeoutMs: 10_000 });
    // And the service goes on answering.
    expect((await get(`/accounts/${ID}/statement?from=2026-03-10&to=2026-03-10&format=csv`)).statusCode).toBe(200);
  });
});

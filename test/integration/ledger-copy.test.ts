import fc from 'fast-check';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BookLine } from '../../src/projections/account-book';
import { binaryCopyData, copyLines, LINE_COLUMNS, textCopyData } from '../../src/projections/ledger-copy';
import type { AccountChanges, AccountState } from '../../src/projections/ledger-fold';
import { readModelIn } from '../../src/projections/read-model';
import { createLedgerContext, type LedgerContext } from '../support/ledger';

let ctx: LedgerContext;
beforeAll(async () => {
  ctx = await createLedgerContext('ledger_copy');
  for (const schema of ['copy_text', 'copy_binary']) {
    await sql`create schema ${sql.id(schema)}`.execute(ctx.database.db);
    await sql`create table ${sql.table(`${schema}.statement_lines`)} (like ledger.statement_lines including all)`.execute(ctx.database.db);
  }
});
afterAll(async () => {
  await ctx?.close();
});

const INT64_MAX = 2n ** 63n - 1n;
const MS_1900 = Date.parse('1900-01-01T00:00:00Z');
const MS_2200 = Date.parse('2200-01-01T00:00:00Z');

/** Text PostgreSQL can store: any Unicode but NUL (pairs of surrogates only), with COPY's special characters often. */
const storable = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.constantFrom('', '\\N', 'tab\there', 'line\nbreak\r\nend', 'back\\slash', 'Chuyển tiền 💸', 'ưu đãi'),
).map((s) => s.replaceAll('\u0000', ''));
const money = fc.bigInt({ min: -INT64_MAX - 1n, max: INT64_MAX });
const instant = fc.integer({ min: MS_1900, max: MS_2200 - 1 });

const lineArb = fc.record({
  instant,
  received: instant,
  seq: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
  amount: money,
  runningBalance: fc.option(money),
  before: fc.option(money),
  after: fc.option(money),
  late: fc.boolean(),
  booking: fc.option(instant),
  texts: fc.array(fc.option(storable), { minLength: 8, maxLength: 8 }),
  id: storable,
  eventId: fc.uuid(),
});

const day = (ms: number) => new Date(ms).toISOString().slice(0, 10);

type LineArb = typeof lineArb extends fc.Arbitrary<infer T> ? T : never;

function bookLine(l: LineArb, n: number): BookLine {
  const [description, reference, counterAccountNumber, counterAccountName, counterAccountBankName, virtualAccountNumber, virtualAccountName, paymentChannel] = l.texts;
  return {
    id: `${n}:${l.id}`,
    eventId: n % 2 === 0 ? l.eventId : l.eventId.toUpperCase(),
    instant: l.instant,
    amount: l.amount,
    runningBalance: l.runningBalance,
    transactionDate: day(l.instant),
    receivedAt: new Date(l.received).toISOString(),
    source: n % 3 === 0 ? 'backfill' : 'webhook',
    seq: l.seq,
    before: l.before,
    after: l.after,
    late: l.late,
    frontierAfter: false,
    dirty: true,
    stored: false,
    details: {
      transactionDateTime: new Date(l.instant).toISOString().replace('Z', '+00:00'),
      bookingDate: l.booking === null ? null : day(l.booking),
      description: description ?? null,
      reference: reference ?? null,
      counterAccountNumber: counterAccountNumber ?? null,
      counterAccountName: counterAccountName ?? null,
      counterAccountBankName: counterAccountBankName ?? null,
      virtualAccountNumber: virtualAccountNumber ?? null,
      virtualAccountName: virtualAccountName ?? null,
      paymentChannel: paymentChannel ?? null,
      logPosition: `0000000000000000-${n.toString(16).padStart(16, '0')}`,
    },
  };
}

const changesOf = (accountId: string, added: BookLine[]): AccountChanges => ({
  account: { accountId } as AccountState,
  stored: false,
  added,
  moved: [],
  breaks: [],
  late: [],
});

async function copyAndRead(schema: string, data: Uint8Array, format: 'text' | 'binary') {
  const db = ctx.database.db;
  await sql`truncate ${sql.table(`${schema}.statement_lines`)}`.execute(db);
  await readModelIn(db, schema, { copy: true }).copyRows!('statement_lines', LINE_COLUMNS, data, format);
  const { rows } = await sql<Record<string, unknown>>`
    select transaction_id, account_id, event_id, (extract(epoch from instant) * 1000)::bigint::text as instant_ms, group_seq, transaction_date::text,
      transaction_date_time, booking_date::text, amount::text, running_balance::text, balance_before::text, balance_after::text,
      description, reference, counter_account_number, counter_account_name, counter_account_bank_name, virtual_account_number,
      virtual_account_name, payment_channel, late, (extract(epoch from received_at) * 1000)::bigint::text as received_ms, source, log_position
    from ${sql.table(`${schema}.statement_lines`)} order by log_position`.execute(db);
  return rows;
}

/** The row each line should come back as, from the line itself (not from either format). */
const expected = (accountId: string, l: BookLine) => ({
  transaction_id: l.id,
  account_id: accountId,
  event_id: l.eventId.toLowerCase(),
  instant_ms: String(l.instant),
  group_seq: l.seq,
  transaction_date: l.transactionDate,
  transaction_date_time: l.details.transactionDateTime,
  booking_date: l.details.bookingDate,
  amount: l.amount.toString(),
  running_balance: l.runningBalance?.toString() ?? null,
  balance_before: l.before?.toString() ?? null,
  balance_after: l.after?.toString() ?? null,
  description: l.details.description,
  reference: l.details.reference,
  counter_account_number: l.details.counterAccountNumber,
  counter_account_name: l.details.counterAccountName,
  counter_account_bank_name: l.details.counterAccountBankName,
  virtual_account_number: l.details.virtualAccountNumber,
  virtual_account_name: l.details.virtualAccountName,
  payment_channel: l.details.paymentChannel,
  late: l.late,
  received_ms: String(Date.parse(l.receivedAt)),
  source: l.source,
  log_position: l.details.logPosition,
});

const ACCOUNT = '0d5f3c1e-2b7a-4c1d-8e9f-6a5b4c3d2e1f';

describe('statement lines as COPY data', () => {
  it('stores the same rows in the binary format as in the text format, exactly the lines given', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(lineArb, { minLength: 1, maxLength: 15 }), async (arbs) => {
        const lines = arbs.map((l, n) => bookLine(l, n));
        const changes = [changesOf(ACCOUNT, lines)];
        const binary = await copyAndRead('copy_binary', binaryCopyData(changes, lines.length), 'binary');
        const text = await copyAndRead('copy_text', textCopyData(changes, lines.length), 'text');
        const want = lines.map((l) => expected(ACCOUNT, l));
        expect(binary).toEqual(want);
        expect(text).toEqual(want);
      }),
      { numRuns: 40 },
    );
  });

  it('sends a batch in the text format when a value is not in the form the binary encoder reads', async () => {
    const base = bookLine(fc.sample(lineArb, { numRuns: 1, seed: 7 })[0]!, 1);
    // Each as PostgreSQL reads it in text: the value it stores.
    const odd: [BookLine, Record<string, unknown>][] = [
      [{ ...base, id: 'date', transactionDate: '2026-3-1' }, { transaction_date: '2026-03-01' }],
      [{ ...base, id: 'booking', details: { ...base.details, bookingDate: '20260301' } }, { booking_date: '2026-03-01' }],
      [{ ...base, id: 'uuid', eventId: base.eventId.replaceAll('-', '') }, { event_id: base.eventId.toLowerCase() }],
      [{ ...base, id: 'received', receivedAt: '2026-03-01T08:00:05+07:00' }, { received_ms: String(Date.parse('2026-03-01T01:00:05Z')) }],
    ];
    // Money out of bigint's range goes in text too: PostgreSQL refuses it in its own words (the parked event's error).
    const big = copyLines([changesOf(ACCOUNT, [base, { ...base, id: 'big', amount: INT64_MAX + 1n }])], 2);
    expect(big.format).toBe('text');
    await expect(copyAndRead('copy_text', big.data, big.format)).rejects.toThrow(/out of range for type bigint/);
    for (const [line, stored] of odd) {
      const copy = copyLines([changesOf(ACCOUNT, [base, line])], 2);
      expect(copy.format).toBe('text');
      const rows = await copyAndRead('copy_text', copy.data, copy.format);
      expect(rows.map((r) => r.transaction_id).sort()).toEqual([base.id, line.id].sort());
      expect(rows.find((r) => r.transaction_id === line.id)).toMatchObject(stored);
    }
    expect(copyLines([changesOf(ACCOUNT, [base])], 1).format).toBe('binary');
  });

  it('refuses a NUL and a half surrogate in the binary format as in the text format', () => {
    const base = bookLine(fc.sample(lineArb, { numRuns: 1, seed: 9 })[0]!, 1);
    for (const bad of ['a\u0000b', 'a\uD800b', 'end \uDBFF', '\uDC00 start', '💸\uD83D']) {
      const line = { ...base, details: { ...base.details, description: bad } };
      expect(() => binaryCopyData([changesOf(ACCOUNT, [line])], 1)).toThrow(/cannot store/);
      expect(() => textCopyData([changesOf(ACCOUNT, [line])], 1)).toThrow(/cannot store/);
      expect(() => copyLines([changesOf(ACCOUNT, [line])], 1)).toThrow(/cannot store/);
    }
  });
});

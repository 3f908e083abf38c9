import fc from 'fast-check';
import { parse as parseLossless, stringify } from 'lossless-json';
import { describe, expect, it } from 'vitest';
import { parseCasWebhook } from '../../src/application/cas-webhook';
import { readExactJson } from '../../src/application/exact-json';
import { parseMinorUnits } from '../../src/domain/money';

const webhook = (amount: string, extra = '') =>
  Buffer.from(
    `{"webhookType":"TRANSACTIONS","webhookCode":"DEFAULT_UPDATE","grantId":null,"transaction":{"id":"abc123","transactionDate":"2026-01-02",` +
      `"transactionDateTime":"2026-01-02T09:00:00+07:00","amount":${amount},"runningBalance":null,"accountNumber":"001","fiId":"fi","currency":"VND"${extra}}}`,
  );

describe('reading money exactly', () => {
  it.each([
    ['10000', 10000n],
    ['-25000', -25000n],
    ['1e4', 10000n],
    ['10000.0', 10000n],
    ['9007199254740993', 9007199254740993n],
    ['4611686018427387903', 4611686018427387903n],
    ['-4611686018427387903', -4611686018427387903n],
  ])('amount %s is %s đồng', (text, expected) => {
    const parsed = parseCasWebhook(webhook(text));
    expect(parsed.ok && parsed.value.kind === 'transaction' && parsed.value.transaction.amount).toBe(expected);
  });

  it.each(['10000.5', '0.1', '1e-3', '10000.0000000000000001'])('refuses the fractional amount %s', (text) => {
    const parsed = parseCasWebhook(webhook(text));
    expect(parsed).toMatchObject({ ok: false, error: [{ field: 'transaction.amount' }] });
  });

  it('is not fooled by a description that looks like a number', () => {
    const parsed = parseCasWebhook(webhook('9007199254740993', ',"description":"Tỷ giá: 1.5, phí:2e3"'));
    expect(parsed.ok && parsed.value.kind === 'transaction' && parsed.value.transaction.amount).toBe(9007199254740993n);
  });

  it('reads every number of any JSON exactly as lossless-json does', () => {
    const numberText = fc.oneof(
      fc.bigInt({ min: -(10n ** 30n), max: 10n ** 30n }).map(String),
      fc.tuple(fc.bigInt({ min: -(10n ** 20n), max: 10n ** 20n }), fc.nat({ max: 999_999 })).map(([a, b]) => `${a}.${b}`),
      fc.tuple(fc.integer({ min: -999, max: 999 }), fc.integer({ min: -30, max: 30 })).map(([a, e]) => `${a}e${e}`),
    );
    // A number is a class of its own, so that no generated object is ever mistaken for one.
    class Num {
      constructor(readonly text: string) {}
    }
    const doc = fc.letrec((tie) => ({
      value: fc.oneof({ depthSize: 'small' }, numberText.map((n) => new Num(n)), fc.string(), fc.array(tie('value'), { maxLength: 4 }), fc.dictionary(fc.string(), tie('value'), { maxKeys: 4 })),
    })).value;
    const render = (v: unknown): string =>
      v instanceof Num
        ? v.text
        : Array.isArray(v)
          ? `[${v.map(render).join(', ')}]`
          : v && typeof v === 'object'
            ? `{${Object.entries(v).map(([k, x]) => `${JSON.stringify(k)}: ${render(x)}`).join(',')}}`
            : JSON.stringify(v);
    fc.assert(
      fc.property(doc, (value) => {
        const text = render(value);
        const read = readExactJson(text);
        expect(read.ok && stringify(read.value)).toBe(stringify(parseLossless(text)));
      }),
      { numRuns: 500 },
    );
  });

  it('parses minor units without a float', () => {
    expect(parseMinorUnits('1.50e2')).toEqual({ ok: true, value: 150n });
    expect(parseMinorUnits('-0')).toEqual({ ok: true, value: 0n });
    expect(parseMinorUnits('1.5')).toEqual({ ok: false, error: 'fractional_amount' });
    expect(parseMinorUnits('abc')).toEqual({ ok: false, error: 'not_a_number' });
    expect(parseMinorUnits('0e-99999')).toEqual({ ok: true, value: 0n });
    expect(parseMinorUnits('1e99999999999')).toEqual({ ok: false, error: 'out_of_range' });
    expect(parseMinorUnits('0.' + '0'.repeat(100) + '1e101')).toEqual({ ok: true, value: 1n });
  });

  it('reads every way of writing a whole number as that number, and nothing past 40 digits', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: -(10n ** 35n), max: 10n ** 35n }), fc.nat({ max: 12 }), (v, k) => {
        const sign = v < 0n ? '-' : '';
        const abs = (v < 0n ? -v : v).toString();
        const shifted = v === 0n ? '0' : `${v}${'0'.repeat(k)}e-${k}`; // JSON has no 00e-1
        for (const text of [`${v}`, `${v}.${'0'.repeat(k + 1)}`, shifted, `${sign}${abs.slice(0, 1)}.${abs.slice(1) || '0'}e${abs.length - 1}`]) {
          expect(parseMinorUnits(text)).toEqual({ ok: true, value: v });
        }
        if (abs.length + k <= 40) expect(parseMinorUnits(`${v}e${k}`)).toEqual({ ok: true, value: v * 10n ** BigInt(k) });
        expect(parseMinorUnits(`1${'0'.repeat(40 + k)}`)).toEqual({ ok: false, error: 'out_of_range' });
      }),
    );
  });
});

describe('refusing what the books cannot hold', () => {
  const sample = {
    environment: 'dev',
    webhookType: 'TRANSACTIONS',
    webhookCode: 'DEFAULT_UPDATE',
    grantId: '4c657924-13f3-11ee-a4bb-42010a40001b',
    transaction: {
      id: 'abc123',
      transactionDate: '2023-12-05',
      transactionDateTime: '2023-12-05T16:25:00+07:00',
      bookingDate: '2023-12-05',
      amount: 10000,
      runningBalance: 3330000,
      accountNumber: 867623232,
      counterAccountNumber: null,
      fiId: '3c26a8ed-efb5-11ed-8620-0ae7e48c82d8',
      currency: 'VND',
    },
  };
  /** The sample with fields of the transaction (or of the envelope) replaced by raw JSON text. */
  const body = (tx: Record<string, string>, envelope: Record<string, string> = {}) => {
    let text = JSON.stringify(sample);
    for (const [k, v] of Object.entries({ ...tx, ...envelope })) {
      text = text.replace(new RegExp(`"${k}":("[^"]*"|[-0-9]+|null)`), `"${k}":${v}`);
      expect(text).toContain(`"${k}":${v}`);
    }
    return Buffer.from(text);
  };
  const MAX = '4611686018427387903'; // 2^62 − 1

  it.each<[string, Record<string, string>, string, RegExp, Record<string, string>?]>([
    ['amount 1e30', { amount: '1e30' }, 'transaction.amount', /out of range/],
    ['amount 10^30 written out', { amount: '1000000000000000000000000000000' }, 'transaction.amount', /out of range/],
    ['amount 1e999999999', { amount: '1e999999999' }, 'transaction.amount', /out of range/],
    ['an amount of 400 digits (a double would be Infinity)', { amount: '1'.repeat(400) }, 'transaction.amount', /out of range/],
    ['an amount of 250 000 digits', { amount: '7'.repeat(250_000) }, 'transaction.amount', /out of range/],
    ['runningBalance 2^63', { runningBalance: '9223372036854775808' }, 'transaction.runningBalance', /out of range/],
    ['runningBalance −2^63', { runningBalance: '-9223372036854775808' }, 'transaction.runningBalance', /out of range/],
    ['amount 2^62', { amount: '4611686018427387904', runningBalance: 'null' }, 'transaction.amount', /out of range/],
    ['a balance before out of range', { runningBalance: MAX, amount: '-1' }, 'transaction.runningBalance', /balance before/],
    ['a balance before out of range, downwards', { runningBalance: `-${MAX}`, amount: '1' }, 'transaction.runningBalance', /balance before/],
    ['year 0000', { transactionDate: '"0000-01-01"' }, 'transaction.transactionDate', /within 1900-01-01 to 2199-12-31/],
    ['1899-12-31', { transactionDate: '"1899-12-31"' }, 'transaction.transactionDate', /within/],
    ['2200-01-01', { bookingDate: '"2200-01-01"' }, 'transaction.bookingDate', /within/],
    ['2023-02-30', { transactionDate: '"2023-02-30"' }, 'transaction.transactionDate', /calendar date/],
    ['2023-02-29', { bookingDate: '"2023-02-29"' }, 'transaction.bookingDate', /calendar date/],
    ['an instant in year 0000', { transactionDateTime: '"0000-01-01T00:00:00+07:00"' }, 'transaction.transactionDateTime', /within/],
    ['an instant whose UTC is in 1899', { transactionDateTime: '"1900-01-01T06:59:59+07:00"' }, 'transaction.transactionDateTime', /UTC too/],
    ['an instant whose UTC is in 2200', { transactionDateTime: '"2199-12-31T23:59:59-00:01"' }, 'transaction.transactionDateTime', /UTC too/],
    ['0001-01-01T00:00:00+14:00', { transactionDateTime: '"0001-01-01T00:00:00+14:00"' }, 'transaction.transactionDateTime', /within/],
    ['9999-12-31T23:59:59-23:59', { transactionDateTime: '"9999-12-31T23:59:59-23:59"' }, 'transaction.transactionDateTime', /within/],
    ['an instant on 2023-02-30', { transactionDateTime: '"2023-02-30T10:00:00+07:00"' }, 'transaction.transactionDateTime', /ISO-8601/],
    ['an instant without an offset', { transactionDateTime: '"2023-12-05T16:25:00"' }, 'transaction.transactionDateTime', /ISO-8601/],
    ['NUL in webhookType', {}, 'webhookType', /U\+0000/, { webhookType: '"TRANS\\u0000ACTIONS"' }],
    ['a webhookType that is no token', {}, 'webhookType', /letters, digits/, { webhookType: '"TRANSACTIONS; drop"' }],
    ['a webhookCode of 65 characters', {}, 'webhookCode', /1–64/, { webhookCode: `"${'X'.repeat(65)}"` }],
    ['a grantId that is no token', {}, 'grantId', /1–128/, { grantId: '"grant 1"' }],
    ['an object for counterAccountNumber, even one with its own toString', { counterAccountNumber: '{"toString":1,"valueOf":1}' }, 'transaction.counterAccountNumber', /string or a number/],
    ['a fiId of 129 characters', { fiId: `"${'f'.repeat(129)}"` }, 'transaction.fiId', /1–128/],
  ])('refuses %s, naming the field', (_, tx, field, message, envelope = {}) => {
    const parsed = parseCasWebhook(body(tx, envelope));
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.error).toContainEqual({ field, message: expect.stringMatching(message) });
  });

  it.each<[string, Record<string, string>, Record<string, string>?]>([
    ['the largest amount and balances', { amount: MAX, runningBalance: MAX }],
    ['the smallest', { amount: `-${MAX}`, runningBalance: `-${MAX}` }],
    ['a balance before at the edge', { amount: '1', runningBalance: `-${'4611686018427387902'}` }],
    ['the first instant', { transactionDate: '"1900-01-01"', transactionDateTime: '"1900-01-01T00:00:00Z"' }],
    ['the last instant', { transactionDate: '"2199-12-31"', transactionDateTime: '"2199-12-31T23:59:59.999999+00:00"' }],
    ['a leap day', { transactionDate: '"2024-02-29"', bookingDate: '"2000-02-29"' }],
    ['whole surrogate pairs, raw and escaped', { id: '"abc124"', accountNumber: '"0123"' }, { environment: '"d\ud83d\ude00v 😀"' }],
  ])('books %s', (_, tx, envelope = {}) => {
    expect(parseCasWebhook(body(tx, envelope))).toMatchObject({ ok: true });
  });

  it('applies the same rules to every webhook type', () => {
    const other = (extra: string) => Buffer.from(`{"webhookType":"INVOICE","webhookCode":"PAID","grantId":null,"invoice":${extra}}`);
    expect(parseCasWebhook(other('{"note":"Chuyển 😀","n":1.5}'))).toMatchObject({ ok: true, value: { kind: 'other' } });
    expect(parseCasWebhook(other('{"note":"a\\u0000"}'))).toMatchObject({ ok: false, error: [{ field: 'invoice.note' }] });
    expect(parseCasWebhook(other('{"n":1,"n":2}'))).toMatchObject({ ok: false, error: [{ field: 'invoice.n' }] });
    const deep = `${'['.repeat(5_000)}1.5${']'.repeat(5_000)}`;
    expect(parseCasWebhook(other(deep))).toMatchObject({ ok: false, error: [{ message: /nested deeper than 64/ }] });
    const grant = Buffer.from('{"webhookType":"GRANT","webhookCode":"ERROR","grantId":"g1","error":{"errorMessage":"\\ud800"}}');
    expect(parseCasWebhook(grant)).toMatchObject({ ok: false, error: [{ field: 'error.errorMessage' }] });
  });
});

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { transactionWebhookFast, webhookBySchema } from '../../src/application/cas-webhook';
import { readExactJson } from '../../src/application/exact-json';

/*
 * The hand-written reading of a booked transaction webhook against the schemas it stands in for: on bodies built
 * field by field from valid values, values each schema refuses, other types and absent keys, the two must give the
 * same verdict and, where both accept, the same value with the same keys in the same order.
 */
const MAX = '4611686018427387903'; // 2^62 − 1
const str = (s: string) => JSON.stringify(s);
const other = ['null', '"x"', '""', '1', '-5', '1.5', '1e4', 'true', 'false', '{}', '[]', '{"a":1}', '[1,"2"]', '"  12  "'];
const money = [
  '10000', '-25000', '0', '-0', '1e4', '10000.0', '1.50e2', '10000.5', '0.1', '"10000"', '" 123 "', '"abc"', '"1e3"', '"-7"',
  MAX, `-${MAX}`, '4611686018427387904', '-4611686018427387904', '1e30', '9007199254740993', '1'.repeat(45), '"4611686018427387904"',
];
const texts = ['null', '"t"', '""', '"Chuyển 😀"', '1', '{}', '[]', 'true'];
const dates = ['"2023-12-05"', '"2024-02-29"', '"2023-02-29"', '"1899-12-31"', '"1900-01-01"', '"2199-12-31"', '"2200-01-01"', '"2023-1-05"', '" 2023-12-05"', '"2023-12-05T00:00:00Z"'];
const instants = [
  '"2023-12-05T16:25:00+07:00"', '"2023-12-05T16:25:00Z"', '"2023-12-05T16:25:00.123+07:00"', '"2023-12-05T16:25:00"',
  '"1900-01-01T06:59:59+07:00"', '"1900-01-01T00:00:00Z"', '"2199-12-31T23:59:59-00:01"', '"2199-12-31T23:59:59.999999+00:00"',
  '"2023-02-30T10:00:00+07:00"', '"2023-12-05T24:00:00Z"', '"2023-12-05"',
];
const tokens = (max: number) => ['"fi"', '"a_b-c.d"', str('a'.repeat(max)), str('a'.repeat(max + 1)), '""', '"a b"', '"a/b"', '7'];

/** Each field: its usual valid value, and the values that test the rule. */
const TRANSACTION: Record<string, readonly [string, readonly string[]]> = {
  id: ['"3cacecf6935011ee952542010a400022"', ['"abc123"', '"a_b-c"', '"a.b"', str('a'.repeat(128)), str('a'.repeat(129)), '""', '123']],
  transactionCode: ['"993UNdEHhIgfy3I"', texts],
  reference: ['null', texts],
  transactionDate: ['"2023-12-05"', dates],
  transactionDateTime: ['"2023-12-05T16:25:00+07:00"', instants],
  bookingDate: ['"2023-12-05"', dates],
  amount: ['10000', money],
  description: ['"test"', texts],
  runningBalance: ['3330000', [...money, 'null']],
  accountNumber: ['867623232', ['"0123"', '"a.b-c"', '"a b"', '""', str('1'.repeat(64)), str('1'.repeat(65)), '1.5', '"  12 "', '{}', 'null', '1e3']],
  virtualAccountNumber: ['null', texts],
  virtualAccountName: ['null', texts],
  paymentChannel: ['null', texts],
  counterAccountNumber: ['null', ['"123"', '123', '1.5', '{}', 'true', '" x "', '""', '[]']],
  counterAccountName: ['null', texts],
  counterAccountBankId: ['null', texts],
  counterAccountBankName: ['null', texts],
  paymentMeta: ['null', ['{"a":1,"b":[1.5,"x",9007199254740993,{"c":1e400}]}', '"s"', '12', '[]', '{}', 'false']],
  fiId: ['"3c26a8ed-efb5-11ed-8620-0ae7e48c82d8"', tokens(128)],
  fiName: ['"VietinBank"', texts],
  fiServiceId: ['"433f71c4-efb5-11ed-8620-0ae7e48c82d8"', texts],
  fiServiceName: ['"VietinBank iPay - Official API"', texts],
  currency: ['"VND"', ['"USD"', '"vnd"', '"toString"', '"__proto__"', '1', 'null']],
};
const ENVELOPE: Record<string, readonly [string, readonly string[]]> = {
  environment: ['"dev"', texts],
  webhookType: ['"TRANSACTIONS"', ['"GRANT"', '"INVOICE"', '"TRANSACTIONS "', '"transactions"', str('X'.repeat(65)), '1', 'null']],
  webhookCode: ['"DEFAULT_UPDATE"', ['"TRANSACTION_UPDATE"', '"HISTORICAL_UPDATE"', '"DEFAULT_UPDATE;"', str('X'.repeat(65)), '1', 'null']],
  grantId: ['"4c657924-13f3-11ee-a4bb-42010a40001b"', ['null', ...tokens(128)]],
};
const EXTRA = ['"error":null', '"__proto__":{"id":"x","amount":1}', '"unknown":[1,2]', '"constructor":1'];

/** One field: usually its valid value, sometimes a value from its pool or any other type, sometimes absent. */
const field = ([valid, pool]: readonly [string, readonly string[]]) =>
  fc.oneof(
    { weight: 24, arbitrary: fc.constant<string | null>(valid) },
    { weight: 2, arbitrary: fc.constantFrom<string | null>(...pool) },
    { weight: 1, arbitrary: fc.constantFrom<string | null>(...other) },
    { weight: 1, arbitrary: fc.constant<string | null>(null) },
  );
const object = (fields: Record<string, readonly [string, readonly string[]]>) =>
  fc
    .tuple(fc.record(Object.fromEntries(Object.entries(fields).map(([k, f]) => [k, field(f)]))), fc.subarray(EXTRA, { maxLength: 2 }), fc.boolean())
    .map(([values, extra, extraFirst]) => {
      const entries = Object.entries(values).flatMap(([k, v]) => (v === null ? [] : [`${str(k)}:${v}`]));
      return `{${(extraFirst ? [...extra, ...entries] : [...entries, ...extra]).join(',')}}`;
    });
const transaction = fc.oneof({ weight: 12, arbitrary: object(TRANSACTION) }, { weight: 1, arbitrary: fc.constantFrom('null', '1', '[]', '"x"', '{}') });
const body = fc
  .tuple(object(ENVELOPE), fc.option(transaction, { freq: 16 }))
  .map(([envelope, tx]) => (tx === null ? envelope : `${envelope.slice(0, -1)}${envelope === '{}' ? '' : ','}"transaction":${tx}}`));

/** Values with their keys in order, bigints marked: two readings print the same only if they are the same. */
const print = (value: unknown) => JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v));
const read = (text: string) => {
  const json = readExactJson(text);
  if (!json.ok) throw new Error(`the generator wrote no JSON: ${text}`);
  return json.value as Record<string, unknown>;
};

describe('the hand-written reading of a transaction webhook', () => {
  it('accepts exactly what the schemas accept as a booked transaction, with the same value', () => {
    const seen = { accepted: 0, refused: 0 };
    fc.assert(
      fc.property(body, (text) => {
        const schema = webhookBySchema(read(text));
        const fast = transactionWebhookFast(read(text));
        const schemaBooks = schema.ok && schema.value.kind === 'transaction';
        expect(fast !== null).toBe(schemaBooks);
        if (fast !== null && schema.ok) {
          expect(fast).toStrictEqual(schema.value);
          expect(print(fast)).toBe(print(schema.value));
        }
        seen[schemaBooks ? 'accepted' : 'refused'] += 1;
      }),
      { numRuns: 4000 },
    );
    // Both verdicts are exercised in earnest, not only one.
    expect(seen.accepted).toBeGreaterThan(200);
    expect(seen.refused).toBeGreaterThan(400);
  });

  it('agrees on each single change to the fixture', () => {
    const fields = { ...TRANSACTION };
    let accepted = 0;
    for (const [key, [, pool]] of Object.entries(fields)) {
      for (const value of [...pool, ...other, undefined]) {
        const entries = Object.entries(fields).flatMap(([k, [valid]]) => (k !== key ? [`${str(k)}:${valid}`] : value === undefined ? [] : [`${str(k)}:${value}`]));
        const text = `{"environment":"dev","webhookType":"TRANSACTIONS","webhookCode":"DEFAULT_UPDATE","grantId":null,"transaction":{${entries.join(',')}}}`;
        const schema = webhookBySchema(read(text));
        const fast = transactionWebhookFast(read(text));
        expect({ text, books: fast !== null }).toEqual({ text, books: schema.ok });
        if (fast !== null && schema.ok) expect(print(fast)).toBe(print(schema.value));
        if (schema.ok) accepted += 1;
      }
    }
    expect(accepted).toBeGreaterThan(50);
  });
});

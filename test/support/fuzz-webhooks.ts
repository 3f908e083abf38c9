import fc from 'fast-check';

/**
 * Generated webhook bodies for the ingest fuzz test: real Cas shapes (test/fixtures, shared/samples), valid ones with
 * odd but bookable values, and mutations of them whose fate is known by construction.
 */

/** `valid`: must be booked; `invalid`: must be refused and quarantined; `either`: must be one of the two, never 5xx. */
export type Expectation = 'valid' | 'invalid' | 'either';

export interface FuzzCase {
  readonly label: string;
  readonly body: Buffer;
  readonly expect: Expectation;
  /** The Cas transaction id of a TRANSACTIONS webhook, when the body has a readable one. */
  readonly transactionId: string | null;
}

/** A recipe: the case once it is given a transaction id of its own (ids are unique per body). */
export type Recipe = (id: string) => FuzzCase;

/** JSON text of a value; objects keep their key order and may repeat a key, which JS objects cannot. */
type Json = { raw: string } | string | null | boolean | Json[] | { entries: [string, Json][] };

const raw = (text: string): Json => ({ raw: text });

function render(value: Json, indent: string, depth = 0): string {
  if (value === null || typeof value === 'boolean') return String(value);
  if (typeof value === 'string') return JSON.stringify(value); // NUL and lone surrogates become \u escapes
  if ('raw' in value) return value.raw;
  const nl = indent ? `\n${indent.repeat(depth + 1)}` : '';
  const end = indent ? `\n${indent.repeat(depth)}` : '';
  if (Array.isArray(value)) return value.length ? `[${nl}${value.map((v) => render(v, indent, depth + 1)).join(`,${nl}`)}${end}]` : '[]';
  const colon = indent ? ': ' : ':';
  return value.entries.length
    ? `{${nl}${value.entries.map(([k, v]) => `${JSON.stringify(k)}${colon}${render(v, indent, depth + 1)}`).join(`,${nl}`)}${end}}`
    : '{}';
}

const set = (entries: [string, Json][], key: string, value: Json): [string, Json][] =>
  entries.some(([k]) => k === key) ? entries.map(([k, v]) => [k, k === key ? value : v]) : [...entries, [key, value]];

const B = 2n ** 62n - 1n; // the largest magnitude the ledger books
const MS_1900 = Date.UTC(1900, 0, 2);
const MS_2199 = Date.UTC(2199, 11, 30);

const ACCOUNTS = [
  ['3c26a8ed-efb5-11ed-8620-0ae7e48c82d8', '867623232'],
  ['3c26a8ed-efb5-11ed-8620-0ae7e48c82d8', '0123456789'],
  ['5d1a9c3e-efb5-11ed-8620-0ae7e48c82d8', '19034567'],
  ['7e4b0d12-efb5-11ed-8620-0ae7e48c82d8', 'VA.88-123'],
] as const;

const vietnamese = fc.constantFrom('Chuyển khoản', 'Thanh toán hóa đơn', 'NGUYỄN VĂN A', 'Nội bộ', 'phí:2e3, tỷ giá 1.5', '"quoted" \\ back\\slash', 'tab\tnew\nline');
const text = fc.oneof(
  { weight: 4, arbitrary: fc.string({ maxLength: 40 }) },
  { weight: 3, arbitrary: vietnamese },
  { weight: 2, arbitrary: fc.string({ unit: 'grapheme', maxLength: 12 }) }, // emoji and friends, whole pairs
);
/** Now and then a long one (up to ~120 KB of UTF-8). */
const description = fc.oneof(
  { weight: 30, arbitrary: text },
  { weight: 1, arbitrary: fc.tuple(vietnamese, fc.integer({ min: 1_000, max: 40_000 })).map(([s, n]) => s.repeat(Math.ceil(n / s.length))) },
);

/** Opaque JSON (paymentMeta, other webhook types): any numbers, nested up to `depth`. */
const opaque = (depth: number): fc.Arbitrary<Json> =>
  fc.letrec<{ v: Json }>((tie) => ({
    v: fc.oneof(
      { maxDepth: depth },
      text,
      fc.constantFrom<Json>(null, true, raw('0'), raw('-0'), raw('1.5'), raw('1e400'), raw('123456789012345678901234567890'), raw('-2.5e-7')),
      fc.array(tie('v'), { maxLength: 4 }),
      fc.uniqueArray(fc.tuple(fc.oneof(fc.constantFrom('a', 'b', 'n', '__proto__', 'toString', 'constructor', 'valueOf'), fc.string({ maxLength: 6 })), tie('v')), { maxLength: 4, selector: ([k]) => k }).map((entries): Json => ({ entries })),
    ),
  })).v;

/** A date and an instant, both bookable: UTC and local days within 1900-01-01 … 2199-12-31. */
const when = fc.oneof(
  { weight: 9, arbitrary: fc.tuple(fc.integer({ min: MS_1900, max: MS_2199 }), fc.integer({ min: -14 * 60, max: 14 * 60 }), fc.boolean()) },
  { weight: 1, arbitrary: fc.constantFrom<[number, number, boolean]>([Date.UTC(1900, 0, 1), 0, false], [Date.UTC(2199, 11, 31, 23, 59, 59), 0, true]) },
).map(([utcMs, offsetMinutes, fraction]) => {
  const local = new Date(utcMs + offsetMinutes * 60_000).toISOString();
  const sign = offsetMinutes < 0 ? '-' : '+';
  const abs = Math.abs(offsetMinutes);
  const offset = offsetMinutes === 0 && !fraction ? 'Z' : `${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
  return { date: local.slice(0, 10), instant: `${local.slice(0, fraction ? 23 : 19)}${offset}` };
});

const money = fc.oneof(
  // Everyday: a balance and a movement.
  { weight: 7, arbitrary: fc.tuple(fc.bigInt({ min: 0n, max: 10n ** 12n }), fc.bigInt({ min: -(10n ** 8n), max: 10n ** 8n })).map(([rb, amount]) => ({ rb: rb as bigint | null, amount })) },
  // At the edges of what is bookable (the balance before the line too).
  {
    weight: 2,
    arbitrary: fc
      .bigInt({ min: -B, max: B })
      .chain((rb) => fc.bigInt({ min: rb - B > -B ? rb - B : -B, max: rb + B < B ? rb + B : B }).map((amount) => ({ rb: rb as bigint | null, amount }))),
  },
  // No running balance (some banks): an everyday amount.
  { weight: 1, arbitrary: fc.bigInt({ min: -(10n ** 9n), max: 10n ** 9n }).map((amount) => ({ rb: null as bigint | null, amount })) },
);

/** A TRANSACTIONS webhook as Cas sends it, with odd but bookable values. */
const transactionWebhook = fc
  .record({
    account: fc.constantFrom(...ACCOUNTS),
    accountAsNumber: fc.boolean(),
    money,
    amountText: fc.nat({ max: 3 }),
    when,
    bookingDate: fc.option(when.map((w) => w.date), { nil: null }),
    description: fc.option(description, { nil: null }),
    reference: fc.option(text, { nil: null }),
    counterAccountName: fc.option(text, { nil: null }),
    paymentMeta: fc.option(opaque(4), { nil: null }),
    code: fc.constantFrom('DEFAULT_UPDATE', 'TRANSACTION_UPDATE'),
    grantId: fc.option(fc.constantFrom('4c657924-13f3-11ee-a4bb-42010a40001b', 'grant_2', 'g.3'), { nil: null }),
    order: fc.nat({ max: 1000 }),
  })
  .map((r) => (id: string) => {
    const [fiId, accountNumber] = r.account;
    // Written as Cas might: a plain integer, `.0`, an exponent, a string.
    const amount = [raw(r.money.amount.toString()), raw(`${r.money.amount}.0`), raw(`${r.money.amount}e0`), r.money.amount.toString()][r.amountText]!;
    let tx: [string, Json][] = [
      ['id', id],
      ['transactionCode', 'FT23339'],
      ['reference', r.reference],
      ['transactionDate', r.when.date],
      ['transactionDateTime', r.when.instant],
      ['bookingDate', r.bookingDate],
      ['amount', amount],
      ['description', r.description],
      ['runningBalance', r.money.rb === null ? null : raw(r.money.rb.toString())],
      ['accountNumber', r.accountAsNumber && /^[1-9]\d*$/.test(accountNumber) ? raw(accountNumber) : accountNumber],
      ['virtualAccountNumber', null],
      ['paymentChannel', 'Napas247'],
      ['counterAccountNumber', raw('123456789012345678')],
      ['counterAccountName', r.counterAccountName],
      ['paymentMeta', r.paymentMeta],
      ['fiId', fiId],
      ['fiName', 'VietinBank'],
      ['currency', 'VND'],
    ];
    // Cas does not promise an order of keys.
    const k = r.order % tx.length;
    tx = [...tx.slice(k), ...tx.slice(0, k)];
    const envelope: [string, Json][] = [
      ['environment', 'dev'],
      ['webhookType', 'TRANSACTIONS'],
      ['webhookCode', r.code],
      ['error', null],
      ['grantId', r.grantId],
      ['transaction', { entries: tx }],
    ];
    return { envelope, tx };
  });

const otherWebhook = fc
  .record({
    type: fc.constantFrom('GRANT', 'INVOICE', 'AUTO_DEBIT', 'TVAN', 'SIGN'),
    code: fc.constantFrom('ERROR', 'DEFAULT_UPDATE', 'GRANT_PAUSED', 'USER_PERMISSION_REVOKED', 'PAID'),
    grantId: fc.option(fc.constantFrom('4c657924-13f3-11ee-a4bb-42010a40001b', 'grant_2'), { nil: null }),
    message: text,
    payload: opaque(6),
  })
  .map((r): [string, Json][] => [
    ['environment', 'dev'],
    ['webhookType', r.type],
    ['webhookCode', r.code],
    ['grantId', r.grantId],
    ['error', r.type === 'GRANT' ? { entries: [['errorType', 'GRANT_ERROR'], ['errorCode', 'GRANT_LOGIN_REQUIRED'], ['errorMessage', r.message]] } : null],
    ['payload', r.payload],
  ]);

const layout = fc.record({ indent: fc.constantFrom('', '', '  ', '\t'), asciiOnly: fc.boolean() });

function bytesOf(value: Json, style: { indent: string; asciiOnly: boolean }): Buffer {
  let out = render(value, style.indent);
  // \u escapes for everything past ASCII: the same document after unescaping.
  if (style.asciiOnly) out = out.replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return Buffer.from(out, 'utf8');
}

const nested = (depth: number, inner: string, objects: boolean) =>
  objects ? `${'{"x":'.repeat(depth)}${inner}${'}'.repeat(depth)}` : `${'['.repeat(depth)}${inner}${']'.repeat(depth)}`;

/** Field → values that make a transaction unbookable. */
const BAD_TX: Record<string, Json[]> = {
  amount: [raw('1'.repeat(400)), raw(`-${'9'.repeat(5000)}`), raw('1e30'), raw('1000000000000000000000000000000'), raw('9223372036854775808'), raw('-9223372036854775809'), raw('4611686018427387904'), raw('10000.5'), raw('0.1'), raw('1e-3'), raw('1e400'), raw('-1e999999'), '12abc', true, null, [], { entries: [] }],
  runningBalance: [raw('9223372036854775807'), raw('-9223372036854775808'), raw('1e19'), raw('4611686018427387904'), raw('0.5'), 'lots', false],
  transactionDate: ['0000-01-01', '1899-12-31', '2200-01-01', '2023-02-30', '2023-02-29', '2023-13-01', '2023-1-1', '', raw('20231205'), '9999-12-31', null],
  transactionDateTime: ['0001-01-01T00:00:00+14:00', '9999-12-31T23:59:59-23:59', '1900-01-01T00:00:00+07:00', '2199-12-31T23:59:59-01:00', '2023-02-30T10:00:00+07:00', '2023-12-05T16:25:00', '2023-12-05 16:25:00+07:00', '2023-12-05T24:00:00Z', '2023-12-05T16:25:60Z', '0000-01-01T00:00:00Z', null],
  bookingDate: ['0000-01-01', '2200-01-01', '2023-02-30', 'yesterday'],
  id: [raw('123'), null, '', 'has space', 'x'.repeat(129), 'a\u0000b'],
  fiId: ['', 'f'.repeat(129), 'fi id', null],
  accountNumber: ['', 'x'.repeat(65), { entries: [] }, true, null],
  currency: ['USD', null, raw('704')],
  counterAccountNumber: [{ entries: [['toString', raw('1')], ['valueOf', raw('2')]] }, [], true],
};
const BAD_ENVELOPE: Record<string, Json[]> = {
  webhookType: [raw('123'), '', 'X'.repeat(65), 'A B', 'TRANS\u0000ACTIONS', 'T\ud800'],
  webhookCode: ['', 'X'.repeat(65), null, 'DEFAULT UPDATE'],
  grantId: ['a b', 'g'.repeat(129), raw('1.5e3'), 'g\u0000'],
  transaction: [[], 'x', raw('0')],
};
const STRING_FIELDS = ['description', 'reference', 'transactionCode', 'fiName', 'counterAccountName', 'paymentChannel'];
const HAZARDS = ['\u0000', '\ud800', '\udc00', '\ud83d', '\ude00', 'x\u0000', '\ud83d end'];

const pick = <T>(items: readonly T[], n: number): T => items[n % items.length]!;
/** A place in a body, from 0 to 1, spread evenly (fast-check's doubles lean towards the ends on purpose). */
const place = fc.noBias(fc.integer({ min: 0, max: 1_000_000 })).map((n) => n / 1_000_000);

/** Every kind of body, about a third of them valid. */
export const fuzzRecipe: fc.Arbitrary<Recipe> = fc.oneof(
  // Valid: transactions with odd but bookable values, other webhook types, the console's ping.
  {
    weight: 10,
    arbitrary: fc.tuple(transactionWebhook, layout).map(([make, style]) => (id: string) => ({
      label: 'valid transaction',
      body: bytesOf({ entries: make(id).envelope }, style),
      expect: 'valid' as const,
      transactionId: id,
    })),
  },
  {
    weight: 3,
    arbitrary: fc.tuple(otherWebhook, layout).map(([envelope, style]) => () => ({
      label: 'valid other webhook',
      body: bytesOf({ entries: envelope }, style),
      expect: 'valid' as const,
      transactionId: null,
    })),
  },
  { weight: 1, arbitrary: fc.constantFrom('{}', ' {} ', '{\n}').map((body) => () => ({ label: 'ping', body: Buffer.from(body), expect: 'valid' as const, transactionId: null })) },
  // Invalid: a transaction field the books cannot hold.
  {
    weight: 8,
    arbitrary: fc.tuple(transactionWebhook, layout, fc.constantFrom(...Object.keys(BAD_TX)), fc.nat()).map(([make, style, field, n]) => (id: string) => {
      const { envelope, tx } = make(id);
      const bad = set(tx, field, pick(BAD_TX[field]!, n));
      return { label: `bad ${field}`, body: bytesOf({ entries: set(envelope, 'transaction', { entries: bad }) }, style), expect: 'invalid' as const, transactionId: null };
    }),
  },
  // Invalid: money in range alone, the balance before the line out of it.
  {
    weight: 1,
    arbitrary: fc.tuple(transactionWebhook, fc.bigInt({ min: 1n, max: B })).map(([make, excess]) => (id: string) => {
      const { envelope, tx } = make(id);
      const bad = set(set(tx, 'runningBalance', raw(B.toString())), 'amount', raw((-excess).toString()));
      return { label: 'balance before out of range', body: bytesOf({ entries: set(envelope, 'transaction', { entries: bad }) }, { indent: '', asciiOnly: false }), expect: 'invalid' as const, transactionId: null };
    }),
  },
  // Invalid: an envelope field.
  {
    weight: 3,
    arbitrary: fc.tuple(transactionWebhook, layout, fc.constantFrom(...Object.keys(BAD_ENVELOPE)), fc.nat()).map(([make, style, field, n]) => (id: string) => ({
      label: `bad ${field}`,
      body: bytesOf({ entries: set(make(id).envelope, field, pick(BAD_ENVELOPE[field]!, n)) }, style),
      expect: 'invalid' as const,
      transactionId: null,
    })),
  },
  // Invalid: NUL or half a surrogate pair in any string, of any webhook type, or in a key.
  {
    weight: 4,
    arbitrary: fc.tuple(transactionWebhook, otherWebhook, layout, fc.nat(), fc.nat(), fc.nat({ max: 3 })).map(([make, other, style, f, h, where]) => (id: string) => {
      const hazard = pick(HAZARDS, h);
      const { envelope, tx } = make(id);
      let doc: Json;
      if (where === 0) doc = { entries: set(other, 'payload', { entries: [['note', `a${hazard}b`]] }) };
      else if (where === 1) doc = { entries: set(envelope, 'transaction', { entries: set(tx, 'paymentMeta', { entries: [[`k${hazard}`, true]] }) }) };
      else doc = { entries: set(envelope, 'transaction', { entries: set(tx, pick(STRING_FIELDS, f), `Chuyển ${hazard} khoản`) }) };
      return { label: 'NUL or half a surrogate', body: bytesOf(doc, style), expect: 'invalid' as const, transactionId: null };
    }),
  },
  // Invalid: a key twice, anywhere (same or other value; on either parsing path).
  {
    weight: 3,
    arbitrary: fc.tuple(transactionWebhook, layout, fc.nat(), fc.boolean(), fc.boolean()).map(([make, style, n, inTx, fraction]) => (id: string) => {
      const { envelope, tx } = make(id);
      const entries = inTx ? tx : envelope;
      const [key, value] = pick(entries, n);
      const doubled: [string, Json][] = [...entries, [key, fraction ? raw('1.5') : value]];
      const doc = inTx ? set(envelope, 'transaction', { entries: doubled }) : doubled;
      return { label: 'a key twice', body: bytesOf({ entries: doc }, style), expect: 'invalid' as const, transactionId: null };
    }),
  },
  // Invalid: nesting past 64, in a transaction's paymentMeta or another webhook type, with or without a fraction.
  {
    weight: 2,
    arbitrary: fc.tuple(transactionWebhook, otherWebhook, fc.integer({ min: 64, max: 20_000 }), fc.boolean(), fc.boolean(), fc.boolean()).map(
      ([make, other, depth, objects, fraction, inOther]) =>
        (id: string) => {
          const deep = raw(nested(depth, fraction ? '1.5' : '1', objects));
          const doc = inOther ? set(other, 'payload', deep) : set(make(id).envelope, 'transaction', { entries: set(make(id).tx, 'paymentMeta', deep) });
          return { label: 'nested too deep', body: bytesOf({ entries: doc }, { indent: '', asciiOnly: false }), expect: 'invalid' as const, transactionId: null };
        },
    ),
  },
  // Invalid: truncated JSON, invalid UTF-8, garbage.
  {
    weight: 3,
    arbitrary: fc.tuple(transactionWebhook, layout, place).map(([make, style, at]) => (id: string) => {
      const body = bytesOf({ entries: make(id).envelope }, style);
      const last = body.lastIndexOf('}'.charCodeAt(0));
      return { label: 'truncated', body: body.subarray(0, Math.floor(at * last)), expect: 'invalid' as const, transactionId: null };
    }),
  },
  {
    weight: 2,
    arbitrary: fc
      .tuple(transactionWebhook, place, fc.constantFrom([0xff], [0xc3, 0x28], [0x80], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xe2, 0x82]))
      .map(([make, at, bad]) => (id: string) => {
        // Two underscores: one changed byte leaves one, so the id can never become another case's (`fz` + base 36),
      // which would make that case's first delivery a conflict (seed 1071522068 did: `fzt?` became `fzti`).
      const body = bytesOf({ entries: make(`${id}__`).envelope }, { indent: '', asciiOnly: false });
        const i = Math.floor(at * body.length);
        return { label: 'invalid UTF-8', body: Buffer.concat([body.subarray(0, i), Buffer.from(bad), body.subarray(i)]), expect: 'invalid' as const, transactionId: null };
      }),
  },
  {
    weight: 1,
    arbitrary: fc.uint8Array({ maxLength: 300 }).map((bytes) => () => ({
      label: 'garbage',
      body: Buffer.concat([Buffer.from('\x00\x01garbage', 'latin1'), bytes]),
      expect: 'invalid' as const,
      transactionId: null,
    })),
  },
  // Either: a byte changed anywhere in a valid webhook. Booked or quarantined, never a 5xx.
  {
    weight: 2,
    arbitrary: fc.tuple(transactionWebhook, place, fc.integer({ min: 0, max: 255 })).map(([make, at, byte]) => (id: string) => {
      // Two underscores: one changed byte leaves one, so the id can never become another case's (`fz` + base 36),
      // which would make that case's first delivery a conflict (seed 1071522068 did: `fzt?` became `fzti`).
      const body = bytesOf({ entries: make(`${id}__`).envelope }, { indent: '', asciiOnly: false });
      body[Math.floor(at * (body.length - 1))] = byte;
      return { label: 'a byte changed', body, expect: 'either' as const, transactionId: null };
    }),
  },
);

import fc from 'fast-check';
import { parse as parseLossless, stringify } from 'lossless-json';
import { describe, expect, it } from 'vitest';
import { parseCasWebhook, parseExactJson } from '../../src/application/cas-webhook';
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
    ['123456789012345678901234567890', 123456789012345678901234567890n],
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
    const doc = fc.letrec((tie) => ({
      value: fc.oneof({ depthSize: 'small' }, numberText.map((n) => ({ n })), fc.string(), fc.array(tie('value'), { maxLength: 4 }), fc.dictionary(fc.string(), tie('value'), { maxKeys: 4 })),
    })).value;
    const render = (v: unknown): string =>
      v && typeof v === 'object' && 'n' in (v as object) && Object.keys(v as object).length === 1
        ? (v as { n: string }).n
        : Array.isArray(v)
          ? `[${v.map(render).join(', ')}]`
          : v && typeof v === 'object'
            ? `{${Object.entries(v).map(([k, x]) => `${JSON.stringify(k)}: ${render(x)}`).join(',')}}`
            : JSON.stringify(v);
    fc.assert(
      fc.property(doc, (value) => {
        const text = render(value);
        expect(stringify(parseExactJson(text))).toBe(stringify(parseLossless(text)));
      }),
      { numRuns: 500 },
    );
  });

  it('parses minor units without a float', () => {
    expect(parseMinorUnits('1.50e2')).toEqual({ ok: true, value: 150n });
    expect(parseMinorUnits('-0')).toEqual({ ok: true, value: 0n });
    expect(parseMinorUnits('1.5')).toEqual({ ok: false, error: 'fractional_amount' });
    expect(parseMinorUnits('abc')).toEqual({ ok: false, error: 'not_a_number' });
  });
});

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bankDate, compareMoney, formatDate, formatDateTime, formatMoney, monthPeriod, periodMonth, shiftMonth } from '../../console/src/format';
import { prettyJson } from '../../console/src/pretty-json';

/** Intl puts a no-break space between figure and symbol in vi-VN; the tests read it as a space. */
const plain = (text: string) => text.replace(/[\u00a0\u202f]/g, ' ');

describe('the console writes money exactly, in the reader’s locale', () => {
  it.each([
    ['15000000', 'vi', '15.000.000 ₫'],
    ['15000000', 'en', '₫15,000,000'],
    ['-2500000', 'vi', '-2.500.000 ₫'],
    ['-2500000', 'en', '-₫2,500,000'],
    ['0', 'en', '₫0'],
    // Beyond 2^53 a JS number would round to …992: the figure goes through BigInt only.
    ['9007199254740993', 'en', '₫9,007,199,254,740,993'],
    ['123456789012345678901234567890', 'vi', '123.456.789.012.345.678.901.234.567.890 ₫'],
  ] as const)('%s in %s → %s', (amount, lang, expected) => {
    expect(plain(formatMoney(amount, lang))).toBe(expected);
  });

  it('signs amounts on request, and writes an unknown balance as a dash', () => {
    expect(plain(formatMoney('3000000', 'en', 'VND', { signed: true }))).toBe('+₫3,000,000');
    expect(plain(formatMoney('-700000', 'vi', 'VND', { signed: true }))).toBe('-700.000 ₫');
    expect(formatMoney(null, 'en')).toBe('—');
  });

  it('refuses what is not an exact whole amount rather than guessing', () => {
    for (const bad of ['1.5', '1e6', ' 10', '0x10', '']) expect(() => formatMoney(bad, 'en')).toThrow();
  });

  it('orders amounts exactly, also where doubles cannot tell them apart', () => {
    fc.assert(
      fc.property(fc.bigInt(), fc.bigInt(), (a, b) => {
        expect(Math.sign(compareMoney(a.toString(), b.toString()))).toBe(a < b ? -1 : a > b ? 1 : 0);
      }),
    );
    expect(compareMoney('9007199254740993', '9007199254740992')).toBe(1);
  });
});

describe('dates and times as the bank and the accountant read them', () => {
  it('writes times in UTC+7, day first, whatever offset they came with', () => {
    expect(formatDateTime('2023-12-05T16:25:00+07:00', 'en')).toBe('05/12/2023 16:25');
    expect(formatDateTime('2023-12-05T09:25:00Z', 'vi')).toBe('05/12/2023 16:25');
    expect(formatDateTime('2023-12-31T17:30:00Z', 'en')).toBe('01/01/2024 00:30');
    expect(formatDate('2023-12-05', 'vi')).toBe('05/12/2023');
  });

  it('takes the bank-local date of an instant', () => {
    expect(bankDate('2023-12-31T16:59:59Z')).toBe('2023-12-31');
    expect(bankDate('2023-12-31T17:00:00Z')).toBe('2024-01-01');
  });

  it('knows the months: their last days, their neighbours, and whether a period is one', () => {
    expect(monthPeriod('2023-12')).toEqual({ from: '2023-12-01', to: '2023-12-31' });
    expect(monthPeriod('2024-02')).toEqual({ from: '2024-02-01', to: '2024-02-29' });
    expect(monthPeriod('2023-02')).toEqual({ from: '2023-02-01', to: '2023-02-28' });
    expect(shiftMonth('2023-12', 1)).toBe('2024-01');
    expect(shiftMonth('2024-01', -1)).toBe('2023-12');
    expect(periodMonth('2023-12-01', '2023-12-31')).toBe('2023-12');
    expect(periodMonth('2023-12-01', '2023-12-30')).toBeNull();
  });
});

describe('prettyJson indents the raw payload without re-parsing it', () => {
  it('keeps every number, string and escape as sent', () => {
    const raw = '{"amount":12345678901234567890,"d":"a, b: {c}\\"\\u0041","x":[],"y":{},"z":[1,-2.50e3,null,true]}';
    expect(prettyJson(raw)).toBe(
      '{\n  "amount": 12345678901234567890,\n  "d": "a, b: {c}\\"\\u0041",\n  "x": [],\n  "y": {},\n  "z": [\n    1,\n    -2.50e3,\n    null,\n    true\n  ]\n}',
    );
  });

  it('gives back the same JSON value for any JSON text, however it was spaced', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.constantFrom(undefined, 1, '\t'), (value, space) => {
        const text = JSON.stringify(value, null, space);
        expect(JSON.parse(prettyJson(text))).toEqual(JSON.parse(text));
      }),
    );
  });

  it('returns text that is not JSON untouched', () => {
    expect(prettyJson('{"open": "never closed')).toBe('{"open": "never closed');
    expect(prettyJson('[1, 2')).toBe('[1, 2');
  });
});

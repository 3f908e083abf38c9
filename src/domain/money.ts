import { err, ok, type Result } from './result';

/**
 * Currencies the ledger books, with their minor-unit exponent. VND has no minor unit: 1n is one đồng.
 * Cas has only ever sent VND; another currency is refused rather than booked at the wrong scale.
 */
export const SUPPORTED_CURRENCIES = { VND: 0 } as const;
export type Currency = keyof typeof SUPPORTED_CURRENCIES;

export const isSupportedCurrency = (code: string): code is Currency => Object.hasOwn(SUPPORTED_CURRENCIES, code);

export type AmountError = 'not_a_number' | 'fractional_amount' | 'out_of_range';

const INTEGER = /^-?(0|[1-9]\d*)$/;
/** No amount has this many digits: past it a text is out of range without building a bigint of it (a body may hold 250 000). */
const MAX_DIGITS = 40;
const DECIMAL = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?$/;

/**
 * Reads the exact text of a JSON number as whole minor units. `10000`, `1e4` and `10000.0` are the same đồng;
 * `10000.5` is not a VND amount. Never goes through a float. Whether the ledger can book the value is
 * `isBookableMoney`'s question.
 */
export function parseMinorUnits(text: string): Result<bigint, AmountError> {
  if (INTEGER.test(text)) return text.length > MAX_DIGITS ? err('out_of_range') : ok(BigInt(text));
  if (!DECIMAL.test(text)) return err('not_a_number');
  const negative = text.startsWith('-');
  const [mantissa = '', exponentText] = text.replace(/^-/, '').toLowerCase().split('e');
  const [whole = '', fraction = ''] = mantissa.split('.');
  const exponent = Number.parseInt(exponentText ?? '0', 10);
  let digits = (whole + fraction).replace(/^0+/, '');
  let scale = fraction.length - exponent; // value = digits × 10^-scale
  while (scale > 0 && digits.endsWith('0')) {
    digits = digits.slice(0, -1);
    scale -= 1;
  }
  if (digits === '') return ok(0n);
  if (scale > 0) return err('fractional_amount');
  if (digits.length - scale > MAX_DIGITS) return err('out_of_range');
  const value = BigInt(digits) * 10n ** BigInt(-scale);
  return ok(negative ? -value : value);
}

/**
 * The largest magnitude of money the ledger books, in minor units: 2^62 − 1 (4.6 × 10^18 đồng). The read models hold
 * money as PostgreSQL bigint (signed 64-bit), and they also hold differences of two balances (a break's missing
 * amount, before(u) − after(t)): with every balance within ±(2^62 − 1) such a difference always fits.
 */
export const MAX_BOOKABLE_MINOR_UNITS = 2n ** 62n - 1n;

export const isBookableMoney = (amount: bigint): boolean =>
  amount <= MAX_BOOKABLE_MINOR_UNITS && amount >= -MAX_BOOKABLE_MINOR_UNITS;

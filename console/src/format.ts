/**
 * How the console writes money, dates and times. Pure (Intl only), so the unit tests run it in Node.
 * Money arrives as exact decimal strings and is formatted from a BigInt: it never passes through a JS number.
 */
export type Lang = 'vi' | 'en';

/** The bank's time zone: Cas sends Vietnamese banks' times, and the books are read in them (UTC+7). */
export const BANK_TIME_ZONE = 'Asia/Ho_Chi_Minh';

/** vi-VN writes `15.000.000 ₫`; English is written as in Britain (`₫15,000,000`, day before month): the readers are in Vietnam. */
export const LOCALES: Record<Lang, string> = { vi: 'vi-VN', en: 'en-GB' };

const numberFormats = new Map<string, Intl.NumberFormat>();
function moneyFormat(lang: Lang, currency: string, signed: boolean): Intl.NumberFormat {
  const key = `${lang}/${currency}/${signed}`;
  let format = numberFormats.get(key);
  if (!format) {
    format = new Intl.NumberFormat(LOCALES[lang], {
      style: 'currency',
      currency,
      // VND has no minor unit; amounts are whole units of the currency.
      minimumFractionDigits: 0,
      maximumFractionDigits: 0,
      signDisplay: signed ? 'exceptZero' : 'auto',
    });
    numberFormats.set(key, format);
  }
  return format;
}

const MONEY = /^-?(0|[1-9]\d*)$/;

/** An exact decimal string of whole units (`"15000000"`) in the locale: `15.000.000 ₫` / `₫15,000,000`; null → `—`. */
export function formatMoney(amount: string | null | undefined, lang: Lang, currency = 'VND', options: { signed?: boolean } = {}): string {
  if (amount === null || amount === undefined) return '—';
  if (!MONEY.test(amount)) throw new Error(`not an amount: ${amount}`);
  return moneyFormat(lang, currency, options.signed ?? false).format(BigInt(amount));
}

/** Compares two money strings exactly (for sorting). */
export function compareMoney(a: string | null, b: string | null): number {
  if (a === null || b === null) return a === b ? 0 : a === null ? -1 : 1;
  const x = BigInt(a);
  const y = BigInt(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

const ISO_DATE = /^(\d{4})-(\d{2})-(\d{2})$/;

/** A bank-local calendar date `YYYY-MM-DD` as the reader writes it: `05/12/2023` in both languages. */
export function formatDate(date: string | null | undefined, lang: Lang): string {
  if (!date) return '—';
  const m = ISO_DATE.exec(date);
  if (!m) return date;
  return new Intl.DateTimeFormat(LOCALES[lang], { timeZone: 'UTC', day: '2-digit', month: '2-digit', year: 'numeric' }).format(
    new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]))),
  );
}

/** An instant (ISO-8601 with an offset) in the bank's time zone: date as formatDate, then `16:25`. */
export function formatDateTime(instant: string | null | undefined, lang: Lang, options: { seconds?: boolean } = {}): string {
  if (!instant) return '—';
  const at = new Date(instant);
  if (Number.isNaN(at.getTime())) return instant;
  const time = new Intl.DateTimeFormat(LOCALES[lang], {
    timeZone: BANK_TIME_ZONE,
    hour: '2-digit',
    minute: '2-digit',
    ...(options.seconds ? { second: '2-digit' } : {}),
    hourCycle: 'h23',
  }).format(at);
  return `${formatDate(bankDate(instant), lang)} ${time}`;
}

/** The bank-local date (UTC+7) of an instant, `YYYY-MM-DD`. */
export function bankDate(instant: string): string {
  const parts = new Intl.DateTimeFormat('en-CA', { timeZone: BANK_TIME_ZONE, year: 'numeric', month: '2-digit', day: '2-digit' }).formatToParts(
    new Date(instant),
  );
  const part = (type: string) => parts.find((p) => p.type === type)?.value ?? '';
  return `${part('year')}-${part('month')}-${part('day')}`;
}

/** `2023-12` → the first and last dates of that month. */
export function monthPeriod(month: string): { from: string; to: string } {
  const [y, m] = month.split('-').map(Number) as [number, number];
  const last = new Date(Date.UTC(y, m, 0)).getUTCDate();
  return { from: `${month}-01`, to: `${month}-${String(last).padStart(2, '0')}` };
}

/** The month a period is, when it is exactly one calendar month; else null. */
export function periodMonth(from: string, to: string): string | null {
  const month = from.slice(0, 7);
  const whole = monthPeriod(month);
  return whole.from === from && whole.to === to ? month : null;
}

/** The month `delta` months after `month` (`2023-12`, 1 → `2024-01`). */
export function shiftMonth(month: string, delta: number): string {
  const [y, m] = month.split('-').map(Number) as [number, number];
  const at = new Date(Date.UTC(y, m - 1 + delta, 1));
  return `${at.getUTCFullYear()}-${String(at.getUTCMonth() + 1).padStart(2, '0')}`;
}

/** `2023-12` → `December 2023` / `tháng 12 năm 2023`. */
export function formatMonth(month: string, lang: Lang): string {
  const [y, m] = month.split('-').map(Number) as [number, number];
  return new Intl.DateTimeFormat(LOCALES[lang], { timeZone: 'UTC', month: 'long', year: 'numeric' }).format(new Date(Date.UTC(y, m - 1, 1)));
}

/** A count in the locale (`1.234` / `1,234`). */
export const formatCount = (n: number | string, lang: Lang): string =>
  new Intl.NumberFormat(LOCALES[lang], { maximumFractionDigits: 0 }).format(typeof n === 'string' ? BigInt(n) : n);

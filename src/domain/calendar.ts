/** Milliseconds in a calendar day (JavaScript time counts no leap seconds, and the bank keeps UTC+7 all year). */
export const DAY_MS = 86_400_000;

/** A bank-local calendar day written YYYY-MM-DD that exists (no 2026-02-30). Arithmetic only: it runs per field. */
export function isCalendarDate(text: string): boolean {
  return daysSince1970(text) !== null;
}

/**
 * Days since 1970-01-01 of the day written YYYY-MM-DD, when it exists (isCalendarDate's rule), else null: the
 * proleptic Gregorian count that Date.UTC makes (days_from_civil), read digit by digit without a Date.
 */
export function daysSince1970(text: string): number | null {
  return text.length === 10 ? leadingDays(text) : null;
}

/** daysSince1970 of the YYYY-MM-DD that `text` starts with (a date, or an instant's first ten characters). */
function leadingDays(text: string): number | null {
  if (text.charCodeAt(4) !== 0x2d || text.charCodeAt(7) !== 0x2d) return null;
  const year = digitsAt(text, 0, 4);
  const month = digitsAt(text, 5, 2);
  const day = digitsAt(text, 8, 2);
  if (year < 0 || month < 1 || month > 12 || day < 1) return null;
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  if (day > (month === 2 ? (leap ? 29 : 28) : DAYS_IN_MONTH[month - 1]!)) return null;
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yearOfEra = y - era * 400;
  const dayOfYear = Math.floor((153 * (month > 2 ? month - 3 : month + 9) + 2) / 5) + day - 1;
  return era * 146_097 + yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) + dayOfYear - 719_468;
}

/**
 * Milliseconds since 1970 of an instant written YYYY-MM-DDTHH:MM:SS.mmmZ (toISOString's form) on a day that exists,
 * hours below 24; null for anything else.
 */
export function utcMillisSince1970(text: string): number | null {
  if (text.length !== 24 || text.charCodeAt(10) !== 0x54 || text.charCodeAt(13) !== 0x3a || text.charCodeAt(16) !== 0x3a || text.charCodeAt(19) !== 0x2e || text.charCodeAt(23) !== 0x5a) return null;
  const days = leadingDays(text);
  const hour = digitsAt(text, 11, 2);
  const minute = digitsAt(text, 14, 2);
  const second = digitsAt(text, 17, 2);
  const milli = digitsAt(text, 20, 3);
  if (days === null || hour < 0 || hour > 23 || minute < 0 || minute > 59 || second < 0 || second > 59 || milli < 0) return null;
  return (days * 86_400 + hour * 3_600 + minute * 60 + second) * 1_000 + milli;
}

/** The number written by `count` ASCII digits from `at`, or -1 when one of them is not a digit. */
function digitsAt(s: string, at: number, count: number): number {
  let n = 0;
  for (let i = at; i < at + count; i++) {
    const d = s.charCodeAt(i) - 0x30;
    if (!(d >= 0 && d <= 9)) return -1;
    n = n * 10 + d;
  }
  return n;
}

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/**
 * `new Date(text).toISOString()`, without the Date when the text is already a UTC instant in whole seconds that exists
 * (2026-03-02T01:00:05Z becomes 2026-03-02T01:00:05.000Z): a Date rolls a day past the month's end over and throws
 * on what it cannot read, so anything else takes the Date's way and gets exactly its result.
 */
export function isoInstant(text: string): string {
  return UTC_SECONDS.test(text) && isCalendarDate(text.slice(0, 10)) ? `${text.slice(0, 19)}.000Z` : new Date(text).toISOString();
}

const UTC_SECONDS = /^\d{4}-\d{2}-\d{2}T([01]\d|2[0-3]):[0-5]\d:[0-5]\dZ$/;

/**
 * The days the ledger books: PostgreSQL, JavaScript and every read model agree on them, and no bank statement lies
 * outside. A date or instant beyond them is a sender's error, refused before it reaches the log.
 */
export const FIRST_BOOKABLE_DATE = '1900-01-01';
export const LAST_BOOKABLE_DATE = '2199-12-31';

export type DateProblem = 'not_a_date' | 'out_of_range';

/** Why a YYYY-MM-DD text cannot be booked, or null. */
export function dateProblem(text: string): DateProblem | null {
  if (!isCalendarDate(text)) return 'not_a_date';
  return text < FIRST_BOOKABLE_DATE || text > LAST_BOOKABLE_DATE ? 'out_of_range' : null;
}

/** ISO-8601 with seconds and an offset, as Cas sends it: 2023-12-05T16:25:00+07:00 (a fraction of a second allowed). */
const INSTANT = /^(\d{4}-\d{2}-\d{2})T([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d+)?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)$/;

/** Why an instant cannot be booked, or null: its own date and the UTC date it falls on must both be bookable. */
export function instantProblem(text: string): DateProblem | null {
  const match = INSTANT.exec(text);
  if (!match) return 'not_a_date';
  const ownDate = dateProblem(match[1]!);
  if (ownDate) return ownDate;
  const ms = Date.parse(text);
  if (Number.isNaN(ms)) return 'not_a_date';
  return ms < FIRST_BOOKABLE_MS || ms >= AFTER_LAST_BOOKABLE_MS ? 'out_of_range' : null;
}

const FIRST_BOOKABLE_MS = Date.parse(`${FIRST_BOOKABLE_DATE}T00:00:00Z`);
const AFTER_LAST_BOOKABLE_MS = Date.parse(`${LAST_BOOKABLE_DATE}T00:00:00Z`) + DAY_MS;

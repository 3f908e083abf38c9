/** A bank-local calendar day written YYYY-MM-DD that exists (no 2026-02-30). Arithmetic only: it runs per field. */
export function isCalendarDate(text: string): boolean {
  if (!DATE.test(text)) return false;
  const year = Number(text.slice(0, 4));
  const month = Number(text.slice(5, 7));
  const day = Number(text.slice(8, 10));
  if (month < 1 || month > 12 || day < 1) return false;
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  return day <= (month === 2 ? (leap ? 29 : 28) : DAYS_IN_MONTH[month - 1]!);
}

const DATE = /^\d{4}-\d{2}-\d{2}$/;
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
const AFTER_LAST_BOOKABLE_MS = Date.parse(`${LAST_BOOKABLE_DATE}T00:00:00Z`) + 86_400_000;

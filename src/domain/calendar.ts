/** A bank-local calendar day written YYYY-MM-DD that exists (no 2026-02-30). */
export function isCalendarDate(text: string): boolean {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(text)) return false;
  const date = new Date(`${text}T00:00:00Z`);
  return !Number.isNaN(date.getTime()) && date.toISOString().slice(0, 10) === text;
}

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
  if (!match || !isCalendarDate(match[1]!)) return 'not_a_date';
  const ms = Date.parse(text);
  if (Number.isNaN(ms)) return 'not_a_date';
  const utcDate = new Date(ms).toISOString().slice(0, 10);
  return dateProblem(match[1]!) ?? (utcDate < FIRST_BOOKABLE_DATE || utcDate > LAST_BOOKABLE_DATE ? 'out_of_range' : null);
}

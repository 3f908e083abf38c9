import { DAY_MS } from './calendar';

/**
 * The bank's calendar: Vietnam keeps UTC+7 all year (no daylight saving), so a bank-local day and time of day are
 * arithmetic on the instant. Pure: the instant is passed in.
 */
export const BANK_UTC_OFFSET_MINUTES = 7 * 60;
const MINUTE_MS = 60_000;

const localMs = (instant: Date): number => instant.getTime() + BANK_UTC_OFFSET_MINUTES * MINUTE_MS;

/** The bank-local date (YYYY-MM-DD) of an instant. */
export const bankDate = (instant: Date): string => new Date(localMs(instant)).toISOString().slice(0, 10);

/** Minutes after the bank-local midnight. */
export const bankMinuteOfDay = (instant: Date): number => Math.floor((((localMs(instant) % DAY_MS) + DAY_MS) % DAY_MS) / MINUTE_MS);

/** The calendar day before a YYYY-MM-DD date. */
export const dayBefore = (date: string): string => new Date(Date.parse(`${date}T00:00:00Z`) - DAY_MS).toISOString().slice(0, 10);

/** The day a sweep covers: the day before and the day itself. */
export interface SweepDay {
  readonly date: string;
  readonly fromDate: string;
  readonly toDate: string;
}

/** The sweep for `date`, yesterday and today. */
export const sweepDay = (date: string): SweepDay => ({ date, fromDate: dayBefore(date), toDate: date });

/**
 * Today's sweep once the bank's clock has reached `sweepAtMinutes` (e.g. 03:00 → 180); null before. A process that
 * was down at that time sweeps when it comes back, the same day.
 */
export function dueSweep(now: Date, sweepAtMinutes: number): SweepDay | null {
  return bankMinuteOfDay(now) >= sweepAtMinutes ? sweepDay(bankDate(now)) : null;
}

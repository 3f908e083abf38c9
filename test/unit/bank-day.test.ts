import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bankDate, bankMinuteOfDay, dayBefore, dueSweep } from '../../src/domain/bank-day';

/** The bank's day and time by arithmetic, checked against JavaScript's own calendar at UTC+7. */
describe("the bank's calendar (UTC+7)", () => {
  const instant = fc.date({ min: new Date('1950-01-01T00:00:00Z'), max: new Date('2150-12-31T00:00:00Z'), noInvalidDate: true });
  const shifted = (d: Date) => new Date(d.getTime() + 7 * 3_600_000);

  it('gives the bank-local date and minute of any instant', () => {
    fc.assert(
      fc.property(instant, (d) => {
        expect(bankDate(d)).toBe(shifted(d).toISOString().slice(0, 10));
        expect(bankMinuteOfDay(d)).toBe(shifted(d).getUTCHours() * 60 + shifted(d).getUTCMinutes());
      }),
    );
  });

  it('steps back a day across months, years and 29 February', () => {
    expect(dayBefore('2026-03-01')).toBe('2026-02-28');
    expect(dayBefore('2024-03-01')).toBe('2024-02-29');
    expect(dayBefore('2026-01-01')).toBe('2025-12-31');
    fc.assert(
      fc.property(instant, (d) => {
        const date = d.toISOString().slice(0, 10);
        expect(dayBefore(date)).toBe(new Date(Date.parse(`${date}T12:00:00Z`) - 86_400_000).toISOString().slice(0, 10));
      }),
    );
  });

  it('makes the sweep due from SWEEP_AT on, for yesterday and today, in bank time', () => {
    // 19:59 UTC on 1 May is 02:59 on 2 May in Hà Nội.
    expect(dueSweep(new Date('2026-05-01T19:59:00Z'), 180)).toBeNull();
    expect(dueSweep(new Date('2026-05-01T20:00:00Z'), 180)).toEqual({ date: '2026-05-02', fromDate: '2026-05-01', toDate: '2026-05-02' });
    expect(dueSweep(new Date('2026-05-02T16:59:00Z'), 180)).toMatchObject({ date: '2026-05-02' });
    expect(dueSweep(new Date('2026-05-02T17:00:00Z'), 180)).toBeNull();
    expect(dueSweep(new Date('2026-12-31T17:00:00Z'), 0)).toEqual({ date: '2027-01-01', fromDate: '2026-12-31', toDate: '2027-01-01' });
  });
});

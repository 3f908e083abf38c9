import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { dateProblem, daysSince1970, instantProblem, isCalendarDate, isoInstant, utcMillisSince1970 } from '../../src/domain/calendar';

const pad = (n: number, width: number) => String(n).padStart(width, '0');

/** What JavaScript's own calendar says: the day exists if it survives a round trip through Date. */
const dateExists = (text: string) => {
  const date = new Date(`${text}T00:00:00Z`);
  return !Number.isNaN(date.getTime()) && date.toISOString().slice(0, 10) === text;
};

describe('the calendar', () => {
  it('knows which days exist, as JavaScript\'s Date does, leap years included', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 9999 }), fc.integer({ min: 0, max: 13 }), fc.integer({ min: 0, max: 32 }), (y, m, d) => {
        const text = `${pad(y, 4)}-${pad(m, 2)}-${pad(d, 2)}`;
        expect(isCalendarDate(text)).toBe(dateExists(text));
      }),
      { numRuns: 5_000 },
    );
    for (const [text, exists] of [['2000-02-29', true], ['1900-02-29', false], ['2024-02-29', true], ['2100-02-29', false], ['2023-04-31', false]] as const) {
      expect(isCalendarDate(text)).toBe(exists);
    }
  });

  it('counts the days and milliseconds since 1970 as Date.UTC does, for days that exist and nothing else', () => {
    const field = (max: number, width = 2) => fc.integer({ min: 0, max }).map((n) => pad(n, width));
    fc.assert(
      fc.property(field(9999, 4), field(13), field(32), field(24), field(60), field(60), field(999, 3), (y, mo, d, h, mi, s, ms) => {
        const day = `${y}-${mo}-${d}`;
        const date = new Date(0);
        date.setUTCFullYear(Number(y), Number(mo) - 1, Number(d));
        expect(daysSince1970(day)).toBe(dateExists(day) ? date.getTime() / 86_400_000 : null);
        const instant = `${day}T${h}:${mi}:${s}.${ms}Z`;
        const inRange = dateExists(day) && Number(h) < 24 && Number(mi) < 60 && Number(s) < 60;
        date.setUTCHours(Number(h), Number(mi), Number(s), Number(ms));
        expect(utcMillisSince1970(instant)).toBe(inRange ? date.getTime() : null);
      }),
      { numRuns: 5_000 },
    );
    for (const text of ['2026-03-01T01:00:05Z', '2026-03-01T01:00:05.000+00:00', '2026-3-01T01:00:05.000Z', '2026-03-01 01:00:05.000Z', '２026-03-01T01:00:05.000Z']) {
      expect(utcMillisSince1970(text)).toBeNull();
    }
    expect(utcMillisSince1970('1970-01-01T00:00:00.000Z')).toBe(0);
    expect(daysSince1970('2000-01-01')).toBe(10_957);
  });

  it('writes an instant as Date#toISOString does, or throws where it throws (days past a month\'s end, hour 24, no zone)', () => {
    // What a way of writing the instant gives: its text, or the kind of error it throws.
    const outcome = (write: (text: string) => string) => (text: string) => {
      try {
        return write(text);
      } catch (error) {
        return error instanceof RangeError ? 'RangeError' : 'other';
      }
    };
    const viaDate = outcome((text) => new Date(text).toISOString());
    const viaIsoInstant = outcome(isoInstant);
    const field = (max: number, width = 2) => fc.integer({ min: 0, max }).map((n) => pad(n, width));
    fc.assert(
      fc.property(
        fc.tuple(field(9999, 4), field(13), field(32), field(25), field(61), field(61)),
        fc.constantFrom('Z', '.000Z', '.5Z', '+07:00', 'z', ''),
        fc.constantFrom('T', 't', ' '),
        ([y, mo, d, h, mi, s], zone, t) => {
          const text = `${y}-${mo}-${d}${t}${h}:${mi}:${s}${zone}`;
          expect(viaIsoInstant(text)).toBe(viaDate(text));
        },
      ),
      { numRuns: 20_000 },
    );
    for (const text of ['2026-02-28T23:59:59Z', '2024-02-29T00:00:00Z', '2025-02-29T00:00:00Z', '2025-04-31T12:00:00Z', '2025-01-01T24:00:00Z', '2025-01-01T23:59:60Z', '0000-01-01T00:00:00Z', '1900-02-29T00:00:00Z']) {
      expect(viaIsoInstant(text)).toBe(viaDate(text));
    }
    expect(isoInstant('2026-03-02T01:00:05Z')).toBe('2026-03-02T01:00:05.000Z');
  });

  it('books the days 1900-01-01 to 2199-12-31, and an instant only when both its own day and its UTC day are among them', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: Date.UTC(1890, 0, 1), max: Date.UTC(2210, 0, 1) }),
        fc.integer({ min: -(23 * 60 + 59), max: 23 * 60 + 59 }),
        (utcMs, offsetMinutes) => {
          const local = new Date(utcMs + offsetMinutes * 60_000).toISOString().slice(0, 19);
          const sign = offsetMinutes < 0 ? '-' : '+';
          const abs = Math.abs(offsetMinutes);
          const text = `${local}${sign}${pad(Math.floor(abs / 60), 2)}:${pad(abs % 60, 2)}`;
          const inRange = (day: string) => day >= '1900-01-01' && day <= '2199-12-31';
          const utcDay = new Date(utcMs).toISOString().slice(0, 10);
          expect(instantProblem(text)).toBe(inRange(local.slice(0, 10)) && inRange(utcDay) ? null : 'out_of_range');
        },
      ),
      { numRuns: 5_000 },
    );
  });

  it.each([
    ['2023-12-05T16:25:00+07:00', null],
    ['2023-12-05T16:25:00.123456789Z', null],
    ['2023-12-05T16:25+07:00', 'not_a_date'],
    ['2023-12-05T16:25:00', 'not_a_date'],
    ['2023-12-05T24:00:00Z', 'not_a_date'],
    ['2023-12-05T16:25:60Z', 'not_a_date'],
    ['2023-02-29T10:00:00+07:00', 'not_a_date'],
    ['2023-12-05T16:25:00+24:00', 'not_a_date'],
    ['0001-01-01T00:00:00+14:00', 'out_of_range'],
    ['9999-12-31T23:59:59-23:59', 'out_of_range'],
  ])('reads the instant %s as %s', (text, problem) => {
    expect(instantProblem(text)).toBe(problem);
  });

  it.each([
    ['2023-12-05', null],
    ['1900-01-01', null],
    ['2199-12-31', null],
    ['1899-12-31', 'out_of_range'],
    ['0000-01-01', 'out_of_range'],
    ['2023-02-30', 'not_a_date'],
    ['20231205', 'not_a_date'],
  ])('reads the date %s as %s', (text, problem) => {
    expect(dateProblem(text)).toBe(problem);
  });
});

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { figuresAndLines, type StatementRow } from '../../src/projections/ledger.queries';

// The statement query answers its figures' row and the page's lines as rows in no promised order; each line row says
// its place. Whatever order PostgreSQL sends them in, the page comes back in place order. When a line follows the
// page, one more row says so (its place, no line), and the page's last line carries its key: where the next page starts.
const figures = { account: null, summary: {}, before: null, has_before: false, k: null, line: null, next: null, breaks: null, parked: 0 } as unknown as StatementRow;
const keyOf = (k: number) => ({ instant: `2026-03-01 09:00:00.${String(k).padStart(6, '0')}+00`, seq: k });
const lineRow = (k: number, last = false): StatementRow => ({ ...figures, k, line: `{"n":${k}}`, next: last ? keyOf(k) : null });
const followingRow = (k: number): StatementRow => ({ ...figures, k, line: null });

describe('statement rows', () => {
  it('puts the page back in place order whatever order the rows arrive in, and says where the next page starts', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 60 }),
        fc.boolean(),
        fc.array(fc.nat(), { minLength: 62, maxLength: 62 }),
        (n, paged, keys) => {
          // Paged: the last line carries its key; a following row only when there is a line to follow.
          const follows = paged && n > 0;
          const lines = Array.from({ length: n }, (_, i) => lineRow(i + 1, paged && i === n - 1));
          const rows = [figures, ...lines, ...(follows ? [followingRow(n + 1)] : [])];
          const shuffled = rows.map((r, i) => ({ r, key: keys[i]! })).sort((a, b) => a.key - b.key).map((x) => x.r);
          const { row, pageLines, next } = figuresAndLines(shuffled);
          expect(row).toBe(figures);
          expect(pageLines).toEqual(Array.from({ length: n }, (_, i) => `{"n":${i + 1}}`));
          expect(next).toEqual(follows ? keyOf(n) : null);
        },
      ),
    );
  });

  it('says no next page when no line follows, even though the last line carries its key', () => {
    const { pageLines, next } = figuresAndLines([lineRow(2, true), figures, lineRow(1)]);
    expect(pageLines).toEqual(['{"n":1}', '{"n":2}']);
    expect(next).toBeNull();
  });

  it('refuses an answer without figures, with a hole in the page, or a following line without the last key', () => {
    expect(() => figuresAndLines([lineRow(1)])).toThrow(/no figures/);
    expect(() => figuresAndLines([figures, lineRow(1), lineRow(3)])).toThrow(/gaps/);
    expect(() => figuresAndLines([figures, lineRow(2), lineRow(2)])).toThrow(/gaps/);
    expect(() => figuresAndLines([figures, lineRow(1), followingRow(3), lineRow(3)])).toThrow(/gaps/);
    expect(() => figuresAndLines([figures, lineRow(1), followingRow(2)])).toThrow(/last key/);
  });
});

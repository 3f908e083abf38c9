import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { figuresAndLines, type StatementRow } from '../../src/projections/ledger.queries';

// The statement query answers its figures' row and the page's lines as rows in no promised order; each line row says
// its place. Whatever order PostgreSQL sends them in, the page comes back in place order.
const figures = { account: null, summary: {}, before: null, has_before: false, k: null, line: null, next: null, breaks: null, parked: 0 } as unknown as StatementRow;
const lineRow = (k: number): StatementRow => ({ ...figures, k, line: `{"n":${k}}` });

describe('statement rows', () => {
  it('puts the page back in place order whatever order the rows arrive in', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 60 }).chain((n) => fc.shuffledSubarray([figures, ...Array.from({ length: n }, (_, i) => lineRow(i + 1))], { minLength: n + 1 })), (rows) => {
        const { row, pageLines } = figuresAndLines(rows);
        expect(row).toBe(figures);
        expect(pageLines).toEqual(Array.from({ length: rows.length - 1 }, (_, i) => `{"n":${i + 1}}`));
      }),
    );
  });

  it('refuses an answer without figures or with a hole in the page', () => {
    expect(() => figuresAndLines([lineRow(1)])).toThrow(/no figures/);
    expect(() => figuresAndLines([figures, lineRow(1), lineRow(3)])).toThrow(/gaps/);
    expect(() => figuresAndLines([figures, lineRow(2), lineRow(2)])).toThrow(/gaps/);
  });
});

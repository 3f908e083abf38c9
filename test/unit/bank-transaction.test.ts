import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalJson, canonicalTransaction, transactionToJson } from '../../src/domain/bank-transaction';
import { bankTx } from '../support/ledger';

describe('the canonical text of a transaction', () => {
  const text = fc.option(fc.string(), { nil: null });
  const json = fc.jsonValue().map((v) => v as Parameters<typeof canonicalJson>[0]);

  it('is the sorted-key JSON of the transaction, money as decimal strings', () => {
    fc.assert(
      fc.property(fc.bigInt(), fc.option(fc.bigInt(), { nil: null }), text, text, fc.option(json, { nil: null }), (amount, runningBalance, description, reference, paymentMeta) => {
        const tx = bankTx({ amount, runningBalance, description, reference, paymentMeta });
        expect(canonicalTransaction(tx)).toBe(canonicalJson(transactionToJson(tx)));
      }),
      { numRuns: 300 },
    );
  });

  it('does not depend on the order fields were given in', () => {
    const tx = bankTx({ amount: 5n, runningBalance: 10n, paymentMeta: { b: 1, a: [2, { d: 3, c: 4 }] } });
    const reordered = Object.fromEntries(Object.entries(tx).reverse()) as typeof tx;
    expect(canonicalTransaction(reordered)).toBe(canonicalTransaction(tx));
    expect(canonicalTransaction(tx)).toContain('"paymentMeta":{"a":[2,{"c":4,"d":3}],"b":1}');
  });
});

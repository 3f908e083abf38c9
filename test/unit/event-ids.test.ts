import fc from 'fast-check';
import { v5 as uuidv5 } from 'uuid';
import { describe, expect, it } from 'vitest';
import { eventIdFor } from '../../src/application/event-ids';

// The ids of events already stored were made by the uuid package: a name must give the same id for ever.
const NAMESPACE = '5b0c4c3e-7f1e-4a53-9d59-5c1f2a8e6b10';

describe('eventIdFor', () => {
  it('is the UUID v5 of the name in the ledger namespace, for any text', () => {
    fc.assert(fc.property(fc.string({ unit: 'binary' }).filter((s) => s.isWellFormed()), (name) => {
        expect(eventIdFor(name)).toBe(uuidv5(name, NAMESPACE));
      }), { numRuns: 2000 });
  });

  it('gives the ids the ledger has always given', () => {
    expect(eventIdFor('transaction:abc')).toBe(uuidv5('transaction:abc', NAMESPACE));
    expect(eventIdFor('sweep:2026-06-01')).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it('refuses half a surrogate pair as the uuid package does', () => {
    expect(() => eventIdFor('body:\ud800')).toThrow();
  });
});

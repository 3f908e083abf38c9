import fc from 'fast-check';
import { v5 as uuidv5 } from 'uuid';
import { describe, expect, it } from 'vitest';
import { eventIdFor } from '../../src/application/event-ids';

// The ids of events already stored were made by the uuid package: a name must give the same id for ever.
const NAMESPACE = '5b0c4c3e-7f1e-4a53-9d59-5c1f2a8e6b10';

describe('eventIdFor', () => {
  it('is the UUID v5 of the name in the ledger namespace, for any text', () => {
    const wellFormed = fc.string({ unit: 'binary' }).filter((s) => s.isWellFormed());
    fc.assert(
      fc.property(wellFormed, (name) => {
        expect(eventIdFor(name)).toBe(uuidv5(name, NAMESPACE));
      }),
      { numRuns: 2000 },
    );
  });

  it('gives the ids the ledger has always given', () => {
    expect(eventIdFor('transaction:abc')).toBe('b9ea597d-c1fa-503d-a076-fca28e2543fb');
    expect(eventIdFor('sweep:2026-06-01')).toBe('235c2350-4dc9-5ef3-9fb7-3fa6825f886c');
  });

  it('refuses half a surrogate pair as the uuid package does', () => {
    expect(() => eventIdFor('body:\ud800')).toThrow();
  });
});

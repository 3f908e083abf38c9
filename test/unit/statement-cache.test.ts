import { describe, expect, it } from 'vitest';
import { coalescedVersionReads, createStatementCache, statementCacheKey } from '../../src/infrastructure/http/statement-cache';

const v = (version: string, readModel = '16384') => ({ readModel, version });
const bytes = (n: number, fill = 'x') => Buffer.alloc(n, fill);
/** A version reader that answers `version`. */
const at = (version: ReturnType<typeof v>) => async () => version;

describe('the statement cache', () => {
  it('answers only at the version an answer was computed at, and only in the same read model', async () => {
    const cache = createStatementCache(1024 * 1024)!;
    cache.set('k', v('7'), bytes(10));
    expect(await cache.get('k', at(v('7')))).toEqual(bytes(10));
    expect(await cache.get('k', at(v('8')))).toBeNull();
    // A rebuilt read model is another table: the same version number there is another state.
    expect(await cache.get('k', at(v('7', '20000')))).toBeNull();
    expect(await cache.get('other', at(v('7')))).toBeNull();
    expect(cache.stats()).toMatchObject({ entries: 1, hits: 1, misses: 3 });
  });

  it('is bounded in bytes: the least recently used answers go first', async () => {
    const cache = createStatementCache(40_000)!;
    for (const key of ['a', 'b', 'c']) cache.set(key, v('1'), bytes(4_000, key));
    expect(await cache.get('a', at(v('1')))).not.toBeNull(); // a is now the most recently used
    for (let i = 0; i < 10; i++) cache.set(`n${i}`, v('1'), bytes(4_000));
    const { bytes: held, entries } = cache.stats();
    expect(held).toBeLessThanOrEqual(40_000);
    expect(entries).toBeLessThan(13);
    expect(await cache.get('b', at(v('1')))).toBeNull();
    expect(await cache.get('c', at(v('1')))).toBeNull();
    expect(await cache.get('n9', at(v('1')))).toEqual(bytes(4_000));
  });

  it('keeps out one answer bigger than an eighth of it, and is off at 0', async () => {
    const cache = createStatementCache(80_000)!;
    cache.set('big', v('1'), bytes(20_000));
    expect(await cache.get('big', at(v('1')))).toBeNull();
    expect(cache.stats().entries).toBe(0);
    expect(createStatementCache(0)).toBeNull();
  });

  it('reads the current version only when it holds an answer for the key, and misses on an unknown account', async () => {
    const cache = createStatementCache(1024 * 1024)!;
    const reads: string[] = [];
    const reading = (key: string, version: ReturnType<typeof v> | null) => async () => (reads.push(key), version);
    expect(await cache.get('k', reading('k', v('7')))).toBeNull();
    expect(reads).toEqual([]);
    cache.set('k', v('7'), bytes(10));
    expect(await cache.get('k', reading('k', v('7')))).toEqual(bytes(10));
    expect(await cache.get('k', reading('k', null))).toBeNull();
    expect(await cache.get('other', reading('other', v('7')))).toBeNull();
    expect(reads).toEqual(['k', 'k']);
    expect(cache.stats()).toMatchObject({ entries: 1, hits: 1, misses: 3 });
  });

  it('keys every parameter of the answer', () => {
    const base = { from: '2026-03-01', to: '2026-03-31', limit: 500, cursor: null };
    const keys = new Set([
      statementCacheKey('ledger', 'a', base),
      statementCacheKey('other', 'a', base),
      statementCacheKey('ledger', 'b', base),
      statementCacheKey('ledger', 'a', { ...base, from: '2026-03-02' }),
      statementCacheKey('ledger', 'a', { ...base, to: '2026-03-30' }),
      statementCacheKey('ledger', 'a', { ...base, limit: 50 }),
      statementCacheKey('ledger', 'a', { ...base, cursor: 'abc' }),
    ]);
    expect(keys.size).toBe(7);
  });
});

describe('coalesced version reads', () => {
  it('answers the requests of one turn, and those that arrive while reads run, with one read each, started after they arrived', async () => {
    const reads: { ids: readonly string[]; release: () => void }[] = [];
    const arrived: string[] = [];
    const read = (ids: readonly string[]) => {
      // Every id a read answers had arrived when it started.
      for (const id of ids) expect(arrived).toContain(id);
      return new Promise<Map<string, { readModel: string; version: string }>>((resolve) => {
        reads.push({ ids, release: () => resolve(new Map(ids.filter((id) => id !== 'e').map((id) => [id, v(`v-${id}`)]))) });
      });
    };
    const versionOf = coalescedVersionReads(read, 2);
    const ask = (id: string) => (arrived.push(id.toLowerCase()), versionOf(id));
    const turn = () => new Promise((r) => setImmediate(r));
    // Requests of one turn of the event loop share a read, which starts once that turn is over.
    const first = ['a', 'b', 'A'].map(ask);
    expect(reads).toEqual([]);
    await turn();
    expect(reads.map((r) => r.ids)).toEqual([['a', 'b']]);
    const second = ['C', 'd'].map(ask);
    await turn();
    // Two reads at most in flight: what arrives meanwhile waits for one of them to end.
    const third = ['c', 'e'].map(ask);
    await turn();
    expect(reads.map((r) => r.ids)).toEqual([['a', 'b'], ['c', 'd']]);
    reads[0]!.release();
    await turn();
    expect(reads.map((r) => r.ids)).toEqual([['a', 'b'], ['c', 'd'], ['c', 'e']]);
    reads[1]!.release();
    reads[2]!.release();
    expect(await Promise.all([...first, ...second, ...third])).toEqual([v('v-a'), v('v-b'), v('v-a'), v('v-c'), v('v-d'), v('v-c'), null]);
  });

  it('fails the requests of a failed read only', async () => {
    let calls = 0;
    const versionOf = coalescedVersionReads(async (ids) => {
      calls += 1;
      if (calls === 1) throw new Error('connection lost');
      return new Map(ids.map((id) => [id, v('1')]));
    }, 1);
    const first = versionOf('a');
    const failed = expect(first).rejects.toThrow('connection lost');
    // A request of a later turn, while the first read runs: the next read is its own.
    await new Promise((r) => setImmediate(r));
    const second = versionOf('b');
    await failed;
    expect(await second).toEqual(v('1'));
  });
});

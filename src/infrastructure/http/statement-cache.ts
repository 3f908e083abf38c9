import { LRUCache } from 'lru-cache';
import type { StatementVersion } from '../../projections/ledger.queries';

/** One answer as it was sent, and the state of the account it was computed from. */
interface CachedAnswer {
  readonly version: StatementVersion;
  readonly body: Buffer;
}

/**
 * The JSON statements this process answered, by read model, account and every query parameter, bounded in bytes
 * (least recently used first out). An answer is served again only while the account's version read just before
 * is the one it was computed at: every change a statement shows writes a new version in its own transaction, and a
 * version never comes back (ledger-write.ts), so an equal version means nothing the answer shows has changed since.
 */
export interface StatementCache {
  /**
   * The answer stored under `key` if it was computed at the account's current version, which `current` reads (null:
   * an unknown account). `current` is called only when an answer is stored: with none there is nothing to compare,
   * and a request that will compute its answer anyway is spared a round trip.
   */
  get(key: string, current: () => Promise<StatementVersion | null>): Promise<Buffer | null>;
  set(key: string, version: StatementVersion, body: Buffer): void;
  /** What it holds, and how often a look-up found a current answer (hit) or not (miss: absent, or computed at another version). */
  readonly stats: () => { readonly entries: number; readonly bytes: number; readonly hits: number; readonly misses: number };
}

/** A cache of `maxBytes` (bodies and keys); null when 0: every statement is computed. */
export function createStatementCache(maxBytes: number): StatementCache | null {
  if (maxBytes <= 0) return null;
  const answers = new LRUCache<string, CachedAnswer>({
    maxSize: maxBytes,
    // The body's bytes, the key's (UTF-16) and the entry's own bookkeeping, roughly.
    sizeCalculation: (answer, key) => answer.body.byteLength + 2 * key.length + 2 * answer.version.version.length + 200,
    // One answer bigger than an eighth of the cache would push out many others for a single reader.
    maxEntrySize: Math.max(1, Math.floor(maxBytes / 8)),
  });
  let hits = 0;
  let misses = 0;
  return {
    async get(key, current) {
      const answer = answers.get(key);
      // Read after the answer was looked up: it must show every change committed by now (not only by then).
      const version = answer === undefined ? null : await current();
      const valid = answer !== undefined && version !== null && answer.version.version === version.version && answer.version.readModel === version.readModel;
      if (valid) hits += 1;
      else misses += 1;
      return valid ? answer.body : null;
    },
    set(key, version, body) {
      answers.set(key, { version, body });
    },
    stats: () => ({ entries: answers.size, bytes: answers.calculatedSize, hits, misses }),
  };
}

/** Every parameter the answer depends on, in a fixed order (the read model's table comes with the version). */
export const statementCacheKey = (schema: string, accountId: string, query: { from: string; to: string; limit: number; cursor: string | null }): string =>
  `${schema}\u0000${accountId}\u0000${query.from}\u0000${query.to}\u0000${query.limit}\u0000${query.cursor ?? ''}`;

/**
 * Reads accounts' versions for concurrent requests together: a request's id waits for the next read, which starts
 * at the end of the event loop's turn in which it arrived (or later, once fewer than `inFlight` reads are running),
 * and one statement answers every id that waited (one round trip and one index probe each, instead of a statement
 * each). A read always starts after the requests it answers arrived, so it sees every change committed before them,
 * as a read of its own would.
 */
export function coalescedVersionReads(
  read: (accountIds: readonly string[]) => Promise<ReadonlyMap<string, StatementVersion>>,
  inFlight = 2,
): (accountId: string) => Promise<StatementVersion | null> {
  let waiting: { id: string; resolve: (v: StatementVersion | null) => void; reject: (e: unknown) => void }[] = [];
  let running = 0;
  let scheduled = false;
  // setImmediate runs after the sockets read in this turn: one read answers all their requests, where starting at
  // once gave the first two a read each (3 ids a read instead of 5 under the statements bench, and PostgreSQL's CPU).
  const schedule = () => {
    if (scheduled) return;
    scheduled = true;
    setImmediate(() => {
      scheduled = false;
      next();
    });
  };
  const next = () => {
    if (running >= inFlight || waiting.length === 0) return;
    const batch = waiting;
    waiting = [];
    running += 1;
    read([...new Set(batch.map((w) => w.id))]).then(
      (versions) => {
        for (const w of batch) w.resolve(versions.get(w.id) ?? null);
      },
      (error: unknown) => {
        for (const w of batch) w.reject(error);
      },
    ).finally(() => {
      running -= 1;
      next();
    });
  };
  return (accountId) =>
    new Promise((resolve, reject) => {
      // Ids come back in PostgreSQL's lower case.
      waiting.push({ id: accountId.toLowerCase(), resolve, reject });
      schedule();
    });
}

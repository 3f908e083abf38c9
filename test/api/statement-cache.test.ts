import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildService } from '../../src/composition-root';
import { encodeEvent } from '../../src/domain/event-codec';
import { healStreamId } from '../../src/domain/events';
import type { StatementCache } from '../../src/infrastructure/http/statement-cache';
import { statementJson } from '../../src/infrastructure/http/statements.routes';
import { rebuildProjection } from '../../src/infrastructure/read-model-maintenance';
import { accountIdOf } from '../../src/projections/ledger.projection';
import { statementPage } from '../../src/projections/ledger.queries';
import { readModelIn } from '../../src/projections/read-model';
import { metricValue } from '../support/ops';
import { appendStoredTransaction, bankTx, createLedgerContext, insertStrayLine, type LedgerContext } from '../support/ledger';

let ctx: LedgerContext;
let app: FastifyInstance;
let uncachedApp: FastifyInstance;
let cache: StatementCache;

beforeAll(async () => {
  ctx = await createLedgerContext('stmtcache');
  app = (await buildService(ctx.root)).app;
  cache = ctx.root.resolve('serverDeps').statementCache!;
  // Another process over the same database with the cache off: every answer computed.
  uncachedApp = (await buildService(await ctx.another({ env: { STATEMENT_CACHE_MB: '0' } }))).app;
});
afterAll(async () => {
  await app?.close();
  await uncachedApp?.close();
  await ctx?.close();
});

const a = { fiId: 'fi-cache', accountNumber: '500' };
const A = accountIdOf(a.fiId, a.accountNumber);
const PERIOD = { from: '2026-03-01', to: '2026-03-31' };
const url = (query = 'limit=3') => `/accounts/${A}/statement?from=${PERIOD.from}&to=${PERIOD.to}&${query}`;
const at = (day: string, hour = 9) => `${day}T${String(hour).padStart(2, '0')}:00:00+07:00`;
let clock = Date.parse('2026-03-01T00:00:00Z');

/** A transaction of account A on `day`, stored as a webhook would have, a second after the one before. */
async function book(id: string, day: string, amount: bigint, runningBalance: bigint): Promise<string> {
  clock += 1000;
  return appendStoredTransaction(ctx.store, bankTx({ ...a, id, amount, runningBalance, transactionDate: day, transactionDateTime: at(day) }), new Date(clock));
}

async function body(on: FastifyInstance, query?: string): Promise<string> {
  const res = await on.inject({ method: 'GET', url: url(query) });
  expect(res.statusCode).toBe(200);
  expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
  return res.body;
}

/** The statement query's answer, straight from the read model (no HTTP, no cache). */
async function direct(limit = 3): Promise<string> {
  const page = await statementPage(readModelIn(ctx.database.db, 'ledger'), A, { ...PERIOD, limit, cursor: null });
  return statementJson(page!).toString('utf8');
}

/**
 * Asks twice after a change: the first answer must be computed again (a miss: the account's version moved), the
 * second served from the cache; both are the bytes of the query's answer and of a process without a cache.
 */
async function recomputed() {
  const before = cache.stats();
  const first = await body(app);
  expect(cache.stats()).toMatchObject({ misses: before.misses + 1, hits: before.hits });
  const second = await body(app);
  expect(cache.stats()).toMatchObject({ misses: before.misses + 1, hits: before.hits + 1 });
  expect(second).toBe(first);
  expect(first).toBe(await direct());
  expect(first).toBe(await body(uncachedApp));
  return JSON.parse(first) as {
    lineCount: number;
    reconciled: boolean;
    parkedEvents: number;
    breaks: { id: string; status: string; healing: { attempts: number } }[];
    lines: { transactionId: string; late: boolean }[];
    nextCursor: string | null;
  };
}

describe('the statement cache', () => {
  it('serves an unchanged statement again, page by page, with the bytes of a computed one', async () => {
    await book('c1', '2026-03-02', 100n, 100n);
    await book('c2', '2026-03-04', 50n, 150n);
    await ctx.project();
    expect(await recomputed()).toMatchObject({ lineCount: 2, reconciled: true, breaks: [], nextCursor: null });
    // Another page size is another answer, cached apart.
    const one = await body(app, 'limit=1');
    expect(JSON.parse(one)).toMatchObject({ lines: [{ transactionId: 'c1' }] });
    const cursor = JSON.parse(one).nextCursor as string;
    const second = await body(app, `limit=1&cursor=${cursor}`);
    expect(JSON.parse(second)).toMatchObject({ lines: [{ transactionId: 'c2' }], nextCursor: null });
    const hits = cache.stats().hits;
    expect(await body(app, `limit=1&cursor=${cursor}`)).toBe(second);
    expect(await body(app, 'limit=1')).toBe(one);
    expect(cache.stats().hits).toBe(hits + 2);
    expect(second).toBe(await body(uncachedApp, `limit=1&cursor=${cursor}`));
  });

  it('computes again after a new line', async () => {
    await book('c4', '2026-03-08', 30n, 180n);
    await ctx.project();
    expect(await recomputed()).toMatchObject({ lineCount: 3, reconciled: true });
  });

  it('computes again when a break opens', async () => {
    // 300 − 10 = 290 before c6, but c4 left 180: 110 are missing.
    await book('c6', '2026-03-12', 10n, 300n);
    await ctx.project();
    expect(await recomputed()).toMatchObject({ lineCount: 4, reconciled: false, breaks: [{ status: 'open' }] });
  });

  it('computes again when a late line fills the break', async () => {
    await book('c5', '2026-03-10', 110n, 290n);
    await ctx.project();
    const s = await recomputed();
    expect(s).toMatchObject({ lineCount: 5, reconciled: true, breaks: [] });
    expect(s.lines.map((l) => [l.transactionId, l.late])).toEqual([
      ['c1', false],
      ['c2', false],
      ['c4', false],
    ]);
    const all = JSON.parse(await body(app, 'limit=10')) as { lines: { transactionId: string; late: boolean }[] };
    expect(all.lines.find((l) => l.transactionId === 'c5')?.late).toBe(true);
  });

  it('computes again when a break of the period is healed, or tried', async () => {
    await book('c8', '2026-03-20', 5n, 1000n);
    await ctx.project();
    const [open] = (await recomputed()).breaks;
    expect(open).toMatchObject({ status: 'open', healing: { attempts: 0 } });
    clock += 1000;
    const heal = {
      type: 'GapHealAttempted',
      data: { breakId: open!.id, accountId: A, grantId: null, fromDate: '2026-03-12', toDate: '2026-03-20', outcome: 'not_closed', detail: null, fetched: 0, accepted: 0 },
    } as const;
    await ctx.store.appendToStream(healStreamId(open!.id), [{ eventId: randomUUID(), ...encodeEvent(heal), metadata: { receivedAt: new Date(clock).toISOString(), source: 'heal' } }], 'any');
    await ctx.project();
    expect((await recomputed()).breaks).toMatchObject([{ id: open!.id, healing: { attempts: 1 } }]);
  });

  it('computes again when an event of the account is parked, and when its retry applies it', async () => {
    // A stray line holds c9's transaction id (a hand edit): c9 cannot be booked and is parked, nothing else changes.
    const removeStray = await insertStrayLine(ctx, 'c9', '2026-03-25');
    const c9 = await book('c9', '2026-03-25', 7n, 1007n);
    await ctx.project();
    const parked = await recomputed();
    expect(parked).toMatchObject({ lineCount: 6, parkedEvents: 1, reconciled: false });

    await removeStray();
    expect(await ctx.root.resolve('parkedEvents').retry('ledger', c9)).toMatchObject([{ outcome: 'applied' }]);
    expect(await recomputed()).toMatchObject({ lineCount: 7, parkedEvents: 0 });
  });

  it('computes again once a rebuild has swapped in a new read model', async () => {
    await body(app);
    await rebuildProjection({ db: ctx.database.db, eventStore: ctx.store, projection: ctx.projection });
    expect(await recomputed()).toMatchObject({ lineCount: 7 });
  });

  it('never answers for an account it does not know, and keeps CSV out', async () => {
    const unknown = await app.inject({ method: 'GET', url: `/accounts/${randomUUID()}/statement?from=2026-03-01&to=2026-03-31` });
    expect(unknown.statusCode).toBe(404);
    const before = cache.stats();
    const csv = await app.inject({ method: 'GET', url: url('format=csv') });
    expect(csv.statusCode).toBe(200);
    expect(csv.headers['content-type']).toBe('text/csv; charset=utf-8');
    expect(cache.stats()).toEqual(before);
  });

  it('reports its look-ups and its size in /metrics, as the cache counted them', async () => {
    const scrape = async () => {
      const res = await app.inject({ method: 'GET', url: '/metrics' });
      expect(res.statusCode).toBe(200);
      return res.body;
    };
    const hit = 'ledger_statement_cache_lookups_total{result="hit"}';
    const miss = 'ledger_statement_cache_lookups_total{result="miss"}';
    const before = await scrape();
    await body(app, 'limit=2');
    await body(app, 'limit=2');
    const after = await scrape();
    expect(metricValue(after, miss)).toBe(metricValue(before, miss)! + 1);
    expect(metricValue(after, hit)).toBe(metricValue(before, hit)! + 1);
    const { entries, bytes, hits, misses } = cache.stats();
    expect({ hits, misses }).toEqual({ hits: metricValue(after, hit), misses: metricValue(after, miss) });
    expect(metricValue(after, 'ledger_statement_cache_entries')).toBe(entries);
    expect(metricValue(after, 'ledger_statement_cache_bytes')).toBe(bytes);
    expect(bytes).toBeGreaterThan(0);
  });

  it('answers requests asked together after a change from the changed state, then all of them from the cache', async () => {
    // Their version reads are coalesced (one read for the requests of a turn): none may see the state before the change.
    const queries = ['limit=1', 'limit=2', 'limit=3', 'limit=10'];
    await Promise.all(queries.map((q) => body(app, q)));
    await book('c10', '2026-03-27', 3n, 1010n);
    await ctx.project();
    const before = cache.stats();
    const together = await Promise.all(queries.map((q) => body(app, q)));
    expect(cache.stats()).toMatchObject({ misses: before.misses + queries.length, hits: before.hits });
    for (const [i, q] of queries.entries()) expect(together[i]).toBe(await body(uncachedApp, q));
    expect(JSON.parse(together[3]!)).toMatchObject({ lineCount: 8, lines: expect.arrayContaining([expect.objectContaining({ transactionId: 'c10' })]) });
    expect(await Promise.all(queries.map((q) => body(app, q)))).toEqual(together);
    expect(cache.stats()).toMatchObject({ misses: before.misses + queries.length, hits: before.hits + queries.length });
  });
});

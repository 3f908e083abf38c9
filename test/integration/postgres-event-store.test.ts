import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DuplicateEventId, type EventStore, type EventToAppend, type RecordedEvent, WrongExpectedVersion } from '../../src/application/ports/event-store';
import type { JsonObject } from '../../src/domain/bank-transaction';
import { openRoot, type Root } from '../../src/composition-root';
import { loadConfig } from '../../src/config';
import { APPEND_LOCK } from '../../src/infrastructure/eventstore/postgres-appends';
import { createPostgresEventStore } from '../../src/infrastructure/eventstore/postgres-event-store';
import type { Database } from '../../src/infrastructure/postgres/database';
import { createTestDatabase, type TestDatabase } from '../support/postgres';
import { waitFor } from '../support/service';
import { describeEventStoreContract } from './event-store.contract';

let testDb: TestDatabase;
let root: Root;
let database: Database;

// The database comes from the composition root (migrated); the adapter under test is built here, with short polls.
beforeAll(async () => {
  testDb = await createTestDatabase('eventstore');
  root = await openRoot(loadConfig({ DATABASE_URL: testDb.url, LOG_LEVEL: 'silent' }));
  database = root.resolve('database');
});
afterAll(async () => {
  await root?.close();
  await testDb?.drop();
});

describeEventStoreContract('PostgreSQL', async () => ({
  store: createPostgresEventStore(database.db, { pollIntervalMs: 20 }),
  cleanup: async () => {},
  // PostgreSQL cannot turn U+0000 into text (SQLSTATE 22P05), so the log's JSON cannot hold it.
  poison: () => ({ eventId: crypto.randomUUID(), type: 'Poison', data: { text: 'a\u0000b' }, metadata: {} }),
}));

describe('PostgreSQL event store recordedAt', () => {
  it('reads recorded_at as its millisecond since 1970, floored, at any instant (a double inside 1900–2100, numeric outside)', async () => {
    const store = createPostgresEventStore(database.db, { pollIntervalMs: 20 });
    const type = `Instant-${crypto.randomUUID()}`;
    const events = Array.from({ length: 3000 }, () => ({ eventId: crypto.randomUUID(), type, data: {}, metadata: {} }));
    await store.appendToStream(`instants-${type}`, events, 'no_stream');
    // The edges of both forms and of the millisecond, then microsecond instants spread over 1700–2300.
    const edges = [
      '1900-01-01 00:00:00+00', '1899-12-31 23:59:59.999999+00', '2099-12-31 23:59:59.999999+00', '2100-01-01 00:00:00+00',
      '1969-12-31 23:59:59.999999+00', '1969-12-31 23:59:59.999+00', '1970-01-01 00:00:00.000001+00', '2026-06-01 01:02:03.456+00',
      '2026-06-01 01:02:03.455999+00', '1000-01-01 00:00:00.000999+00', '3000-12-31 23:59:59.999001+00', '2038-01-19 03:14:07.999+00',
    ];
    await sql`
      update events e set recorded_at = case when n <= ${edges.length} then (${edges}::timestamptz[])[n]
        else timestamptz '1700-01-01 00:00:00+00' + ((n * 2654435761) % 18934560000000000) * interval '1 microsecond' end
      from (select seq, row_number() over (order by seq) as n from events where type = ${type}) r
      where e.seq = r.seq`.execute(database.db);
    const { rows } = await sql<{ event_id: string; ms: number }>`
      select event_id, floor(extract(epoch from recorded_at) * 1000)::float8 as ms from events where type = ${type}`.execute(database.db);
    const expected = new Map(rows.map((r) => [r.event_id, r.ms]));
    const page = await store.readAll({ after: null, maxCount: 10_000, filter: { eventTypes: [type] }, metadataKeys: [] });
    expect(page.events).toHaveLength(events.length);
    const wrong = page.events.filter((e) => e.recordedAt.getTime() !== expected.get(e.eventId));
    expect(wrong.map((e) => [e.eventId, e.recordedAt.getTime(), expected.get(e.eventId)])).toEqual([]);
    const [one] = await store.readStream(`instants-${type}`, { maxCount: 1 });
    expect(one!.recordedAt.getTime()).toBe(expected.get(one!.eventId));
  });
});

describe('PostgreSQL event store global order', () => {
  it('never lets a reader pass an event whose transaction is still open: appends commit in sequence order', async () => {
    const store = createPostgresEventStore(database.db, { pollIntervalMs: 10 });
    const seen: RecordedEvent[] = [];
    const subscription = store.subscribe({
      after: null,
      filter: { streamPrefixes: ['order-'] },
      onEvents: async (events) => {
        seen.push(...events);
      },
    });
    // A slow appender takes the append lock; a fast append then queues at it; only then does the slow one insert
    // (taking its sequence number) and dawdle. Had the fast append taken its number before the lock, its number would
    // be the smaller one and a reader at it would have passed the slow event while it was still open.
    const slow = new pg.Client({ connectionString: testDb.url });
    await slow.connect();
    try {
      await slow.query('begin');
      await slow.query(`select pg_advisory_xact_lock(${APPEND_LOCK}::bigint)`);
      let fastDone = false;
      const fast = store
        .appendToStream('order-b', [{ eventId: crypto.randomUUID(), type: 'Ordered', data: {}, metadata: {} }], 'no_stream')
        .then(() => (fastDone = true));
      // The fast append's group waits at the append lock (an advisory lock of this database not granted) before the
      // slow one inserts.
      const queued = async () =>
        (
          await slow.query<{ n: number }>(
            `select count(*)::int as n from pg_locks
             where locktype = 'advisory' and not granted and database = (select oid from pg_database where datname = current_database())`,
          )
        ).rows[0]!.n > 0;
      await waitFor('the fast append to queue at the append lock', queued, 5_000);
      await slow.query(
        `insert into events (stream_id, revision, event_id, type, data, metadata)
         values ('order-a', 0, gen_random_uuid(), 'Ordered', '{}', '{}')`,
      );
      // Give the fast append and the subscriber every chance to run ahead while A is open.
      await new Promise((r) => setTimeout(r, 200));
      expect(fastDone).toBe(false);
      expect(seen).toEqual([]);
      await slow.query('commit');
      await fast;
      const deadline = Date.now() + 5_000;
      while (seen.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      expect(seen.map((e) => e.streamId)).toEqual(['order-a', 'order-b']);
      const seqs = await sql<{ stream_id: string }>`select stream_id from events where stream_id like 'order-%' order by seq`.execute(database.db);
      expect(seqs.rows.map((r) => r.stream_id)).toEqual(['order-a', 'order-b']);
    } finally {
      await slow.end();
      await subscription.stop();
    }
  });

  it('is not held back by a long transaction elsewhere on the server', async () => {
    const idle = new pg.Client({ connectionString: testDb.url });
    await idle.connect();
    try {
      await idle.query('begin');
      await idle.query('select txid_current()'); // an open transaction with an id, as a long report would hold
      const store = createPostgresEventStore(database.db);
      const e = { eventId: crypto.randomUUID(), type: 'Unblocked', data: {}, metadata: {} };
      await store.appendToStream('elsewhere-1', [e], 'no_stream');
      const page = await store.readAll({ after: null, maxCount: 100_000, filter: { eventTypes: ['Unblocked'] } });
      expect(page.events.map((x) => x.eventId)).toEqual([e.eventId]);
    } finally {
      await idle.query('rollback');
      await idle.end();
    }
  });
});

describe('PostgreSQL event store group insert', () => {
  const event = (data: JsonObject, metadata: JsonObject = {}): EventToAppend => ({ eventId: crypto.randomUUID(), type: 'Probe', data, metadata });

  it('refuses what PostgreSQL cannot hold, alone, and stores text that only looks like an escape', async () => {
    const store = createPostgresEventStore(database.db, { pollIntervalMs: 10 });
    const lookalike = event({ text: 'a\\u0000b \\ud800 \\\\u0000' }, { note: 'C:\\ud800' });
    const unstorable = [
      { stream: 'half-pair-data', event: event({ text: 'a\ud800b' }) },
      { stream: 'half-pair-metadata', event: event({}, { note: '\udfff' }) },
      { stream: 'nul-metadata', event: event({}, { note: 'a\u0000' }) },
      { stream: 'half-pair-\ud800-stream', event: event({}) },
      { stream: 'half-pair-attachment', event: { ...event({}), attachment: 'x\udc00' } },
    ];
    const outcomes = await Promise.allSettled([
      store.appendToStream('lookalike', [lookalike], 'no_stream'),
      ...unstorable.map((u) => store.appendToStream(u.stream, [u.event], 'no_stream')),
    ]);
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', ...unstorable.map(() => 'rejected')]);
    for (const [i, u] of unstorable.entries()) {
      expect((outcomes[i + 1] as PromiseRejectedResult).reason).toMatchObject({ name: 'EventRejected', eventId: u.event.eventId });
      expect(await store.readStream(u.stream)).toEqual([]);
    }
    const [stored] = await store.readStream('lookalike');
    expect(stored?.data).toEqual(lookalike.data);
    expect(stored?.metadata).toEqual(lookalike.metadata);
  });

  it('stores every member of groups of every size, each once, answering each caller with its own position', async () => {
    const store = createPostgresEventStore(database.db, { pollIntervalMs: 10 });
    for (const size of [1, 3, 5, 9, 63, 65, 100]) {
      const events = Array.from({ length: size }, (_, i) => ({ ...event({ i }), attachment: `body ${i}` }));
      const results = await Promise.all(events.map((e, i) => store.appendToStream(`sizes-${size}-${i}`, [e], 'no_stream')));
      const positions = results.map((r) => (r.status === 'appended' ? r.position : r.status));
      expect(new Set(positions).size).toBe(size);
      for (const [i, e] of events.entries()) {
        const [stored] = await store.readStream(`sizes-${size}-${i}`, { withAttachments: true });
        expect(stored).toMatchObject({ eventId: e.eventId, data: { i }, attachment: `body ${i}` });
        expect(positions[i]).toBe(stored!.position);
      }
    }
  });

  it('answers a group that meets rows already stored as before: the new members appended, each repeat decided', async () => {
    const store = createPostgresEventStore(database.db, { pollIntervalMs: 10 });
    const first = event({ n: 0 });
    await store.appendToStream('meets-0', [first], 'no_stream');
    // The first two appends go alone (two groups in flight); the rest wait and form one group, which meets the
    // stored event twice: its retry (already stored) and another event for its stream (no longer "no stream").
    const fresh = Array.from({ length: 6 }, (_, i) => event({ n: i + 1 }));
    const results = await Promise.all([
      ...fresh.map((e, i) => store.appendToStream(`meets-${i + 1}`, [e], 'no_stream')),
      store.appendToStream('meets-0', [first], 'no_stream'),
      store.appendToStream('meets-0', [event({ n: 99 })], 'no_stream').catch((error: unknown) => error),
      store.appendToStream('meets-7', [first], 'no_stream').catch((error: unknown) => error),
    ]);
    for (const result of results.slice(0, 6)) expect(result).toMatchObject({ status: 'appended' });
    expect(results[6]).toMatchObject({ status: 'already_stored', nextRevision: 0n });
    expect(results[7]).toBeInstanceOf(WrongExpectedVersion);
    expect(results[8]).toBeInstanceOf(DuplicateEventId);
    for (const [i, e] of [first, ...fresh].entries()) {
      expect((await store.readStream(`meets-${i}`)).map((r) => r.eventId)).toEqual([e.eventId]);
    }
    expect(await store.readStream('meets-7')).toEqual([]);
  });

  it('answers one new delivery met twice in a group as appended once and already stored, and elsewhere as a duplicate id', async () => {
    const store = createPostgresEventStore(database.db, { pollIntervalMs: 10 });
    const twice = event({ n: 'twice' });
    // The first two appends go alone (two groups in flight); the rest wait and form one group holding the new
    // event three times: twice for its stream, once for another.
    const fresh = Array.from({ length: 2 }, (_, i) => event({ n: i }));
    const results = await Promise.all([
      ...fresh.map((e, i) => store.appendToStream(`twice-${i}`, [e], 'no_stream')),
      store.appendToStream('twice-a', [twice], 'no_stream'),
      store.appendToStream('twice-a', [twice], 'no_stream').catch((error: unknown) => error),
      store.appendToStream('twice-b', [twice], 'no_stream').catch((error: unknown) => error),
    ]);
    expect(results[2]).toMatchObject({ status: 'appended' });
    expect(results[3]).toMatchObject({ status: 'already_stored', nextRevision: 0n });
    expect(results[4]).toBeInstanceOf(DuplicateEventId);
    expect((await store.readStream('twice-a')).map((r) => r.eventId)).toEqual([twice.eventId]);
    expect(await store.readStream('twice-b')).toEqual([]);
  });
});

// A subscription in the appending process is woken by its own commits; the idle poll is set far beyond every
// deadline below, so only those wake-ups (and the settling window) can deliver what these tests wait for.
describe('PostgreSQL event store subscription beside its appends', () => {
  const NO_POLL = 600_000;
  const event = (): EventToAppend => ({ eventId: crypto.randomUUID(), type: 'Settled', data: {}, metadata: {} });

  function follow(store: EventStore, prefix: string, handle: (events: readonly RecordedEvent[]) => Promise<void> = async () => {}) {
    const batches: string[][] = [];
    const subscription = store.subscribe({
      after: null,
      filter: { streamPrefixes: [prefix] },
      onEvents: async (events) => {
        batches.push(events.map((e) => e.streamId));
        await handle(events);
      },
    });
    const received = () => batches.flat();
    return { batches, received, subscription, until: (n: number) => waitFor(`${n} events delivered`, () => received().length >= n, 10_000) };
  }

  it('hands over each append made after a quiet spell at once, however long the settling window', async () => {
    const store = createPostgresEventStore(database.db, { pollIntervalMs: NO_POLL, settleMs: NO_POLL });
    const { batches, subscription, until } = follow(store, 'quiet-');
    try {
      for (let i = 0; i < 5; i++) {
        await store.appendToStream(`quiet-${i}`, [event()], 'no_stream');
        await until(i + 1);
      }
      expect(batches).toEqual([0, 1, 2, 3, 4].map((i) => [`quiet-${i}`]));
    } finally {
      await subscription.stop();
    }
  });

  /**
   * Appends `prefix`0, holds the handler on that first batch while `held` more commit one by one, lets it go and
   * appends `after` more one by one; resolves with the batches once all are delivered.
   */
  async function holdFirstBatch(prefix: string, settleMs: number, held: number, after: number): Promise<string[][]> {
    const store = createPostgresEventStore(database.db, { pollIntervalMs: NO_POLL, settleMs });
    let release = () => {};
    const gate = new Promise<void>((resolve) => (release = resolve));
    const { batches, subscription, until } = follow(store, prefix, () => gate);
    const append = (i: number) => store.appendToStream(`${prefix}${i}`, [event()], 'no_stream');
    try {
      await append(0);
      await until(1);
      for (let i = 1; i <= held; i++) await append(i);
      release();
      for (let i = held + 1; i <= held + after; i++) await append(i);
      await until(1 + held + after);
      return batches;
    } finally {
      release();
      await subscription.stop();
    }
  }

  it('does not lose a commit that lands while the handler works on the batch before it', async () => {
    expect(await holdFirstBatch('busy-handler-', 0, 1, 0)).toEqual([['busy-handler-0'], ['busy-handler-1']]);
  });

  it('reads what commits during the window after a busy batch as one batch', async () => {
    // Two commits while the first batch is handled: the follower is busy, so it waits for the window to end.
    expect(await holdFirstBatch('window-', 1_500, 2, 2)).toEqual([['window-0'], ['window-1', 'window-2', 'window-3', 'window-4']]);
  });

  it('stops at once when stopped while its handler works, without waiting out the idle poll', async () => {
    const store = createPostgresEventStore(database.db, { pollIntervalMs: NO_POLL });
    let release = () => {};
    const { subscription, until } = follow(store, 'stopping-', () => new Promise<void>((resolve) => (release = resolve)));
    await store.appendToStream('stopping-0', [event()], 'no_stream');
    await until(1);
    const stopped = subscription.stop();
    release();
    await stopped;
  });

  it('delivers every event of bursts of concurrent appends once, in log order, and catches up when they stop', async () => {
    const store = createPostgresEventStore(database.db, { pollIntervalMs: NO_POLL, settleMs: 100 });
    const { received, subscription, until } = follow(store, 'burst-');
    try {
      const streams: string[] = [];
      for (let burst = 0; burst < 10; burst++) {
        const names = Array.from({ length: 40 }, (_, i) => `burst-${burst}-${i}`);
        streams.push(...names);
        // Half of each burst is awaited, the rest still committing while the next burst starts.
        const appended = names.map((name) => store.appendToStream(name, [event()], 'no_stream'));
        await Promise.all(appended.slice(0, 20));
        if (burst === 9) await Promise.all(appended);
      }
      await until(streams.length);
      const logOrder = await sql<{ stream_id: string }>`select stream_id from events where stream_id like 'burst-%' order by seq`.execute(database.db);
      expect(received()).toEqual(logOrder.rows.map((r) => r.stream_id));
      expect(new Set(received()).size).toBe(streams.length);
      expect(new Set(received())).toEqual(new Set(streams));
    } finally {
      await subscription.stop();
    }
  });
});

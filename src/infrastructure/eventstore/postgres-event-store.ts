import { type Kysely, sql } from 'kysely';
import type { JsonObject } from '../../domain/bank-transaction';
import {
  type AppendResult,
  DuplicateEventId,
  type EventFilter,
  type EventStore,
  type EventToAppend,
  EventRejected,
  EventStoreUnavailable,
  type ExpectedRevision,
  type ReadAllOptions,
  type ReadAllPage,
  type RecordedEvent,
  type SubscribeOptions,
  type Subscription,
  WrongExpectedVersion,
  decodePosition,
  encodePosition,
} from '../../application/ports/event-store';
import { isDataError, isUnavailableError } from '../postgres/errors';
import { followLog } from './follow-log';

interface EventRow {
  seq: string;
  stream_id: string;
  revision: string;
  event_id: string;
  type: string;
  data: JsonObject;
  metadata: JsonObject;
  raw_body?: string | null;
  recorded_at: Date;
}

export interface PostgresEventStoreOptions {
  /** Most single-event appends flushed in one transaction (group commit). */
  readonly maxGroupSize?: number;
  /** How often an idle subscription looks for events appended by other processes. */
  readonly pollIntervalMs?: number;
}

interface PendingAppend {
  readonly streamId: string;
  readonly event: EventToAppend;
  readonly resolve: (result: AppendResult) => void;
  readonly reject: (error: unknown) => void;
}

const UNIQUE_VIOLATION = '23505';
/** A second group waits at the append lock while the first commits, so no round trip is lost between groups. */
const MAX_FLUSHES_IN_FLIGHT = 2;
/** The key of the advisory lock that serialises appends (any stable 64-bit number; 'ledgerev' in ASCII). */
const APPEND_LOCK = 0x6c65646765726576n;

const lockAppends = (trx: Kysely<any>) => sql`select pg_advisory_xact_lock(${APPEND_LOCK.toString()}::bigint)`.execute(trx);
const positionOf = (seq: string) => encodePosition(0n, BigInt(seq));
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The event store on PostgreSQL (a server, or PGlite embedded).
 *
 * Ordering: a bigserial is handed out at insert time but becomes visible at commit, so a reader trusting it
 * alone could pass a slow transaction's events for ever. Every appending transaction therefore takes one
 * transaction-scoped advisory lock before it inserts: appends commit one after another, in sequence order, and a
 * reader that has seen sequence n has seen everything below it. (A fence on the oldest running transaction id also
 * works, but it is cluster-wide: any long transaction in any database on the server would hold every reader back.)
 * Group commit keeps the serialisation cheap: one lock per group, not per event.
 *
 * Throughput: concurrent single-event "no stream" appends (one webhook each) are grouped into one INSERT and one
 * commit; each caller's promise resolves only after that commit.
 */
export function createPostgresEventStore(db: Kysely<any>, options: PostgresEventStoreOptions = {}): EventStore {
  const maxGroupSize = options.maxGroupSize ?? 256;
  const pollIntervalMs = options.pollIntervalMs ?? 250;
  const waiters = new Set<() => void>();
  const announce = () => {
    for (const wake of waiters) wake();
    waiters.clear();
  };
  let queue: PendingAppend[] = [];
  let flushing = 0;

  /** Port errors for driver errors: unreachable → EventStoreUnavailable; content refused (of `eventId`) → EventRejected. */
  async function translate<T>(work: () => Promise<T>, eventId?: string): Promise<T> {
    try {
      return await work();
    } catch (error) {
      if (isUnavailableError(error)) throw new EventStoreUnavailable('event store unreachable', { cause: error });
      if (eventId !== undefined && isDataError(error)) throw new EventRejected(eventId, (error as Error).message, { cause: error });
      throw error;
    }
  }

  function settle(group: readonly PendingAppend[], results: readonly (AppendResult | Error)[]): void {
    group.forEach((pending, i) => {
      const result = results[i];
      if (result instanceof Error) pending.reject(result);
      else if (result) pending.resolve(result);
    });
  }

  async function flush(): Promise<void> {
    if (flushing >= MAX_FLUSHES_IN_FLIGHT || queue.length === 0) return;
    flushing += 1;
    const group = queue.slice(0, maxGroupSize);
    queue = queue.slice(group.length);
    try {
      const only = group.length === 1 ? group[0]!.event.eventId : undefined;
      settle(group, await translate(() => insertGroup(db, group), only));
      announce();
    } catch (error) {
      // One statement for the group: one bad member fails it for all. Unless the store is gone, each member is
      // tried alone, so that only a member that fails on its own fails.
      if (error instanceof EventStoreUnavailable || group.length === 1) {
        for (const pending of group) pending.reject(error);
      } else {
        await appendOneByOne(group);
      }
    } finally {
      flushing -= 1;
      if (queue.length > 0) void flush();
    }
  }

  async function appendOneByOne(group: readonly PendingAppend[]): Promise<void> {
    for (const pending of group) {
      try {
        settle([pending], await translate(() => insertGroup(db, [pending]), pending.event.eventId));
        announce();
      } catch (error) {
        pending.reject(error);
      }
    }
  }

  async function appendOne(
    streamId: string,
    events: readonly EventToAppend[],
    expected: ExpectedRevision,
  ): Promise<AppendResult> {
    for (let attempt = 0; ; attempt++) {
      try {
        const result = await db.transaction().execute(async (trx) => {
          await lockAppends(trx);
          const current = await streamRevision(trx, streamId);
          const stored = await storedIds(trx, events.map((e) => e.eventId));
          if (stored.size > 0) return alreadyStored(streamId, events, stored, current);
          checkExpected(streamId, expected, current);
          const base = current === 'no_stream' ? 0n : current + 1n;
          const rows = await insertRows(trx, streamId, events, base);
          const last = rows[rows.length - 1]!;
          return {
            status: 'appended',
            nextRevision: base + BigInt(events.length) - 1n,
            position: positionOf(last.seq),
          } satisfies AppendResult;
        });
        if (result.status === 'appended') announce();
        return result;
      } catch (error) {
        // A concurrent writer took the revision or the id between our read and our insert: decide again.
        if (isUniqueViolation(error) && attempt < 5) continue;
        throw error;
      }
    }
  }

  return {
    appendToStream(streamId, events, expectedRevision) {
      if (events.length === 0) throw new Error('appendToStream needs at least one event');
      if (events.length === 1 && expectedRevision === 'no_stream') {
        return new Promise<AppendResult>((resolve, reject) => {
          queue.push({ streamId, event: events[0]!, resolve, reject });
          void flush();
        });
      }
      return translate(() => appendOne(streamId, events, expectedRevision), events[0]!.eventId);
    },

    readStream(streamId, { fromRevision = 0n, maxCount = 10_000 } = {}) {
      return translate(async () => {
        const { rows } = await sql<EventRow>`
          select * from events where stream_id = ${streamId} and revision >= ${fromRevision.toString()}
          order by revision limit ${maxCount}`.execute(db);
        return rows.map(toRecorded);
      });
    },

    readAll: (options) => translate(() => readAll(db, options)),

    readEvent: (eventId) =>
      translate(async () => {
        if (!UUID.test(eventId)) return null;
        const { rows } = await sql<EventRow>`select * from events where event_id = ${eventId}`.execute(db);
        return rows[0] ? toRecorded(rows[0]) : null;
      }),

    readEvents: (eventIds, options = {}) =>
      translate(async () => {
        const ids = [...new Set(eventIds.filter((id) => UUID.test(id)).map((id) => id.toLowerCase()))];
        if (ids.length === 0) return [];
        const rawBody = options.omitMetadata?.includes('rawBody') ? sql`null::text` : sql`e.raw_body`;
        // One statement for the whole page: `= any` over the unique index.
        const { rows } = await sql<EventRow>`
          select e.seq, e.stream_id, e.revision, e.event_id, e.type, e.data, e.metadata, ${rawBody} as raw_body, e.recorded_at
          from events e where e.event_id = any(${ids}::uuid[])`.execute(db);
        const byId = new Map(rows.map((row) => [row.event_id, toRecorded(row)]));
        return ids.flatMap((id) => byId.get(id) ?? []);
      }),

    subscribe(options: SubscribeOptions): Subscription {
      return followLog({
        options,
        read: (after, maxCount) =>
          readAll(db, { after, maxCount, ...(options.filter ? { filter: options.filter } : {}), ...(options.omitMetadata ? { omitMetadata: options.omitMetadata } : {}) }),
        waitForNews: (signal) =>
          new Promise<void>((resolve) => {
            const timer = setTimeout(done, pollIntervalMs);
            function done() {
              clearTimeout(timer);
              waiters.delete(done);
              signal.removeEventListener('abort', done);
              resolve();
            }
            waiters.add(done);
            signal.addEventListener('abort', done, { once: true });
          }),
      });
    },

    countAfter: (after, filter) =>
      translate(async () => {
        const from = after === null ? { major: 0n, minor: 0n } : decodePosition(after);
        const { rows } = await sql<{ n: string }>`
          select count(*) as n from events e where e.seq > ${from.minor.toString()}::bigint ${filterSql(filter)}`.execute(db);
        return BigInt(rows[0]?.n ?? 0);
      }),

    ping: () =>
      translate(async () => {
        await sql`select 1`.execute(db);
      }),

    close: async () => {
      announce();
    },
  };
}

/**
 * A group of single-event "no stream" appends in ONE statement (its own transaction): take the append lock, insert
 * what is new, commit. One round trip per group; the answers are decided from what came back.
 */
async function insertGroup(db: Kysely<any>, group: readonly PendingAppend[]): Promise<(AppendResult | Error)[]> {
  // One JSON parameter for the whole group: the driver escapes arrays element by element in JavaScript, which cost
  // more than the insert itself; JSON.stringify is native.
  const rows = group.map((p) => ({
    stream_id: p.streamId,
    event_id: p.event.eventId,
    type: p.event.type,
    data: p.event.data,
    metadata: withoutRawBody(p.event.metadata),
    raw_body: rawBodyOf(p.event.metadata),
  }));
  // The lock CTE calls a volatile function, so it is evaluated once, before the first row reaches the insert.
  const inserted = await sql<{ event_id: string; seq: string }>`
    with append_lock as (select pg_advisory_xact_lock(${APPEND_LOCK.toString()}::bigint))
    insert into events (stream_id, revision, event_id, type, data, metadata, raw_body)
    select g.stream_id, 0, g.event_id, g.type, g.data, g.metadata, g.raw_body
    from append_lock, json_to_recordset(${JSON.stringify(rows)}::json)
      as g(stream_id text, event_id uuid, type text, data json, metadata json, raw_body text)
    on conflict do nothing
    returning event_id, seq`.execute(db);
  const fresh = new Map(inserted.rows.map((r) => [r.event_id, r]));
  const missed = group.filter((p) => !fresh.has(p.event.eventId));
  // Read after the commit, so rows this group just inserted are seen too.
  const stored =
    missed.length === 0
      ? []
      : (
          await sql<{ stream_id: string; event_id: string; revision: string }>`
            select stream_id, event_id, revision from events
            where event_id = any(${missed.map((p) => p.event.eventId)}::uuid[])
               or stream_id = any(${missed.map((p) => p.streamId)}::text[])`.execute(db)
        ).rows;
  return group.map((pending): AppendResult | Error => {
    const row = fresh.get(pending.event.eventId);
    if (row) {
      fresh.delete(pending.event.eventId); // later callers in this group with the same id are repeats
      return { status: 'appended', nextRevision: 0n, position: positionOf(row.seq) };
    }
    const sameId = stored.find((r) => r.event_id === pending.event.eventId);
    if (sameId && sameId.stream_id !== pending.streamId) return new DuplicateEventId(pending.event.eventId);
    const last = stored
      .filter((r) => r.stream_id === pending.streamId)
      .reduce((max, r) => (BigInt(r.revision) > max ? BigInt(r.revision) : max), 0n);
    if (sameId) return { status: 'already_stored', nextRevision: last };
    return new WrongExpectedVersion(pending.streamId, 'no_stream', last);
  });
}

async function streamRevision(trx: Kysely<any>, streamId: string): Promise<bigint | 'no_stream'> {
  const { rows } = await sql<{ revision: string | null }>`
    select max(revision) as revision from events where stream_id = ${streamId}`.execute(trx);
  const revision = rows[0]?.revision;
  return revision === null || revision === undefined ? 'no_stream' : BigInt(revision);
}

async function storedIds(trx: Kysely<any>, eventIds: readonly string[]): Promise<Map<string, string>> {
  const { rows } = await sql<{ event_id: string; stream_id: string }>`
    select event_id, stream_id from events where event_id = any(${eventIds}::uuid[])`.execute(trx);
  return new Map(rows.map((r) => [r.event_id, r.stream_id]));
}

function alreadyStored(
  streamId: string,
  events: readonly EventToAppend[],
  stored: Map<string, string>,
  current: bigint | 'no_stream',
): AppendResult {
  for (const event of events) {
    const storedIn = stored.get(event.eventId);
    if (storedIn !== undefined && storedIn !== streamId) throw new DuplicateEventId(event.eventId);
    // Part of a batch stored and part not: not a retry of one append, so not idempotent.
    if (storedIn === undefined) throw new DuplicateEventId([...stored.keys()][0]!);
  }
  return { status: 'already_stored', nextRevision: current === 'no_stream' ? -1n : current };
}

function checkExpected(streamId: string, expected: ExpectedRevision, current: bigint | 'no_stream'): void {
  const holds =
    expected === 'any' ||
    (expected === 'no_stream' && current === 'no_stream') ||
    (expected === 'stream_exists' && current !== 'no_stream') ||
    (typeof expected === 'bigint' && current === expected);
  if (!holds) throw new WrongExpectedVersion(streamId, expected, current);
}

async function insertRows(trx: Kysely<any>, streamId: string, events: readonly EventToAppend[], base: bigint) {
  const json = events.map((e, i) => ({
    revision: (base + BigInt(i)).toString(),
    event_id: e.eventId,
    type: e.type,
    data: e.data,
    metadata: withoutRawBody(e.metadata),
    raw_body: rawBodyOf(e.metadata),
  }));
  const { rows } = await sql<{ seq: string }>`
    insert into events (stream_id, revision, event_id, type, data, metadata, raw_body)
    select ${streamId}, g.revision, g.event_id, g.type, g.data, g.metadata, g.raw_body
    from json_to_recordset(${JSON.stringify(json)}::json)
      as g(revision bigint, event_id uuid, type text, data json, metadata json, raw_body text)
    order by g.revision
    returning seq`.execute(trx);
  return rows;
}

async function readAll(db: Kysely<any>, { after, maxCount, filter, omitMetadata }: ReadAllOptions): Promise<ReadAllPage> {
  const from = after === null ? 0n : decodePosition(after).minor;
  const rawBody = omitMetadata?.includes('rawBody') ? sql`null::text` : sql`e.raw_body`;
  // One statement, so the page and the tail (the last sequence of the whole log) come from one snapshot.
  const { rows } = await sql<EventRow & { kind: 'event' | 'tail' }>`
    with page as (
      select e.seq, e.stream_id, e.revision, e.event_id, e.type, e.data, e.metadata, ${rawBody} as raw_body, e.recorded_at
      from events e where e.seq > ${from.toString()}::bigint ${filterSql(filter)}
      order by e.seq limit ${maxCount}
    )
    select 'event' as kind, page.* from page
    union all
    select 'tail', t.seq, t.stream_id, t.revision, t.event_id, t.type, null, null, null, t.recorded_at
    from (select e.* from events e order by e.seq desc limit 1) t where ${filter ? sql`true` : sql`false`}`.execute(db);
  const events = rows.filter((r) => r.kind === 'event').map(toRecorded);
  const isEnd = events.length < maxCount;
  const tail = rows.find((r) => r.kind === 'tail');
  const lastEvent = events[events.length - 1]?.position ?? null;
  // A filtered read that reached the end skips ahead to the log's end: everything below it was read.
  const lastPosition = isEnd && tail ? maxPosition(lastEvent ?? after, positionOf(tail.seq)) : (lastEvent ?? after);
  return { events, lastPosition, isEnd };
}

function maxPosition(a: string | null, b: string): string {
  return a !== null && a > b ? a : b;
}

function filterSql(filter: EventFilter | undefined) {
  if (!filter) return sql``;
  const parts = [];
  if (filter.eventTypes) parts.push(sql`and e.type = any(${[...filter.eventTypes]}::text[])`);
  if (filter.streamPrefixes) {
    const prefixes = filter.streamPrefixes.map((p) => `${p.replace(/[\\%_]/g, (c) => `\\${c}`)}%`);
    parts.push(sql`and e.stream_id like any(${prefixes}::text[])`);
  }
  return sql.join(parts, sql` `);
}

function toRecorded(row: EventRow): RecordedEvent {
  return {
    position: positionOf(row.seq),
    streamId: row.stream_id,
    revision: BigInt(row.revision),
    eventId: row.event_id,
    type: row.type,
    data: row.data,
    // The raw body lives in a column of its own (no JSON escaping of JSON); the port shows it in the metadata.
    metadata: typeof row.raw_body === 'string' ? { ...row.metadata, rawBody: row.raw_body } : row.metadata,
    recordedAt: row.recorded_at instanceof Date ? row.recorded_at : new Date(row.recorded_at),
  };
}

const rawBodyOf = (metadata: JsonObject): string | null => (typeof metadata.rawBody === 'string' ? metadata.rawBody : null);

function withoutRawBody(metadata: JsonObject): JsonObject {
  if (typeof metadata.rawBody !== 'string') return metadata;
  const { rawBody: _raw, ...rest } = metadata;
  return rest;
}

function isUniqueViolation(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === UNIQUE_VIOLATION;
}

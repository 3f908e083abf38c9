import { type RawBuilder, type Selectable, sql } from 'kysely';
import {
  type EventFilter,
  type EventStore,
  type MetadataKeys,
  type ReadAllOptions,
  type ReadAllPage,
  type RecordedEvent,
  type SubscribeOptions,
  type Subscription,
  decodePosition,
} from '../../application/ports/event-store';
import type { JsonObject } from '../../domain/bank-transaction';
import type { EventsTable, WriteSideDb } from '../postgres/tables';
import { followLog } from './follow-log';
import { appendInTransaction, groupCommit, positionOf, translated } from './postgres-appends';

export interface PostgresEventStoreOptions {
  /** Most single-event appends flushed in one transaction (group commit). */
  readonly maxGroupSize?: number;
  /** How often an idle subscription looks for events appended by other processes. */
  readonly pollIntervalMs?: number;
  /** While this process keeps appending, a subscription at the log's end reads it at most once in this many ms. */
  readonly settleMs?: number;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The event store on PostgreSQL (a server, or PGlite embedded): table `events`, appended by postgres-appends.ts
 * (global order, group commit). The attachment is a row of `event_attachments` (same seq), read only when a read asks.
 */
export function createPostgresEventStore(db: WriteSideDb, options: PostgresEventStoreOptions = {}): EventStore {
  const pollIntervalMs = options.pollIntervalMs ?? 250;
  const waiters = new Set<() => void>();
  let appends = 0;
  const announce = () => {
    appends += 1;
    for (const wake of waiters) wake();
    waiters.clear();
  };
  const appendAlone = groupCommit(db, options.maxGroupSize ?? 256, announce);

  return {
    async appendToStream(streamId, events, expectedRevision) {
      if (events.length === 0) throw new Error('appendToStream needs at least one event');
      if (events.length === 1 && expectedRevision === 'no_stream') return appendAlone(streamId, events[0]!);
      const result = await translated(() => appendInTransaction(db, streamId, events, expectedRevision), events[0]!.eventId);
      if (result.status === 'appended') announce();
      return result;
    },

    readStream: (streamId, { fromRevision = 0n, maxCount = 10_000, withAttachments = false } = {}) =>
      translated(async () => {
        const rows = await selectEvents(db, withAttachments)
          .where('e.stream_id', '=', streamId)
          .where('e.revision', '>=', fromRevision.toString())
          .orderBy('e.revision')
          .limit(maxCount)
          .execute();
        return rows.map(toRecorded);
      }),

    readAll: (options) => translated(() => readAll(db, options)),

    readEvent: (eventId, { withAttachments = false } = {}) =>
      translated(async () => {
        if (!UUID.test(eventId)) return null;
        const row = await selectEvents(db, withAttachments).where('e.event_id', '=', eventId).executeTakeFirst();
        return row ? toRecorded(row) : null;
      }),

    readEvents: (eventIds, { withAttachments = false } = {}) =>
      translated(async () => {
        const ids = [...new Set(eventIds.filter((id) => UUID.test(id)).map((id) => id.toLowerCase()))];
        if (ids.length === 0) return [];
        // One statement for the whole page: `= any` over the unique index.
        const rows = await selectEvents(db, withAttachments).where('e.event_id', '=', (eb) => eb.fn.any(eb.val(ids))).execute();
        const byId = new Map(rows.map((row) => [row.event_id, toRecorded(row)]));
        return ids.flatMap((id) => byId.get(id) ?? []);
      }),

    subscribe(subscribeOptions: SubscribeOptions): Subscription {
      const { filter, metadataKeys } = subscribeOptions;
      return followLog({
        options: subscribeOptions,
        read: (after, maxCount) => readAll(db, { after, maxCount, filter, metadataKeys }),
        waitForNews: (signal) => waitForNews(waiters, signal, pollIntervalMs),
        appendsSeen: () => appends,
        settleMs: options.settleMs ?? 0,
      });
    },

    countAfter: (after, filter) =>
      translated(async () => {
        const from = after === null ? 0n : decodePosition(after).minor;
        const { rows } = await sql<{ n: string }>`
          select count(*) as n from events e where e.seq > ${from.toString()}::bigint ${filterSql(filter)}`.execute(db);
        return BigInt(rows[0]?.n ?? 0);
      }),

    ping: () =>
      translated(async () => {
        await sql`select 1`.execute(db);
      }),

    close: async () => {
      announce();
    },
  };
}

/** Resolves when an append of this process committed, the poll interval passed, or the signal aborted. */
function waitForNews(waiters: Set<() => void>, signal: AbortSignal, pollIntervalMs: number): Promise<void> {
  return new Promise<void>((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, pollIntervalMs);
    function done() {
      clearTimeout(timer);
      waiters.delete(done);
      signal.removeEventListener('abort', done);
      resolve();
    }
    waiters.add(done);
    signal.addEventListener('abort', done, { once: true });
  });
}

/** A row as both reads select it: `recorded_at` in epoch milliseconds (RECORDED_MS). */
type EventRow = Omit<Selectable<EventsTable>, 'recorded_at'> & { recorded_at: number; raw_body: string | null };
/** A page's row: an event (its metadata as text when only some keys were asked for) or the log's tail. */
type PageRow = Omit<EventRow, 'metadata'> & { kind: 'event' | 'tail'; metadata: JsonObject | string };

/**
 * The event's attachment (its row of event_attachments) when the read asks, else null: it is the heaviest part of an
 * event, and projections never need it. A subquery, so one index probe for each row the read returns: as a join, a
 * page after a position was planned as a merge join whose side of the attachments started at the first row (the
 * position's bound is not carried over to the other table), fetching every body before the page for each page.
 * A body goes back exactly as it came, a leading byte-order mark included: PGlite decodes text with a TextDecoder
 * that drops one at the start of a value, so the body is selected behind this character and taken off in toRecorded.
 */
const ATTACHMENT_GUARD = '.';
const attachmentSql = (withAttachments: boolean) =>
  withAttachments ? sql<string | null>`(select ${sql.lit(ATTACHMENT_GUARD)} || a.body from event_attachments a where a.seq = e.seq)` : sql<string | null>`null::text`;

/** Every column; the attachment only when asked. */
const selectEvents = (db: WriteSideDb, withAttachments: boolean) =>
  db
    .selectFrom('events as e')
    .select(['e.seq', 'e.stream_id', 'e.revision', 'e.event_id', 'e.type', 'e.data', 'e.metadata'])
    .select(RECORDED_MS.as('recorded_at'))
    .select(attachmentSql(withAttachments).as('raw_body'));

async function readAll(db: WriteSideDb, { after, maxCount, filter, withAttachments = false, metadataKeys }: ReadAllOptions): Promise<ReadAllPage> {
  const from = after === null ? 0n : decodePosition(after).minor;
  // One statement, so the page and the tail (the last sequence of the whole log) come from one snapshot.
  const page = sql<PageRow>`
    with page as (${pageSql(from, maxCount, filter, { withAttachments, metadataKeys })})
    select 'event' as kind, page.* from page
    union all
    select 'tail', t.seq, t.stream_id, t.revision, t.event_id, t.type, null, null, null, null
    from (select e.* from events e order by e.seq desc limit 1) t where ${filter ? sql`true` : sql`false`}`;
  // A read by type is planned without sorting (see pageSql): `set local` needs a transaction of its own. A read of
  // the whole log (export, audit) is one index range in seq order and runs as it is.
  const { rows } = filter?.eventTypes
    ? await db.transaction().execute(async (trx) => {
        await sql`set local enable_sort = off`.execute(trx);
        return page.execute(trx);
      })
    : await page.execute(db);
  const events = rows.filter((r) => r.kind === 'event').map(toRecorded);
  const isEnd = events.length < maxCount;
  const tail = rows.find((r) => r.kind === 'tail');
  const lastEvent = events[events.length - 1]?.position ?? null;
  // A filtered read that reached the end skips ahead to the log's end: everything below it was read.
  const lastPosition = isEnd && tail ? maxPosition(lastEvent ?? after, positionOf(tail.seq)) : (lastEvent ?? after);
  return { events, lastPosition, isEnd };
}

/**
 * The page's events in log order. Filtered by type, it reads each type's run of the (type, seq) index in order and
 * merges them (Merge Append), so a page costs its own rows whatever the statistics say: `type = any(…)` let the
 * planner, before the table was analysed, fetch and sort every event after the position for each page. The shape
 * alone is not enough: without statistics the planner guesses a type's run after the position shorter than a page,
 * and still fetches the whole run (bitmap scan) and sorts it, for every page (380 ms a page of 5 000 with 50 000
 * events behind, spilling to disk), so readAll plans it with sorting disabled: each run is then read in index order.
 */
function pageSql(
  from: bigint,
  maxCount: number,
  filter: EventFilter | undefined,
  { withAttachments, metadataKeys }: { withAttachments: boolean; metadataKeys: MetadataKeys | undefined },
) {
  const select = (where: RawBuilder<unknown>) => sql`
    select e.seq, e.stream_id, e.revision, e.event_id, e.type, e.data, ${metadataSql(metadataKeys)} as metadata, ${attachmentSql(withAttachments)} as raw_body, ${RECORDED_MS} as recorded_at
    from events e where e.seq > ${from.toString()}::bigint ${where} ${prefixSql(filter)}
    order by e.seq limit ${maxCount}`;
  const types = filter?.eventTypes;
  if (types === undefined) return select(sql``);
  if (types.length === 0) return select(sql`and false`);
  const runs = [...new Set(types)].map((type) => sql`(${select(sql`and e.type = ${type}`)})`);
  return sql`select * from (${sql.join(runs, sql` union all `)}) p order by seq limit ${maxCount}`;
}

/**
 * The metadata with only the keys asked for (ReadAllOptions.metadataKeys), each as stored and absent where absent
 * (`->` gives SQL null only for a missing key, and a null member drops out of `concat_ws`; a JSON null stays one),
 * as the text of a JSON object that toRecorded parses: node-postgres parses every row's JSON, and a projection reads
 * one key of the five an ingested event carries. One `->` a key and text concatenation: the jsonb form (a `case`
 * that looked the key up twice, `jsonb_build_object`, `||`, then jsonb's output) cost PostgreSQL ~4 µs an event
 * more, a third of a replay page's time.
 */
function metadataSql(keys: MetadataKeys | undefined) {
  if (keys === undefined) return sql`e.metadata`;
  const members = [...new Set(keys)].map((key) => sql`${`${JSON.stringify(key)}:`}::text || (e.metadata -> ${key}::text)::text`);
  return members.length === 0 ? sql`'{}'::text` : sql`'{' || concat_ws(',', ${sql.join(members)}) || '}'`;
}

/**
 * `recorded_at` as milliseconds since the epoch (what a Date holds: the microseconds cut off, as node-postgres does):
 * a number costs nothing to parse, where each timestamptz went through a regular expression into a Date.
 * `extract(epoch …)` is numeric arithmetic (~0.5 µs of backend CPU an event, an eighth of a page read); `date_part`
 * is a double (the microseconds over 10^6, rounded once), and times 10^6 it is within half a microsecond of the
 * stored integer while the instant is within 2^32 seconds of 1970, so rounding gives that integer back; its
 * thousandth is then floored exactly (a fraction k/1000 is never within a double's step of the next integer).
 * Outside 1900–2100 the numeric form as before.
 */
const RECORDED_MS = sql<number>`case
  when e.recorded_at >= timestamptz '1900-01-01 00:00:00+00' and e.recorded_at < timestamptz '2100-01-01 00:00:00+00'
    then floor(round(date_part('epoch', e.recorded_at) * 1000000) / 1000)
  else floor(extract(epoch from e.recorded_at) * 1000)::float8 end`;

function maxPosition(a: string | null, b: string): string {
  return a !== null && a > b ? a : b;
}

function filterSql(filter: EventFilter | undefined) {
  if (!filter) return sql``;
  const parts = [];
  if (filter.eventTypes) parts.push(sql`and e.type = any(${[...filter.eventTypes]}::text[])`);
  parts.push(prefixSql(filter));
  return sql.join(parts, sql` `);
}

function prefixSql(filter: EventFilter | undefined) {
  if (!filter?.streamPrefixes) return sql``;
  const prefixes = filter.streamPrefixes.map((p) => `${p.replace(/[\\%_]/g, (c) => `\\${c}`)}%`);
  return sql`and e.stream_id like any(${prefixes}::text[])`;
}

/** With metadataKeys the metadata comes as the text of a JSON object (metadataSql), parsed here. */
function toRecorded(row: Omit<EventRow, 'metadata'> & { metadata: JsonObject | string }): RecordedEvent {
  const event: RecordedEvent = {
    position: positionOf(row.seq),
    streamId: row.stream_id,
    revision: BigInt(row.revision),
    eventId: row.event_id,
    type: row.type,
    data: row.data,
    metadata: typeof row.metadata === 'string' ? (JSON.parse(row.metadata) as JsonObject) : row.metadata,
    recordedAt: new Date(row.recorded_at),
  };
  return typeof row.raw_body === 'string' ? { ...event, attachment: row.raw_body.slice(ATTACHMENT_GUARD.length) } : event;
}

/**
 * Appends to the PostgreSQL event log. Ordering: a bigserial is handed out at insert time but becomes visible at
 * commit, so a reader trusting it alone could pass a slow transaction's events for ever. Every appending transaction
 * therefore takes one transaction-scoped advisory lock before it inserts: appends commit one after another, in
 * sequence order, and a reader that has seen sequence n has seen everything below it. (A fence on the oldest running
 * transaction id also works, but it is cluster-wide: any long transaction in any database on the server would hold
 * every reader back.) Group commit keeps the serialisation cheap: one lock per group, not per event.
 */
import { CompiledQuery, type Kysely, sql } from 'kysely';
import {
  type AppendResult,
  DuplicateEventId,
  type EventToAppend,
  EventRejected,
  EventStoreUnavailable,
  type ExpectedRevision,
  WrongExpectedVersion,
  encodePosition,
} from '../../application/ports/event-store';
import { driverPoolOf } from '../postgres/database';
import { isDataError, isUnavailableError } from '../postgres/errors';
import type { WriteSideDb, WriteSideTables } from '../postgres/tables';

/** The key of the advisory lock that serialises appends (any stable 64-bit number; 'ledgerev' in ASCII). */
export const APPEND_LOCK = 0x6c65646765726576n;
const UNIQUE_VIOLATION = '23505';
/** The sequence behind `events.seq` (a bigserial: migration 0001). */
const EVENTS_SEQUENCE = 'events_seq_seq';
/** A second group waits at the append lock while the first commits, so no round trip is lost between groups. */
const MAX_FLUSHES_IN_FLIGHT = 2;

export const positionOf = (seq: string) => encodePosition(0n, BigInt(seq));

/** Port errors for driver errors: unreachable → EventStoreUnavailable; content refused (of `eventId`) → EventRejected. */
export async function translated<T>(work: () => Promise<T>, eventId?: string): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (isUnavailableError(error)) throw new EventStoreUnavailable('event store unreachable', { cause: error });
    if (eventId !== undefined && isDataError(error)) throw new EventRejected(eventId, (error as Error).message, { cause: error });
    throw error;
  }
}

interface PendingAppend {
  readonly streamId: string;
  readonly event: EventToAppend;
  /** The row's parameters (data and metadata as JSON text), written when the append is queued. */
  readonly row: readonly (string | null)[];
  readonly resolve: (result: AppendResult) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Concurrent single-event "no stream" appends (one webhook each) grouped into one INSERT and one commit; each
 * caller's promise resolves only after that commit. `appended` is called after every commit that wrote something.
 */
export function groupCommit(db: WriteSideDb, maxGroupSize: number, appended: () => void) {
  let queue: PendingAppend[] = [];
  let flushing = 0;

  async function flush(): Promise<void> {
    if (flushing >= MAX_FLUSHES_IN_FLIGHT || queue.length === 0) return;
    flushing += 1;
    const group = queue.slice(0, maxGroupSize);
    queue = queue.slice(group.length);
    try {
      const only = group.length === 1 ? group[0]!.event.eventId : undefined;
      settle(group, await translated(() => insertGroup(db, group), only));
      appended();
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
        settle([pending], await translated(() => insertGroup(db, [pending]), pending.event.eventId));
        appended();
      } catch (error) {
        pending.reject(error);
      }
    }
  }

  return (streamId: string, event: EventToAppend): Promise<AppendResult> =>
    new Promise<AppendResult>((resolve, reject) => {
      const row = groupRowOf(streamId, event);
      const refusal = unstorable(row);
      if (refusal !== null) return reject(new EventRejected(event.eventId, refusal));
      queue.push({ streamId, event, row, resolve, reject });
      void flush();
    });
}

function settle(group: readonly PendingAppend[], results: readonly (AppendResult | Error)[]): void {
  group.forEach((pending, i) => {
    const result = results[i];
    if (result instanceof Error) pending.reject(result);
    else if (result) pending.resolve(result);
  });
}

/** One row of an insert, as the JSON parameter carries it: the attachment goes to event_attachments. */
const rowOf = (e: EventToAppend) => ({ event_id: e.eventId, type: e.type, data: e.data, metadata: e.metadata, raw_body: e.attachment ?? null });

/** A group row's parameters, in the order of GROUP_COLUMNS. JSON.stringify is native and runs as the append is queued. */
const groupRowOf = (streamId: string, e: EventToAppend): (string | null)[] => [
  streamId,
  e.eventId,
  e.type,
  JSON.stringify(e.data),
  JSON.stringify(e.metadata),
  e.attachment ?? null,
];
const GROUP_COLUMNS = ['text', 'uuid', 'text', 'json', 'json', 'text'] as const;

/** `\u0000` or `\ud800`–`\udfff` as JSON.stringify writes them: an escape is preceded by an odd run of backslashes. */
const UNSTORABLE_ESCAPE = /(?:^|[^\\])(?:\\\\)*\\u(?:0000|d[89a-f])/i;

/**
 * Why PostgreSQL cannot hold this row, decided before it joins a group; null when it can. Its text columns refuse
 * U+0000 themselves (SQLSTATE 22021), but a text parameter with half a surrogate pair would reach the server as
 * U+FFFD (the driver encodes UTF-8), and a `json` parameter keeps `\u0000` and half pairs as written, where the
 * read side's `->>` and jsonb would later fail on them: both are refused here, as they were when the rows went
 * through `json_to_recordset` (which unescapes every string).
 */
function unstorable(row: readonly (string | null)[]): string | null {
  for (const [column, value] of row.entries()) {
    if (value === null) continue;
    if (GROUP_COLUMNS[column] === 'json') {
      if (value.includes('\\u') && UNSTORABLE_ESCAPE.test(value)) return 'U+0000 or half a surrogate pair in a JSON string';
    } else if (!value.isWellFormed()) {
      return 'half a surrogate pair in text';
    }
  }
  return null;
}
const NO_ROW: readonly null[] = GROUP_COLUMNS.map(() => null);

/**
 * The group insert for up to `slots` rows: a multi-row VALUES with one parameter per column and row. It is
 * prepared once per connection, size and form (PreparingClient); a group fills the next size up with rows of nulls,
 * which the `where` drops, so a connection holds a few sizes, not one statement per group size. Measured on this
 * server, 64 rows of the webhook path: 4–5 ms a group against 9–15 ms with the rows in one JSON parameter, which
 * PostgreSQL parsed (raw body included) before inserting, and less CPU in Node too (`bench/group-insert.ts`).
 *
 * Two forms: a plain insert, tried first, and the same insert `on conflict do nothing`, used only when the plain one
 * met a row already stored (a retry from Cas, or one delivery twice in the group). `on conflict` inserts each row
 * speculatively (the unique indexes probed first, the row confirmed after): in five alternated runs of 64-row groups
 * the server's backend used 40–53 µs a row against 35–40 for the plain insert (equal once), and each group's round
 * trip was 0.2–0.3 ms shorter (`npx tsx bench/group-conflict.ts 300`).
 */
export function groupInsertText(slots: number, onConflict: boolean): string {
  const key = onConflict ? -slots : slots;
  let text = groupTexts.get(key);
  if (text === undefined) {
    const rows = Array.from({ length: slots }, (_, row) => `(${GROUP_COLUMNS.map((type, column) => `$${2 + row * GROUP_COLUMNS.length + column}::${type}`).join(', ')}, ${row})`);
    const values = `(values ${rows.join(', ')}) as g(stream_id, event_id, type, data, metadata, raw_body, ord)`;
    // The lock CTE calls a volatile function, so it is evaluated once, before the first row reaches an insert.
    text = onConflict ? onConflictInsert(values) : plainInsert(values);
    groupTexts.set(key, text);
  }
  return text;
}
const groupTexts = new Map<number, string>();

/**
 * The plain form: each row's seq is taken in `g`, joined to the lock's row so that no seq is handed out before the
 * lock is held (a join emits, and its target list calls nextval, only once both sides have a row), and both inserts
 * read `g`, so nothing is returned by the events insert or joined back by event id. A group alone on one connection
 * (`npx tsx bench/group-insert.ts 32 2000 6 "seq in g,plain VALUES"`, two runs): 10–20 % less backend CPU a row
 * than with the attachments joined to what the insert returned. Padding rows (no event id) are dropped before a seq
 * is taken.
 */
const plainInsert = (values: string) => `with append_lock as (select pg_advisory_xact_lock($1::bigint)),
    g as materialized (
      select nextval('${EVENTS_SEQUENCE}') as seq, g.* from append_lock, ${values} where g.event_id is not null),
    inserted as (
      insert into events (seq, stream_id, revision, event_id, type, data, metadata)
      select g.seq, g.stream_id, 0, g.event_id, g.type, g.data, g.metadata from g),
    attached as (insert into event_attachments (seq, body) select g.seq, g.raw_body from g where g.raw_body is not null)
    select event_id, seq from g`;

/**
 * The on-conflict form may meet one event id twice in the group: the first delivery alone is inserted, so the
 * attachment joined back by event id is the body of the very row that was stored. The attachments are inserted from
 * what the events insert returned: one row per stored event that has a body.
 */
const onConflictInsert = (values: string) => `with append_lock as (select pg_advisory_xact_lock($1::bigint)),
    g as materialized (
      select * from (select distinct on (g.event_id) g.* from ${values} where g.event_id is not null order by g.event_id, g.ord) d
      order by d.ord),
    inserted as (
      insert into events (stream_id, revision, event_id, type, data, metadata)
      select g.stream_id, 0, g.event_id, g.type, g.data, g.metadata
      from append_lock, g
      on conflict do nothing
      returning event_id, seq),
    attached as (
      insert into event_attachments (seq, body)
      select i.seq, g.raw_body from inserted i join g on g.event_id = i.event_id where g.raw_body is not null)
    select event_id, seq from inserted`;

/** Sizes a group is padded to: exact up to 4, then multiples of 8 up to 64, then of 32 (at most 18 sizes up to 256). */
export const groupSlots = (size: number): number => (size <= 4 ? size : size <= 64 ? Math.ceil(size / 8) * 8 : Math.ceil(size / 32) * 32);

/** The group statement's parameters: the lock's key, each row's (groupRowOf), then rows of nulls up to `slots`. */
export function groupParameters(rows: readonly (readonly (string | null)[])[], slots: number): unknown[] {
  const parameters: unknown[] = [APPEND_LOCK.toString()];
  for (const row of rows) parameters.push(...row);
  for (let i = rows.length; i < slots; i++) parameters.push(...NO_ROW);
  return parameters;
}

/**
 * A group of single-event "no stream" appends in ONE statement (its own transaction): take the append lock, insert
 * what is new, commit. One round trip per group; the answers are decided from what came back.
 */
async function insertGroup(db: WriteSideDb, group: readonly PendingAppend[]): Promise<(AppendResult | Error)[]> {
  const slots = groupSlots(group.length);
  const parameters = groupParameters(group.map((pending) => pending.row), slots);
  // On a server the statement goes to the driver's pool itself (the same pool, connections and prepared statements
  // as kysely's): kysely's executor around it cost ~10 µs of the web process a webhook at 1 500 webhooks/s.
  const pool = driverPoolOf(db);
  const insert = (onConflict: boolean): Promise<{ rows: { event_id: string; seq: string }[] }> =>
    pool
      ? pool.query<{ event_id: string; seq: string }>(groupInsertText(slots, onConflict), parameters)
      : db.executeQuery<{ event_id: string; seq: string }>(CompiledQuery.raw(groupInsertText(slots, onConflict), parameters));
  // A row already stored fails the plain insert (its own transaction, so nothing of it stays); the group is then
  // inserted again, skipping what is stored, and the answers below are decided as always.
  const inserted = await insert(false).catch((error: unknown) => {
    if (isUniqueViolation(error)) return insert(true);
    throw error;
  });
  const fresh = new Map(inserted.rows.map((r) => [r.event_id, r]));
  // A member is decided from the stored rows unless it is the one whose row this insert returned: the first
  // member with its id. A later member with the same id (one delivery twice in the group) is a repeat of it.
  const firstWithId = new Map<string, PendingAppend>();
  for (const pending of group) if (!firstWithId.has(pending.event.eventId)) firstWithId.set(pending.event.eventId, pending);
  const insertedFor = (pending: PendingAppend) => firstWithId.get(pending.event.eventId) === pending ? fresh.get(pending.event.eventId) : undefined;
  const missed = group.filter((p) => insertedFor(p) === undefined);
  // Read after the commit, so rows this group just inserted are seen too.
  const stored =
    missed.length === 0
      ? []
      : await db
          .selectFrom('events')
          .select(['stream_id', 'event_id', 'revision'])
          .where((eb) =>
            eb.or([
              eb('event_id', '=', eb.fn.any(eb.val(missed.map((p) => p.event.eventId)))),
              eb('stream_id', '=', eb.fn.any(eb.val(missed.map((p) => p.streamId)))),
            ]),
          )
          .execute();
  return group.map((pending): AppendResult | Error => {
    const row = insertedFor(pending);
    if (row) return { status: 'appended', nextRevision: 0n, position: positionOf(row.seq) };
    const sameId = stored.find((r) => r.event_id === pending.event.eventId);
    if (sameId && sameId.stream_id !== pending.streamId) return new DuplicateEventId(pending.event.eventId);
    const last = stored
      .filter((r) => r.stream_id === pending.streamId)
      .reduce((max, r) => (BigInt(r.revision) > max ? BigInt(r.revision) : max), 0n);
    if (sameId) return { status: 'already_stored', nextRevision: last };
    return new WrongExpectedVersion(pending.streamId, 'no_stream', last);
  });
}

/** Any other append (several events, or an expected revision other than "no stream"): its own transaction. */
export async function appendInTransaction(
  db: WriteSideDb,
  streamId: string,
  events: readonly EventToAppend[],
  expected: ExpectedRevision,
): Promise<AppendResult> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await db.transaction().execute(async (trx) => {
        await sql`select pg_advisory_xact_lock(${APPEND_LOCK.toString()}::bigint)`.execute(trx);
        const current = await streamRevision(trx, streamId);
        const stored = await storedIds(trx, events.map((e) => e.eventId));
        if (stored.size > 0) return alreadyStored(streamId, events, stored, current);
        checkExpected(streamId, expected, current);
        const base = current === 'no_stream' ? 0n : current + 1n;
        const rows = await insertRows(trx, streamId, events, base);
        const last = rows[rows.length - 1]!;
        return { status: 'appended', nextRevision: base + BigInt(events.length) - 1n, position: positionOf(last.seq) } satisfies AppendResult;
      });
    } catch (error) {
      // A concurrent writer took the revision or the id between our read and our insert: decide again.
      if (isUniqueViolation(error) && attempt < 5) continue;
      throw error;
    }
  }
}

async function streamRevision(trx: Kysely<WriteSideTables>, streamId: string): Promise<bigint | 'no_stream'> {
  const row = await trx
    .selectFrom('events')
    .select((eb) => eb.fn.max('revision').as('revision'))
    .where('stream_id', '=', streamId)
    .executeTakeFirst();
  return row?.revision === null || row?.revision === undefined ? 'no_stream' : BigInt(row.revision);
}

async function storedIds(trx: Kysely<WriteSideTables>, eventIds: readonly string[]): Promise<Map<string, string>> {
  const rows = await trx
    .selectFrom('events')
    .select(['event_id', 'stream_id'])
    .where('event_id', '=', (eb) => eb.fn.any(eb.val([...eventIds])))
    .execute();
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

async function insertRows(trx: Kysely<WriteSideTables>, streamId: string, events: readonly EventToAppend[], base: bigint) {
  const json = events.map((e, i) => ({ revision: (base + BigInt(i)).toString(), ...rowOf(e) }));
  // The attachments in the same statement, joined back to the stored events by revision (unique in the batch).
  const { rows } = await sql<{ seq: string }>`
    with g as materialized (
      select * from json_to_recordset(${JSON.stringify(json)}::json)
        as g(revision bigint, event_id uuid, type text, data json, metadata json, raw_body text)),
    inserted as (
      insert into events (stream_id, revision, event_id, type, data, metadata)
      select ${streamId}, g.revision, g.event_id, g.type, g.data, g.metadata from g
      order by g.revision
      returning seq, revision),
    attached as (
      insert into event_attachments (seq, body)
      select i.seq, g.raw_body from inserted i join g on g.revision = i.revision where g.raw_body is not null)
    select seq from inserted order by seq`.execute(trx);
  return rows;
}

function isUniqueViolation(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === UNIQUE_VIOLATION;
}

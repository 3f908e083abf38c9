import { type QueryExecutorProvider, type RawBuilder, sql, type Transaction } from 'kysely';
import { type EventStore, EventStoreUnavailable, type RecordedEvent } from '../application/ports/event-store';
import type { Projection, WarmApply } from '../projections/projection';
import { type ReadModel, readModelIn } from '../projections/read-model';
import { copiesFromStdin } from './postgres/database';
import { isUnavailableError } from './postgres/errors';
import type { WriteSideDb, WriteSideTables } from './postgres/tables';

/** The checkpoint moved under a runner (a rebuild swapped the schema, or another runner): start again from it. */
export class Resync extends Error {
  override readonly name = 'Resync';
}

export async function readCheckpoint(db: WriteSideDb, schema: string, name: string) {
  const row = await readModelIn(db, schema)
    .db.selectFrom('checkpoint')
    .select(['position', 'events', 'version'])
    .where('projection', '=', name)
    .executeTakeFirst();
  return { position: row?.position ?? null, events: BigInt(row?.events ?? 0), version: row?.version ?? null };
}

/**
 * Failures after which the same batch is simply tried again later, from the same position: the store unreachable,
 * a serialization failure or deadlock, a lock not available, resources exhausted, an I/O error. Anything else is
 * taken to be the batch's own doing and leads to finding and parking the event that causes it.
 */
export function isTransientError(error: unknown): boolean {
  if (error instanceof Resync || error instanceof EventStoreUnavailable || isUnavailableError(error)) return true;
  const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  return typeof code === 'string' && (code === '40001' || code === '40P01' || code === '55P03' || /^5[38]/.test(code));
}

/** How a caller wants events that fail on their own treated. */
export interface Parking {
  /** Failures of an event, isolated from its batch, before it is parked (the runner: a few, with backoff between). */
  readonly triesBeforeParking: number;
  /** Failures so far by event id, kept by the caller across retries of a batch. */
  readonly failures: Map<string, { tries: number; firstAt: Date }>;
  readonly now: () => Date;
}

/** Rebuild and verify park at the first isolated failure: the live runner has already given the event its tries. */
export const parkAtOnce = (now: () => Date = () => new Date()): Parking => ({ triesBeforeParking: 1, failures: new Map(), now });

/** An event failed on its own but has not had all its tries: the batch is rolled back and tried again later. */
export class EventFailing extends Error {
  override readonly name = 'EventFailing';
  constructor(
    readonly eventId: string,
    readonly tries: number,
    cause: unknown,
  ) {
    super(`event ${eventId} failed on its own (try ${tries}): ${messageOf(cause)}`, { cause });
  }
}

export interface ParkedFailure {
  readonly event: RecordedEvent;
  readonly error: string;
}

export interface BatchOutcome {
  readonly applied: number;
  readonly parked: readonly ParkedFailure[];
}

export interface BatchOptions {
  readonly parking?: Parking;
  readonly warm?: Warm;
  /**
   * False for a schema nobody reads until it is swapped in (a rebuild's, verify's scratch): the commit does not wait
   * for its WAL to reach disk. A crash loses the last batches with their checkpoint (never one without the other),
   * and the swap's own commit, which waits, makes everything before it durable.
   */
  readonly durable?: boolean;
}

/**
 * One batch: lock the checkpoint row, check nobody moved it, apply, advance it; all in one transaction.
 * When applying fails for any reason but a transient one, the batch is applied again in pieces under savepoints
 * until the events that fail on their own are found; once such an event has failed `triesBeforeParking` times it is
 * parked (recorded in the schema's `parked_events`) and the rest of the batch commits with the checkpoint.
 */
export async function commitBatch(
  db: WriteSideDb,
  projection: Projection,
  schema: string,
  expected: string | null,
  events: readonly RecordedEvent[],
  last: string,
  { parking = parkAtOnce(), warm, durable = true }: BatchOptions = {},
): Promise<BatchOutcome> {
  const copy = copiesFromStdin(db);
  /** The batch's transaction as a read model: COPY where the server takes it, the WAL wait only where it is read. */
  const begin = async (trx: Transaction<WriteSideTables>): Promise<ReadModel> => {
    if (!durable) await sql`set local synchronous_commit = off`.execute(trx);
    return readModelIn(trx, schema, { copy });
  };
  try {
    const written = await db.transaction().execute(async (trx) => {
      const rm = await begin(trx);
      const { version } = await lockCheckpoint(rm, projection, expected);
      // Someone else wrote the schema since this writer's last batch (a retry, a rebuild's swap, another runner).
      if (warm && warm.version !== version) warm.memory.forget();
      if (events.length > 0) await (warm ? warm.memory.apply(rm, events) : projection.apply(rm, events));
      return advanceCheckpoint(rm, projection, last, events.length);
    });
    if (warm) warm.version = written;
    for (const event of events) parking.failures.delete(event.eventId);
    return { applied: events.length, parked: [] };
  } catch (error) {
    // Rolled back (or perhaps not committed): what the memory learnt in it may not be in the tables.
    if (warm) forgetWarm(warm);
    if (events.length === 0 || isTransientError(error)) throw error;
  }
  // Events are isolated cold: the memory stays empty until the next batch.
  return db.transaction().execute(async (trx) => {
    const rm = await begin(trx);
    await lockCheckpoint(rm, projection, expected);
    const failed = await applyIsolating(rm, projection, events);
    const now = parking.now();
    const counted = failed.map(({ event, error }) => {
      const seen = parking.failures.get(event.eventId) ?? { tries: 0, firstAt: now };
      seen.tries += 1;
      parking.failures.set(event.eventId, seen);
      return { event, error: messageOf(error), cause: error, tries: seen.tries, firstAt: seen.firstAt, at: now };
    });
    const early = counted.find((f) => f.tries < parking.triesBeforeParking);
    if (early) throw new EventFailing(early.event.eventId, early.tries, early.cause);
    await parkEvents(rm, projection, counted);
    const parked = counted.map(({ event, error }) => ({ event, error }));
    for (const event of events) parking.failures.delete(event.eventId);
    await advanceCheckpoint(rm, projection, last, events.length - failed.length);
    return { applied: events.length - failed.length, parked };
  });
}

/**
 * The checkpoint row's version: the id of the transaction that last wrote it (`xmin`). Whatever writes a schema
 * writes its checkpoint row in the same transaction (a batch moves it, a retry touches it, a rebuild's swap brings a
 * row of its own), so a writer that finds the version its own last batch left knows nobody else wrote in between.
 */
const ROW_VERSION = sql<string>`xmin::text`;

async function lockCheckpoint({ db }: ReadModel, projection: Projection, expected: string | null | undefined) {
  const row = await db
    .selectFrom('checkpoint')
    .select(['position', ROW_VERSION.as('version')])
    .where('projection', '=', projection.name)
    .forUpdate()
    .executeTakeFirst();
  const position = row?.position ?? null;
  if (expected !== undefined && position !== expected) throw new Resync(`checkpoint of ${projection.name} moved`);
  return { position, version: row?.version ?? null };
}

async function advanceCheckpoint({ db }: ReadModel, projection: Projection, last: string, applied: number): Promise<string | null> {
  const row = await db
    .updateTable('checkpoint')
    .set((eb) => ({ position: last, events: eb('events', '+', applied.toString()), updated_at: sql<Date>`now()` }))
    .where('projection', '=', projection.name)
    .returning(ROW_VERSION.as('version'))
    .executeTakeFirst();
  return row?.version ?? null;
}

/** Takes the checkpoint row lock without moving it: whoever else writes the schema (the runner) waits meanwhile. */
export const holdCheckpoint = async (rm: ReadModel, projection: Projection): Promise<string | null> =>
  (await lockCheckpoint(rm, projection, undefined)).position;

/** Writes the checkpoint row without moving it: its version changes (see ROW_VERSION). */
async function touchCheckpoint({ db }: ReadModel, projection: Projection): Promise<void> {
  await db.updateTable('checkpoint').set({ updated_at: sql<Date>`now()` }).where('projection', '=', projection.name).execute();
}

/**
 * A writer's memory between its batches (Projection.warm) and the checkpoint row's version its last committed batch
 * left; commitBatch forgets the memory when the version differs or a batch fails.
 */
export interface Warm {
  readonly memory: WarmApply;
  version: string | null;
}

/** A fresh memory for one writer (one runner session, one replay), when the projection keeps one. */
export const warmOf = (projection: Projection): Warm | undefined => (projection.warm ? { memory: projection.warm(), version: null } : undefined);

function forgetWarm(warm: Warm): void {
  warm.memory.forget();
  warm.version = null;
}

/**
 * Applies events in log order, a group at a time under a savepoint; a group that fails is rolled back and split in
 * two until each failure is pinned on one event. Returns the events that fail on their own; every other event is
 * applied. A transient failure is thrown (the caller's transaction then rolls back whole).
 */
export async function applyIsolating(
  rm: ReadModel,
  projection: Projection,
  events: readonly RecordedEvent[],
): Promise<{ event: RecordedEvent; error: unknown }[]> {
  const failed: { event: RecordedEvent; error: unknown }[] = [];
  const attempt = async (group: readonly RecordedEvent[]): Promise<void> => {
    if (group.length === 0) return;
    await sql`savepoint isolate`.execute(rm.db);
    try {
      await projection.apply(rm, group);
      await sql`release savepoint isolate`.execute(rm.db);
      return;
    } catch (error) {
      await sql`rollback to savepoint isolate`.execute(rm.db);
      await sql`release savepoint isolate`.execute(rm.db);
      if (isTransientError(error)) throw error;
      if (group.length === 1) {
        failed.push({ event: group[0]!, error });
        return;
      }
    }
    const half = Math.ceil(group.length / 2);
    await attempt(group.slice(0, half));
    await attempt(group.slice(half));
  };
  await attempt(events);
  return failed;
}

/** Records events that cannot be applied; an event parked already keeps its row (replaying a batch changes nothing). */
export async function parkEvents(
  rm: ReadModel,
  projection: Projection,
  parked: readonly { event: RecordedEvent; error: string; tries: number; firstAt: Date; at: Date }[],
): Promise<void> {
  if (parked.length === 0) return;
  const rows = parked.map(({ event, error, tries, firstAt, at }) => {
    const { subject, transactionDate } = subjectOf(projection, event);
    return {
      event_id: storable(event.eventId),
      log_position: event.position,
      event_type: storable(event.type),
      stream_id: storable(event.streamId),
      subject: subject === null ? null : storable(subject),
      transaction_date: transactionDate,
      error: storable(error).slice(0, 4000),
      tries,
      first_failed_at: firstAt.toISOString(),
      last_failed_at: at.toISOString(),
    };
  });
  await rm.db
    .insertInto('parked_events')
    .values(rows)
    .onConflict((oc) => oc.column('event_id').doNothing())
    .execute();
  await touchSubjects(rm, projection, rows.map((r) => r.subject));
}

/**
 * What these subjects' readers see changed outside the projection's batches (events of theirs parked, or retried),
 * in the caller's transaction: the projection marks them (Projection.touch: the statements' versions), and the
 * checkpoint row is touched without moving, so that a warm writer forgets what it remembers (see ROW_VERSION).
 */
export async function touchSubjects(rm: ReadModel, projection: Projection, subjects: readonly (string | null)[]): Promise<void> {
  await touchCheckpoint(rm, projection);
  const touched = [...new Set(subjects.filter((s) => s !== null))];
  if (touched.length > 0) await projection.touch?.(rm, touched);
}

/** What the projection can tell about an event, never failing: the event may be the very one that does not decode. */
export function subjectOf(projection: Projection, event: RecordedEvent): { subject: string | null; transactionDate: string | null } {
  try {
    return projection.subjectOf(event);
  } catch {
    return { subject: null, transactionDate: null };
  }
}

/** Text PostgreSQL can store: no NUL, no unpaired surrogate (the event that failed may hold either). */
export const storable = (text: string): string =>
  text.replaceAll('\u0000', '\\u0000').replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD');

export const messageOf = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/**
 * Creates a projection's schema. `queryIndexes: false` leaves out the indexes only readers need, for a schema that is
 * bulk-loaded first (a rebuild then builds them with `createQueryIndexes`) or never read (verify's scratch schema).
 */
export async function createProjectionSchema(db: WriteSideDb, projection: Projection, schema: string, { queryIndexes = true } = {}): Promise<void> {
  await db.transaction().execute((trx) => createSchemaIn(readModelIn(trx, schema), projection, { queryIndexes }));
}

/**
 * Builds the indexes a schema created without `queryIndexes` lacks, two at a time on two connections (a build sorts on
 * one core; two keep both busy, where one build's parallel workers did not), each with room to sort in memory.
 */
export async function createQueryIndexes(db: WriteSideDb, projection: Projection, schema: string): Promise<void> {
  const pending = [...(projection.queryIndexes?.(schema) ?? [])];
  const builder = async () => {
    for (let index = pending.shift(); index !== undefined; index = pending.shift()) await buildIndex(db, index);
  };
  const built = await Promise.allSettled([builder(), builder()]);
  const failed = built.find((b) => b.status === 'rejected');
  if (failed) throw failed.reason;
}

async function buildIndex(db: WriteSideDb, index: RawBuilder<unknown>): Promise<void> {
  await db.transaction().execute(async (trx) => {
    await sql`set local maintenance_work_mem = '128MB'`.execute(trx);
    await sql`set local max_parallel_maintenance_workers = 0`.execute(trx);
    await index.execute(trx);
  });
}

async function createSchemaIn(rm: ReadModel, projection: Projection, { queryIndexes }: { queryIndexes: boolean }): Promise<void> {
  await projection.createSchema(rm);
  if (queryIndexes) for (const index of projection.queryIndexes?.(rm.schema) ?? []) await index.execute(rm.db);
  await sql`
    create table ${rm.table('checkpoint')} (
      projection text primary key, version integer not null, position text, events bigint not null default 0,
      updated_at timestamptz not null default now()
    )`.execute(rm.db);
  await rm.db.insertInto('checkpoint').values({ projection: projection.name, version: projection.version }).execute();
  await createParkedTable(rm);
}

/**
 * Events the projection could not apply, in the projection's own schema, so that a rebuild parks the same events
 * again and verify compares them like any read table. Only what is parked now: a retry that applies an event
 * deletes its row (the write-side table `parked_event_retries` keeps the history).
 */
async function createParkedTable({ db, schema, table }: ReadModel): Promise<void> {
  await sql`
    create table if not exists ${table('parked_events')} (
      event_id text primary key,
      log_position text not null,
      event_type text not null,
      stream_id text not null,
      subject text,
      transaction_date text,
      error text not null,
      tries integer not null,
      first_failed_at timestamptz not null,
      last_failed_at timestamptz not null
    )`.execute(db);
  await sql`create index if not exists parked_events_subject on ${sql.id(schema)}.parked_events (subject)`.execute(db);
}

export async function countParked(db: WriteSideDb, schema: string): Promise<number> {
  const row = await readModelIn(db, schema)
    .db.selectFrom('parked_events')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .executeTakeFirst();
  return Number(row?.n ?? 0);
}

/** Compared by verify: what was parked, never when or how often it was tried (nor the error text, which may name the schema). */
export const PARKED_TABLE = {
  name: 'parked_events',
  key: ['event_id'],
  volatile: ['error', 'tries', 'first_failed_at', 'last_failed_at'],
} as const;

/**
 * Creates the projection's schema unless it exists. Safe when several processes start at once: they queue on an
 * advisory lock keyed by the schema's name and look again once they hold it.
 */
export async function ensureProjectionSchema(db: WriteSideDb, projection: Projection, schema: string): Promise<void> {
  if ((await schemaExists(db, schema)) && (await tableExists(db, schema, 'parked_events'))) return;
  await db.transaction().execute(async (trx) => {
    await sql`select pg_advisory_xact_lock(hashtext(${`balance-ledger:schema:${schema}`}))`.execute(trx);
    // A schema made before parking existed gets its table here, so that every process can read it at once.
    if (await schemaExists(trx, schema)) return createParkedTable(readModelIn(trx, schema));
    await createSchemaIn(readModelIn(trx, schema), projection, { queryIndexes: true });
  });
}

async function tableExists(db: QueryExecutorProvider, schema: string, table: string): Promise<boolean> {
  const { rows } = await sql`select 1 from information_schema.tables where table_schema = ${schema} and table_name = ${table}`.execute(db);
  return rows.length > 0;
}

export async function schemaExists(db: QueryExecutorProvider, schema: string): Promise<boolean> {
  const { rows } = await sql`select 1 from information_schema.schemata where schema_name = ${schema}`.execute(db);
  return rows.length > 0;
}


/**
 * Resolves once no event of the projection's types lies after `position()` — the runner's own position, or the
 * committed checkpoint wherever the runner runs.
 */
export async function waitForProjection(
  eventStore: EventStore,
  projection: Projection,
  position: () => Promise<string | null>,
  { timeoutMs, pollMs }: { timeoutMs: number; pollMs: number },
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const next = await eventStore.readAll({ after: await position(), maxCount: 1, filter: { eventTypes: projection.eventTypes } });
    if (next.events.length === 0) return;
    if (Date.now() > deadline) throw new Error(`projection ${projection.name} did not catch up in ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

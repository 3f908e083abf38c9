import type { Selectable } from 'kysely';
import type { EventStore } from '../application/ports/event-store';
import { type Page, pageOf } from '../projections/paging';
import type { RecordedEvent } from '../domain/recorded-event';
import type { Projection } from '../projections/projection';
import { type ReadModel, readModelIn } from '../projections/read-model';
import type { ParkedEventsTable } from '../projections/tables';
import { copiesFromStdin } from './postgres/database';
import type { WriteSideDb } from './postgres/tables';
import { applyIsolating, holdCheckpoint, messageOf, parkEvents, schemaExists, storable, touchSubjects } from './projection-store';

/** An event a projection could not apply, set aside so that the projection goes on (projection-store.ts). */
export interface ParkedEvent {
  readonly projection: string;
  readonly eventId: string;
  readonly position: string;
  readonly type: string;
  readonly streamId: string;
  /** The account id (ledger) or grant id (grants) it concerns, when its data tells. */
  readonly subject: string | null;
  readonly transactionDate: string | null;
  readonly error: string;
  readonly tries: number;
  readonly firstFailedAt: Date;
  readonly lastFailedAt: Date;
}

export interface RetryOutcome {
  readonly projection: string;
  readonly eventId: string;
  readonly outcome: 'applied' | 'failed_again';
  /** Why it failed again (null when applied). */
  readonly error: string | null;
  readonly tries: number;
}

export interface ParkedEventsDeps {
  readonly db: WriteSideDb;
  readonly eventStore: EventStore;
  readonly projections: readonly Projection[];
  readonly now: () => Date;
}

export interface ParkedEvents {
  /** Every projection's parked events (or one projection's), by projection name then log position. */
  list(options: { projection?: string | undefined; after?: readonly string[] | null; limit: number }): Promise<Page<ParkedEvent>>;
  /**
   * Applies parked events again (all of a projection's, or one): each one applied leaves its row (its history goes to
   * `parked_event_retries`); one that fails again stays parked with the new error. Null for an unknown projection.
   */
  retry(projection: string, eventId?: string | null): Promise<RetryOutcome[] | null>;
}

type ParkedRow = Selectable<ParkedEventsTable>;

/** Events re-applied per savepoint while a retry re-derives a subject. */
const REPLAY_CHUNK = 1000;

/** The parked events of every projection, for the CLI (`ledger parked`) and the operators' HTTP routes alike. */
export function createParkedEvents(deps: ParkedEventsDeps): ParkedEvents {
  const { db, eventStore, now } = deps;
  const projections = [...deps.projections].sort((a, b) => a.name.localeCompare(b.name));

  async function list({ projection, after = null, limit }: Parameters<ParkedEvents['list']>[0]): Promise<Page<ParkedEvent>> {
    const rows: (ParkedRow & { projection: string })[] = [];
    for (const p of projections) {
      if ((projection !== undefined && p.name !== projection) || (after && p.name < after[0]!)) continue;
      if (!(await schemaExists(db, p.name))) continue;
      const mine = await readModelIn(db, p.name)
        .db.selectFrom('parked_events')
        .selectAll()
        .$if(after !== null && after[0] === p.name, (q) =>
          q.where((eb) => eb(eb.refTuple('log_position', 'event_id'), '>', eb.tuple(after![1]!, after![2]!))),
        )
        .orderBy('log_position')
        .orderBy('event_id')
        .limit(limit + 1 - rows.length)
        .execute();
      rows.push(...mine.map((r) => ({ ...r, projection: p.name })));
      if (rows.length > limit) break;
    }
    return pageOf(rows, limit, (r) => viewOf(r.projection, r), (r) => [r.projection, r.log_position, r.event_id]);
  }

  /**
   * Retrying re-derives what the parked events concern, in log order, as a replay of the log would: the projection
   * forgets its rows for their subjects (an account, a grant), and every event that built them is applied again
   * together with the retried ones, by log position. Applying a late event on top instead would be right for the
   * ledger's lines and balances (a function of the set of transactions) but not for what depends on arrival (late
   * flags, the history of breaks), nor for the grants fold (it skips an event older than the one it has folded).
   * The checkpoint row is held meanwhile, so the runner waits and never sees half of it.
   */
  async function retryIn(projection: Projection, eventId: string | null): Promise<RetryOutcome[]> {
    if (!(await schemaExists(db, projection.name))) return [];
    return db.transaction().execute(async (trx) => {
      const rm = readModelIn(trx, projection.name, { copy: copiesFromStdin(db) });
      const checkpoint = await holdCheckpoint(rm, projection);
      const parked = await rm.db
        .selectFrom('parked_events')
        .selectAll()
        .$if(eventId !== null, (q) => q.where('event_id', '=', eventId!))
        .orderBy('log_position')
        .forUpdate()
        .execute();
      if (parked.length === 0 || checkpoint === null) return [];
      const { order, loaded } = await replayOrder(eventStore, rm, projection, parked, checkpoint);
      const failures = await replay(eventStore, rm, projection, order, loaded);
      const at = now();
      const outcomes: RetryOutcome[] = [];
      for (const row of parked) {
        const error = loaded.has(row.event_id) ? failures.get(row.event_id)?.error : new Error('the event is no longer in the log');
        outcomes.push(await recordRetry(trx, rm, projection, row, error, at));
      }
      // An event that applied before but fails once the retried ones are in is parked as a replay would park it.
      const retried = new Set(parked.map((r) => r.event_id));
      const newlyFailing = [...failures.values()].filter(({ event }) => !retried.has(event.eventId));
      await parkEvents(rm, projection, newlyFailing.map(({ event, error }) => ({ event, error: messageOf(error), tries: 1, firstAt: at, at })));
      // The retried events' subjects were written behind the runner's back (rows again, or parked rows gone).
      await touchSubjects(rm, projection, parked.map((r) => r.subject));
      return outcomes;
    });
  }

  return {
    list,
    async retry(name, eventId = null) {
      const projection = projections.find((p) => p.name === name);
      return projection ? retryIn(projection, eventId) : null;
    },
  };
}

/**
 * The events to apply again, in log order up to the checkpoint (what lies beyond is the runner's): the retried
 * ones and every event that built their subjects' rows (which the projection forgets here), less the events
 * still parked and not retried now (they stay set aside, as a replay would leave them).
 */
async function replayOrder(eventStore: EventStore, rm: ReadModel, projection: Projection, parked: readonly ParkedRow[], checkpoint: string) {
  const retried = await eventStore.readEvents(parked.map((r) => r.event_id));
  const retriedIds = parked.map((r) => r.event_id);
  const subjects = [...new Set(parked.flatMap((r) => (r.subject === null ? [] : [r.subject])))];
  const history = subjects.length > 0 ? await projection.forget(rm, subjects, retried) : { events: [], streams: [] };
  const others = await rm.db
    .selectFrom('parked_events')
    .select('event_id')
    .where((eb) => eb.not(eb('event_id', '=', eb.fn.any(eb.val(retriedIds)))))
    .execute();
  const setAside = new Set(others.map((r) => r.event_id));
  const loaded = new Map<string, RecordedEvent>(retried.map((e) => [e.eventId, e]));
  for (const stream of history.streams) {
    for (const event of await eventStore.readStream(stream)) {
      if (projection.eventTypes.includes(event.type)) loaded.set(event.eventId, event);
    }
  }
  const refs = new Map<string, string>(history.events.map((e) => [e.eventId, e.position]));
  for (const event of loaded.values()) refs.set(event.eventId, event.position);
  const order = [...refs]
    .filter(([id, position]) => !setAside.has(id) && position <= checkpoint)
    .sort((a, b) => (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0))
    .map(([id]) => id);
  return { order, loaded };
}

/** Applies the events in order, a chunk per savepoint, with the same isolation as a batch; the failures by event id. */
async function replay(
  eventStore: EventStore,
  rm: ReadModel,
  projection: Projection,
  order: readonly string[],
  loaded: ReadonlyMap<string, RecordedEvent>,
) {
  const failures = new Map<string, { event: RecordedEvent; error: unknown }>();
  for (let i = 0; i < order.length; i += REPLAY_CHUNK) {
    const ids = order.slice(i, i + REPLAY_CHUNK);
    const missing = ids.filter((id) => !loaded.has(id));
    const read = missing.length > 0 ? await eventStore.readEvents(missing) : [];
    const byId = new Map<string, RecordedEvent>(read.map((e) => [e.eventId, e]));
    const events = ids.flatMap((id) => loaded.get(id) ?? byId.get(id) ?? []);
    for (const failure of await applyIsolating(rm, projection, events)) failures.set(failure.event.eventId, failure);
  }
  return failures;
}

/** Applied: its row goes. Failing again: it stays, with the new error and one more try. Either way the history keeps it. */
async function recordRetry(
  db: WriteSideDb,
  rm: ReadModel,
  projection: Projection,
  row: ParkedRow,
  error: unknown,
  at: Date,
): Promise<RetryOutcome> {
  const outcome: RetryOutcome = {
    projection: projection.name,
    eventId: row.event_id,
    outcome: error === undefined ? 'applied' : 'failed_again',
    error: error === undefined ? null : storable(messageOf(error)).slice(0, 4000),
    tries: row.tries + 1,
  };
  if (outcome.outcome === 'applied') {
    await rm.db.deleteFrom('parked_events').where('event_id', '=', row.event_id).execute();
  } else {
    await rm.db
      .updateTable('parked_events')
      .set((eb) => ({ error: outcome.error!, tries: eb('tries', '+', 1), last_failed_at: at }))
      .where('event_id', '=', row.event_id)
      .execute();
  }
  await db
    .insertInto('parked_event_retries')
    .values({
      projection: projection.name,
      event_id: row.event_id,
      log_position: row.log_position,
      event_type: row.event_type,
      subject: row.subject,
      parked_error: row.error,
      tries: outcome.tries,
      first_failed_at: row.first_failed_at,
      retried_at: at,
      outcome: outcome.outcome,
      error: outcome.error,
    })
    .execute();
  return outcome;
}

const viewOf = (projection: string, r: ParkedRow): ParkedEvent => ({
  projection,
  eventId: r.event_id,
  position: r.log_position,
  type: r.event_type,
  streamId: r.stream_id,
  subject: r.subject,
  transactionDate: r.transaction_date,
  error: r.error,
  tries: r.tries,
  firstFailedAt: new Date(r.first_failed_at),
  lastFailedAt: new Date(r.last_failed_at),
});

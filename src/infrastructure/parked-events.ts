import { type Kysely, sql } from 'kysely';
import type { EventStore } from '../application/ports/event-store';
import { type Page, pageOf } from '../projections/paging';
import type { Projection, ProjectionEvent } from '../projections/projection';
import { applyIsolating, holdCheckpoint, messageOf, parkEvents, schemaExists, storable } from './projection-store';

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
  readonly db: Kysely<any>;
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

interface ParkedRow {
  event_id: string;
  log_position: string;
  event_type: string;
  stream_id: string;
  subject: string | null;
  transaction_date: string | null;
  error: string;
  tries: number;
  first_failed_at: Date;
  last_failed_at: Date;
}

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
      const from = after && after[0] === p.name ? sql`where (log_position, event_id) > (${after[1]!}, ${after[2]!})` : sql``;
      const { rows: mine } = await sql<ParkedRow>`
        select * from ${sql.id(p.name)}.parked_events ${from}
        order by log_position, event_id limit ${limit + 1 - rows.length}`.execute(db);
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
    const schema = projection.name;
    if (!(await schemaExists(db, schema))) return [];
    return db.transaction().execute(async (trx) => {
      const checkpoint = await holdCheckpoint(trx, projection, schema);
      const { rows: parked } = await sql<ParkedRow>`
        select * from ${sql.id(schema)}.parked_events ${eventId === null ? sql`` : sql`where event_id = ${eventId}`}
        order by log_position for update`.execute(trx);
      if (parked.length === 0 || checkpoint === null) return [];
      const retried: ProjectionEvent[] = await eventStore.readEvents(parked.map((r) => r.event_id), { omitMetadata: ['rawBody'] });
      const retriedIds = new Set(parked.map((r) => r.event_id));
      const subjects = [...new Set(parked.flatMap((r) => (r.subject === null ? [] : [r.subject])))];
      const history = subjects.length > 0 ? await projection.forget(trx, schema, subjects, retried) : { events: [], streams: [] };
      // Events parked but not retried now stay set aside, as a replay would leave them.
      const { rows: others } = await sql<{ event_id: string }>`
        select event_id from ${sql.id(schema)}.parked_events where not (event_id = any(${[...retriedIds]}::text[]))`.execute(trx);
      const setAside = new Set(others.map((r) => r.event_id));
      const loaded = new Map<string, ProjectionEvent>(retried.map((e) => [e.eventId, e]));
      for (const stream of history.streams) {
        for (const event of await eventStore.readStream(stream)) {
          if (projection.eventTypes.includes(event.type)) loaded.set(event.eventId, event);
        }
      }
      const refs = new Map<string, string>(history.events.map((e) => [e.eventId, e.position]));
      for (const event of loaded.values()) refs.set(event.eventId, event.position);
      // Never past the checkpoint: what lies beyond is the runner's to apply.
      const order = [...refs]
        .filter(([id, position]) => !setAside.has(id) && position <= checkpoint)
        .sort((a, b) => (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0))
        .map(([id]) => id);
      const failures = new Map<string, { event: ProjectionEvent; error: unknown }>();
      for (let i = 0; i < order.length; i += REPLAY_CHUNK) {
        const ids = order.slice(i, i + REPLAY_CHUNK);
        const missing = ids.filter((id) => !loaded.has(id));
        const read = missing.length > 0 ? await eventStore.readEvents(missing, { omitMetadata: ['rawBody'] }) : [];
        const byId = new Map<string, ProjectionEvent>(read.map((e) => [e.eventId, e]));
        const events = ids.flatMap((id) => loaded.get(id) ?? byId.get(id) ?? []);
        for (const failure of await applyIsolating(trx, projection, schema, events)) failures.set(failure.event.eventId, failure);
      }
      const at = now();
      const outcomes: RetryOutcome[] = [];
      for (const row of parked) {
        const found = loaded.has(row.event_id);
        const error = found ? failures.get(row.event_id)?.error : new Error('the event is no longer in the log');
        const outcome: RetryOutcome = {
          projection: projection.name,
          eventId: row.event_id,
          outcome: error === undefined ? 'applied' : 'failed_again',
          error: error === undefined ? null : storable(messageOf(error)).slice(0, 4000),
          tries: row.tries + 1,
        };
        if (outcome.outcome === 'applied') {
          await sql`delete from ${sql.id(schema)}.parked_events where event_id = ${row.event_id}`.execute(trx);
        } else {
          await sql`
            update ${sql.id(schema)}.parked_events set error = ${outcome.error}, tries = tries + 1, last_failed_at = ${at}
            where event_id = ${row.event_id}`.execute(trx);
        }
        await sql`
          insert into parked_event_retries (projection, event_id, log_position, event_type, subject, parked_error, tries,
                                            first_failed_at, retried_at, outcome, error)
          values (${projection.name}, ${row.event_id}, ${row.log_position}, ${row.event_type}, ${row.subject}, ${row.error},
                  ${outcome.tries}, ${row.first_failed_at}, ${at}, ${outcome.outcome}, ${outcome.error})`.execute(trx);
        outcomes.push(outcome);
      }
      // An event that applied before but fails once the retried ones are in is parked as a replay would park it.
      const newlyFailing = [...failures.values()].filter(({ event }) => !retriedIds.has(event.eventId));
      await parkEvents(trx, projection, schema, newlyFailing.map(({ event, error }) => ({ event, error: messageOf(error), tries: 1, firstAt: at, at })));
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

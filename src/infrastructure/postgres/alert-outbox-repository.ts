import { type Selectable, sql } from 'kysely';
import type { Alert } from '../../application/alerts';
import type { AlertOutbox, AlertRecord, AlertStatus } from '../../application/ports/alert-outbox';
import { fromMicros, micros, type Page, pageOf } from '../../projections/paging';
import type { AlertsTable, WriteSideDb } from './tables';

/** A subject the detector watches, and what it last saw of it (write-side table `alert_observations`). */
export interface Observation {
  readonly subject: string;
  readonly state: string;
}

export interface AlertOutboxRepository extends AlertOutbox {
  /** Like `raise`, and in the same transaction records what the detector now knows of the alerts' subjects. */
  raiseObserving(alerts: readonly Alert[], observations: readonly Observation[], now: Date): Promise<Alert[]>;
  observe(observations: readonly Observation[], now: Date): Promise<void>;
  forget(subjects: readonly string[]): Promise<void>;
  observations(prefix: string): Promise<Map<string, { state: string; observedAt: Date }>>;
  /** Pending alerts whose next attempt is due, the longest waiting first. */
  due(now: Date, limit: number): Promise<AlertRecord[]>;
  delivered(alertId: string, now: Date): Promise<void>;
  /** A failed attempt: tried again at `nextAttemptAt`, or given up (`failed`) when that is null. */
  attemptFailed(alertId: string, now: Date, error: string, nextAttemptAt: Date | null): Promise<void>;
  list(query: { status?: AlertStatus | undefined; after: readonly string[] | null; limit: number }): Promise<Page<AlertRecord>>;
}

type AlertRow = Selectable<AlertsTable>;

const recordOf = (r: AlertRow): AlertRecord => ({
  alertId: r.alert_id,
  kind: r.kind,
  status: r.status,
  alert: r.alert,
  createdAt: r.created_at,
  attempts: r.attempts,
  nextAttemptAt: r.next_attempt_at,
  lastAttemptAt: r.last_attempt_at,
  lastError: r.last_error,
  deliveredAt: r.delivered_at,
});

/** The write-side tables `alerts` and `alert_observations` (migration 0006). */
export function createAlertOutboxRepository(db: WriteSideDb): AlertOutboxRepository {
  // Many rows, one JSON parameter: one statement text whatever the count (prepared once per connection).
  const insert = async (trx: WriteSideDb, alerts: readonly Alert[], now: Date): Promise<Alert[]> => {
    if (alerts.length === 0) return [];
    const rows = alerts.map((a) => ({ alert_id: a.alertId, kind: a.kind, alert: a }));
    const { rows: inserted } = await sql<Pick<AlertRow, 'alert_id'>>`
      insert into alerts (alert_id, kind, alert, status, created_at, next_attempt_at)
      select r.alert_id, r.kind, r.alert, 'pending', ${now}, ${now}
      from json_to_recordset(${JSON.stringify(rows)}::json) as r(alert_id text, kind text, alert jsonb)
      on conflict (alert_id) do nothing
      returning alert_id`.execute(trx);
    const recorded = new Set(inserted.map((r) => r.alert_id));
    return alerts.filter((a) => recorded.has(a.alertId));
  };
  const upsertObservations = async (trx: WriteSideDb, observations: readonly Observation[], now: Date) => {
    if (observations.length === 0) return;
    await sql`
      insert into alert_observations (subject, state, observed_at)
      select o.subject, o.state, ${now} from json_to_recordset(${JSON.stringify(observations)}::json) as o(subject text, state text)
      on conflict (subject) do update set state = excluded.state, observed_at = excluded.observed_at
      where alert_observations.state is distinct from excluded.state`.execute(trx);
  };

  return {
    raise: (alerts, now) => insert(db, alerts, now),
    raiseObserving: (alerts, observations, now) =>
      db.transaction().execute(async (trx) => {
        const recorded = await insert(trx, alerts, now);
        await upsertObservations(trx, observations, now);
        return recorded;
      }),
    observe: (observations, now) => upsertObservations(db, observations, now),
    async forget(subjects) {
      if (subjects.length > 0) await db.deleteFrom('alert_observations').where('subject', '=', (eb) => eb.fn.any(eb.val([...subjects]))).execute();
    },
    async observations(prefix) {
      const rows = await db
        .selectFrom('alert_observations')
        .select(['subject', 'state', 'observed_at'])
        .where((eb) => eb.fn<boolean>('starts_with', ['subject', eb.val(prefix)]))
        .execute();
      return new Map(rows.map((r) => [r.subject, { state: r.state, observedAt: r.observed_at }]));
    },
    async due(now, limit) {
      const rows = await db
        .selectFrom('alerts')
        .selectAll()
        .where('status', '=', 'pending')
        .where('next_attempt_at', '<=', now)
        .orderBy('next_attempt_at')
        .orderBy('created_at')
        .orderBy('alert_id')
        .limit(limit)
        .execute();
      return rows.map(recordOf);
    },
    async delivered(alertId, now) {
      await db
        .updateTable('alerts')
        .set((eb) => ({
          status: 'delivered',
          attempts: eb('attempts', '+', 1),
          last_attempt_at: now,
          delivered_at: now,
          next_attempt_at: null,
          last_error: null,
        }))
        .where('alert_id', '=', alertId)
        .where('status', '=', 'pending')
        .execute();
    },
    async attemptFailed(alertId, now, error, nextAttemptAt) {
      await db
        .updateTable('alerts')
        .set((eb) => ({
          attempts: eb('attempts', '+', 1),
          last_attempt_at: now,
          last_error: error.slice(0, 2000),
          next_attempt_at: nextAttemptAt,
          status: nextAttemptAt === null ? 'failed' : 'pending',
        }))
        .where('alert_id', '=', alertId)
        .where('status', '=', 'pending')
        .execute();
    },
    async list({ status, after, limit }) {
      // Keyset on (created_at, alert_id), served by an index; the cursor's instant is whole microseconds, exact.
      const rows = await db
        .selectFrom('alerts')
        .selectAll()
        .select(micros(sql`created_at`).as('key_micros'))
        .$if(status !== undefined, (q) => q.where('status', '=', status!))
        .$if(after !== null, (q) => q.where((eb) => eb(eb.refTuple('created_at', 'alert_id'), '>', eb.tuple(fromMicros(after![0]!), after![1]!))))
        .orderBy('created_at')
        .orderBy('alert_id')
        .limit(limit + 1)
        .execute();
      return pageOf(rows, limit, recordOf, (r) => [r.key_micros, r.alert_id]);
    },
  };
}

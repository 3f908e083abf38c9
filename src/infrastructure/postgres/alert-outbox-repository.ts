import { type Kysely, sql } from 'kysely';
import type { Alert, AlertKind } from '../../application/alerts';
import type { AlertOutbox, AlertRecord, AlertStatus } from '../../application/ports/alert-outbox';
import { fromMicros, micros, type Page, pageOf } from '../../projections/paging';

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

interface AlertRow {
  alert_id: string;
  kind: AlertKind;
  alert: Alert;
  status: AlertStatus;
  created_at: Date;
  attempts: number;
  next_attempt_at: Date | null;
  last_attempt_at: Date | null;
  last_error: string | null;
  delivered_at: Date | null;
}

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

export function createAlertOutboxRepository(db: Kysely<any>): AlertOutboxRepository {
  const insert = async (trx: Kysely<any>, alerts: readonly Alert[], now: Date): Promise<Alert[]> => {
    if (alerts.length === 0) return [];
    const rows = alerts.map((a) => ({ alert_id: a.alertId, kind: a.kind, alert: a }));
    const { rows: inserted } = await sql<{ alert_id: string }>`
      insert into alerts (alert_id, kind, alert, status, created_at, next_attempt_at)
      select r.alert_id, r.kind, r.alert, 'pending', ${now}, ${now}
      from json_to_recordset(${JSON.stringify(rows)}::json) as r(alert_id text, kind text, alert jsonb)
      on conflict (alert_id) do nothing
      returning alert_id`.execute(trx);
    const recorded = new Set(inserted.map((r) => r.alert_id));
    return alerts.filter((a) => recorded.has(a.alertId));
  };
  const upsertObservations = async (trx: Kysely<any>, observations: readonly Observation[], now: Date) => {
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
      if (subjects.length > 0) await sql`delete from alert_observations where subject = any(${[...subjects]}::text[])`.execute(db);
    },
    async observations(prefix) {
      const { rows } = await sql<{ subject: string; state: string; observed_at: Date }>`
        select subject, state, observed_at from alert_observations where starts_with(subject, ${prefix})`.execute(db);
      return new Map(rows.map((r) => [r.subject, { state: r.state, observedAt: r.observed_at }]));
    },
    async due(now, limit) {
      const { rows } = await sql<AlertRow>`
        select * from alerts where status = 'pending' and next_attempt_at <= ${now}
        order by next_attempt_at, created_at, alert_id limit ${limit}`.execute(db);
      return rows.map(recordOf);
    },
    async delivered(alertId, now) {
      await sql`
        update alerts set status = 'delivered', attempts = attempts + 1, last_attempt_at = ${now}, delivered_at = ${now},
          next_attempt_at = null, last_error = null
        where alert_id = ${alertId} and status = 'pending'`.execute(db);
    },
    async attemptFailed(alertId, now, error, nextAttemptAt) {
      await sql`
        update alerts set attempts = attempts + 1, last_attempt_at = ${now}, last_error = ${error.slice(0, 2000)},
          next_attempt_at = ${nextAttemptAt}, status = ${nextAttemptAt === null ? 'failed' : 'pending'}
        where alert_id = ${alertId} and status = 'pending'`.execute(db);
    },
    async list({ status, after, limit }) {
      // Keyset on (created_at, alert_id), served by an index; the cursor's instant is whole microseconds, exact.
      const keyset = after ? sql`and (created_at, alert_id) > (${fromMicros(after[0]!)}, ${after[1]})` : sql``;
      const { rows } = await sql<AlertRow & { key_micros: string }>`
        select *, ${micros(sql`created_at`)} as key_micros from alerts
        where ${status ? sql`status = ${status}` : sql`true`} ${keyset}
        order by created_at, alert_id limit ${limit + 1}`.execute(db);
      return pageOf(rows, limit, recordOf, (r) => [r.key_micros, r.alert_id]);
    },
  };
}

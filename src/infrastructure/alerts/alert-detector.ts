import { type Selectable, sql } from 'kysely';
import {
  type Alert,
  type AlertAccount,
  type BreakFacts,
  breakOpenedAlert,
  breakResolvedAlert,
  conflictAlert,
  eventParkedAlert,
  grantNeedsLoginAlert,
  projectionStalledAlert,
} from '../../application/alerts';
import type { ReadModel } from '../../projections/read-model';
import type { AnomaliesTable, BreaksTable, GrantsTable, ParkedEventsTable } from '../../projections/tables';
import type { AlertOutboxRepository, Observation } from '../postgres/alert-outbox-repository';

/**
 * Finds what deserves an alert by reading the read models and the outbox, never by hooking a projection's
 * transaction: projections stay pure functions of the log, and a rebuild or replay re-creates rows with the same ids,
 * which the outbox already holds. What it costs is latency: a condition is seen at the next pass
 * (ALERT_INTERVAL_SECONDS) after the projection has applied it.
 *
 * Facts (a conflicting repeat, a parked event) are alerted once by their id; states (a break open too long, a
 * projection behind, a grant that needs a login) are alerted when they begin, remembered in `alert_observations`.
 */
export interface DetectorOptions {
  readonly outbox: AlertOutboxRepository;
  /** The read models looked at (their queries also read the write side's `alerts` and `alert_observations`). */
  readonly ledger: ReadModel;
  readonly grants: ReadModel;
  /** A projection's read model by its name (its live schema), for its parked events. */
  readonly readModelOf: (projection: string) => ReadModel;
  /** Each projection's lag and its parked-events schema. */
  readonly projections: () => Promise<readonly ProjectionLag[]>;
  readonly breakAfterSeconds: number;
  readonly lagSeconds: number;
  readonly now: () => Date;
}

export interface ProjectionLag {
  readonly projection: string;
  readonly position: string | null;
  readonly eventsBehind: bigint | null;
  readonly secondsBehind: number;
  readonly lastError: string | null;
}

/** Each pass looks at no more than this many new items of a kind; the rest wait for the next pass. */
const BATCH = 200;
const ENABLED = 'alerts:enabled';

export interface DetectionReport {
  readonly raised: readonly Alert[];
}

export function createAlertDetector(options: DetectorOptions) {
  const { outbox } = options;
  return {
    /** One pass: every kind, each alert recorded once in the outbox; returns those recorded now. */
    async detect(): Promise<DetectionReport> {
      const now = options.now();
      const since = await enabledAt(options, now);
      const raised = [
        ...(await breaks(options, now)),
        ...(await stalls(options, now)),
        ...(await outbox.raise(await parked(options), now)),
        ...(await outbox.raise(await conflicts(options, since), now)),
        ...(await grants(options, now)),
      ];
      return { raised };
    },
  };
}

export type AlertDetector = ReturnType<typeof createAlertDetector>;

/** The first pass ever marks when alerting began: facts older than that are history, not news. */
async function enabledAt({ outbox }: DetectorOptions, now: Date): Promise<Date> {
  const seen = (await outbox.observations(ENABLED)).get(ENABLED);
  if (seen) return seen.observedAt;
  await outbox.observe([{ subject: ENABLED, state: 'since' }], now);
  return (await outbox.observations(ENABLED)).get(ENABLED)?.observedAt ?? now;
}

async function breaks(options: DetectorOptions, now: Date): Promise<Alert[]> {
  const { ledger, outbox } = options;
  const [b, a] = [ledger.table('breaks'), ledger.table('accounts')];
  const cutoff = new Date(now.getTime() - options.breakAfterSeconds * 1000);
  const opened = await sql<BreakRow>`
    select b.*, a.fi_id, a.fi_name, a.account_number from ${b} b join ${a} a on a.account_id = b.account_id
    where b.status = 'open' and b.opened_at <= ${cutoff}
      and not exists (select 1 from alerts x where x.alert_id = 'break_opened:' || b.break_id::text)
    order by b.opened_at, b.break_id limit ${BATCH}`.execute(ledger.db);
  const raised: Alert[] = [];
  for (const row of opened.rows) {
    // The break is watched from now on, so that its resolution is alerted too; both in one transaction.
    raised.push(...(await outbox.raiseObserving([breakOpenedAlert(factsOf(row), now)], [{ subject: `break:${row.break_id}`, state: 'open' }], now)));
  }
  const watched = [...(await outbox.observations('break:')).keys()].map((s) => s.slice('break:'.length));
  if (watched.length === 0) return raised;
  const resolved = await sql<BreakRow>`
    select b.*, a.fi_id, a.fi_name, a.account_number from ${b} b join ${a} a on a.account_id = b.account_id
    where b.break_id = any(${watched}::uuid[]) and b.status = 'resolved'`.execute(ledger.db);
  for (const row of resolved.rows) raised.push(...(await outbox.raise([breakResolvedAlert(factsOf(row))], now)));
  await outbox.forget(resolved.rows.map((r) => `break:${r.break_id}`));
  return raised;
}

async function stalls(options: DetectorOptions, now: Date): Promise<Alert[]> {
  const { outbox } = options;
  const seen = await outbox.observations('projection:');
  const raised: Alert[] = [];
  for (const lag of await options.projections()) {
    const subject = `projection:${lag.projection}`;
    const stalled = lag.secondsBehind > options.lagSeconds;
    const was = seen.get(subject)?.state === 'stalled';
    if (stalled && !was) {
      const alert = projectionStalledAlert({ ...lag, thresholdSeconds: options.lagSeconds }, now);
      raised.push(...(await outbox.raiseObserving([alert], [{ subject, state: 'stalled' }], now)));
    } else if (!stalled && was) {
      await outbox.observe([{ subject, state: 'caught_up' }], now);
    }
  }
  return raised;
}

async function parked(options: DetectorOptions): Promise<Alert[]> {
  const { ledger } = options;
  const alerts: Alert[] = [];
  for (const { projection } of await options.projections()) {
    const own = options.readModelOf(projection);
    const isLedger = projection === ledger.schema;
    const { rows } = await sql<ParkedRow>`
      select e.*, ${isLedger ? sql`a.account_id::text as account_id, a.fi_id, a.fi_name, a.account_number` : sql`null as account_id`}
      from ${own.table('parked_events')} e
      ${isLedger ? sql`left join ${ledger.table('accounts')} a on a.account_id::text = e.subject` : sql``}
      where not exists (select 1 from alerts x where x.alert_id = ${`event_parked:${projection}:`} || e.event_id)
      order by e.log_position limit ${BATCH}`.execute(own.db);
    for (const r of rows) {
      alerts.push(
        eventParkedAlert({
          projection,
          eventId: r.event_id,
          type: r.event_type,
          position: r.log_position,
          error: r.error,
          tries: r.tries,
          firstFailedAt: r.first_failed_at.toISOString(),
          transactionDate: r.transaction_date,
          account: accountOf(r),
          grantId: isLedger ? null : r.subject,
        }),
      );
    }
  }
  return alerts;
}

async function conflicts(options: DetectorOptions, since: Date): Promise<Alert[]> {
  const { ledger } = options;
  const { rows } = await sql<ConflictRow>`
    select an.*, a.fi_id, a.fi_name, a.account_number
    from ${ledger.table('anomalies')} an left join ${ledger.table('accounts')} a on a.account_id = an.account_id
    where an.kind = 'conflict' and an.received_at >= ${since}
      and not exists (select 1 from alerts x where x.alert_id = 'conflict:' || an.anomaly_id::text)
    order by an.received_at, an.anomaly_id limit ${BATCH}`.execute(ledger.db);
  return rows.map((r) =>
    conflictAlert({
      anomalyId: r.anomaly_id,
      account: accountOf(r),
      transactionId: r.transaction_id,
      eventId: r.event_id,
      receivedAt: r.received_at.toISOString(),
      source: r.source,
      details: r.details,
    }),
  );
}

async function grants(options: DetectorOptions, now: Date): Promise<Alert[]> {
  const { grants: readModel, outbox } = options;
  // A grant is watched once it has been seen in trouble; a healthy grant never seen in trouble needs no row.
  const { rows } = await sql<GrantRow>`
    select gr.grant_id, gr.status, gr.fi_id, gr.accounts, gr.last_error, gr.updated_at, gr.last_position, o.state as seen
    from ${readModel.table('grants')} gr left join alert_observations o on o.subject = 'grant:' || gr.grant_id
    where (gr.status in ('login_required', 'error') and o.state is distinct from gr.status)
       or (gr.status not in ('login_required', 'error') and o.state in ('login_required', 'error'))`.execute(readModel.db);
  const raised: Alert[] = [];
  for (const r of rows) {
    const observation: Observation = { subject: `grant:${r.grant_id}`, state: r.status };
    if (r.status !== 'login_required' && r.status !== 'error') {
      await outbox.observe([observation], now);
      continue;
    }
    const alert = grantNeedsLoginAlert({
      grantId: r.grant_id,
      fiId: r.fi_id,
      status: r.status,
      errorCode: r.last_error?.errorCode ?? null,
      errorMessage: r.last_error?.errorMessage ?? null,
      accountNumbers: (r.accounts ?? []).map((a) => a.accountNumber),
      updatedAt: r.updated_at.toISOString(),
      position: r.last_position,
    });
    raised.push(...(await outbox.raiseObserving([alert], [observation], now)));
  }
  return raised;
}

interface AccountColumns {
  account_id: string | null;
  fi_id: string | null;
  fi_name: string | null;
  account_number: string | null;
}

const accountOf = (r: AccountColumns): AlertAccount | undefined =>
  r.account_id && r.fi_id && r.account_number ? { id: r.account_id, fiId: r.fi_id, fiName: r.fi_name, accountNumber: r.account_number } : undefined;

/** The break's columns and its account's (the join fills them). */
type BreakRow = Selectable<BreaksTable> & AccountColumns & { account_id: string };

const factsOf = (r: BreakRow): BreakFacts => ({
  breakId: r.break_id,
  account: { id: r.account_id, fiId: r.fi_id ?? '', fiName: r.fi_name, accountNumber: r.account_number ?? '' },
  afterTransactionId: r.after_transaction_id,
  beforeTransactionId: r.before_transaction_id,
  missingAmount: r.missing_amount,
  openedAt: r.opened_at.toISOString(),
  resolvedAt: r.resolved_at?.toISOString() ?? null,
  resolution: r.resolution,
  resolvedBySource: r.resolved_by_source,
  healAttempts: r.heal_attempts,
  lastHealOutcome: r.last_heal_outcome,
  lastHealDetail: r.last_heal_detail,
});

type ParkedRow = Selectable<ParkedEventsTable> & AccountColumns;

type ConflictRow = Selectable<AnomaliesTable> & AccountColumns & { account_id: string };

type GrantRow = Pick<Selectable<GrantsTable>, 'grant_id' | 'status' | 'fi_id' | 'accounts' | 'last_error' | 'updated_at' | 'last_position'> & {
  seen: string | null;
};

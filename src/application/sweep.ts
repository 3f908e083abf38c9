import type { SweepDay } from '../domain/bank-day';
import { encodeEvent } from '../domain/event-codec';
import { type GrantSweep, type RecoveredTransaction, type SweepCompleted, sweepStreamId } from '../domain/events';
import { sweepRecoveredAlert } from './alerts';
import { type BackfillDeps, backfillGrant } from './backfill-grant';
import { eventIdFor } from './event-ids';
import type { AlertOutbox } from './ports/alert-outbox';
import { BankHubError } from './ports/bankhub';
import { WrongExpectedVersion } from './ports/event-store';
import { GrantSecretUnreadable } from './ports/grant-secrets';

/**
 * The daily sweep: a lost *last* transaction of an account shows no break until the next one arrives, and a lost
 * *first* one never does. So once a day every active grant's yesterday and today are asked of Cas through the
 * backfill path (the grant's rate-limit lane, the webhook's booking rules): what the push channel lost is booked,
 * the rest are duplicates. The report is a `SweepCompleted` event in `sweep-<date>`, appended with expected revision
 * no_stream: a day is swept once, whichever instance gets there.
 */
export interface SweepDeps {
  readonly backfill: BackfillDeps;
  /** The grants to sweep: active ones, with their bank. */
  readonly activeGrants: () => Promise<readonly { grantId: string; fiId: string | null }[]>;
  /** Banks' names for the alert's text (fiId → name), from the ledger's accounts. */
  readonly fiNames?: () => Promise<ReadonlyMap<string, string>>;
  /** Where `sweep_recovered` goes; absent: alerting is off. */
  readonly alerts?: AlertOutbox;
  /** Checked between grants: a shutdown does not wait for the whole sweep (nothing is recorded then). */
  readonly shouldStop?: () => boolean;
}

/** What one sweep found: the data of its SweepCompleted event. */
export type SweepReport = SweepCompleted['data'];

export type SweepOutcome =
  | { readonly status: 'completed'; readonly report: SweepReport }
  /** The day was swept before (its SweepCompleted is in the log): nothing asked of Cas. */
  | { readonly status: 'already_done'; readonly report: SweepReport | null }
  /** Stopped between grants (shutdown): nothing recorded, the day is swept again later. */
  | { readonly status: 'stopped' };

export async function sweepIsDone(deps: Pick<SweepDeps, 'backfill'>, date: string): Promise<SweepReport | null> {
  const [recorded] = await deps.backfill.eventStore.readStream(sweepStreamId(date), { maxCount: 1 });
  return recorded ? (recorded.data as unknown as SweepReport) : null;
}

export async function sweep(deps: SweepDeps, day: SweepDay): Promise<SweepOutcome> {
  const done = await sweepIsDone(deps, day.date);
  if (done) return { status: 'already_done', report: done };
  const startedAt = deps.backfill.now();
  const grants: GrantSweep[] = [];
  const recovered: RecoveredTransaction[] = [];
  for (const grant of await deps.activeGrants()) {
    if (deps.shouldStop?.()) return { status: 'stopped' };
    const failed = (errorCode: string): GrantSweep => ({
      grantId: grant.grantId,
      fiId: grant.fiId,
      outcome: 'failed',
      errorCode,
      fetched: 0,
      accepted: 0,
      duplicates: 0,
      conflicts: 0,
      invalid: 0,
    });
    try {
      const result = await backfillGrant(deps.backfill, { grantId: grant.grantId, from: day.fromDate, to: day.toDate });
      if (!result.ok) {
        grants.push(failed(result.error === 'unknown_grant' ? 'GRANT_NOT_LINKED' : 'INVALID_WINDOW'));
        continue;
      }
      const r = result.value;
      grants.push({
        grantId: grant.grantId,
        fiId: grant.fiId,
        outcome: 'swept',
        errorCode: null,
        fetched: r.fetched,
        accepted: r.accepted,
        duplicates: r.duplicates,
        conflicts: r.conflicts,
        invalid: r.invalid,
      });
      recovered.push(...r.recovered);
    } catch (error) {
      // One grant that Cas refuses (login required, gone) or cannot answer for does not stop the others.
      if (error instanceof BankHubError) grants.push(failed(error.errorCode));
      else if (error instanceof GrantSecretUnreadable) grants.push(failed('GRANT_SECRET_UNREADABLE'));
      else throw error;
    }
  }
  const sum = (field: 'fetched' | 'accepted' | 'duplicates' | 'conflicts' | 'invalid') => grants.reduce((n, g) => n + g[field], 0);
  const report: SweepReport = {
    ...day,
    startedAt: startedAt.toISOString(),
    completedAt: deps.backfill.now().toISOString(),
    grants,
    totals: { fetched: sum('fetched'), accepted: sum('accepted'), duplicates: sum('duplicates'), conflicts: sum('conflicts'), invalid: sum('invalid') },
    recovered,
  };
  // The alert is recorded before the event: a crash in between sweeps the day again, and the alert's id keeps it one.
  if (deps.alerts && report.totals.accepted > 0) {
    const fiNames = (await deps.fiNames?.()) ?? new Map<string, string>();
    await deps.alerts.raise([sweepRecoveredAlert({ ...report, fiNames })], deps.backfill.now());
  }
  const event: SweepCompleted = { type: 'SweepCompleted', data: report };
  try {
    const appended = await deps.backfill.eventStore.appendToStream(
      sweepStreamId(day.date),
      [{ eventId: eventIdFor(`sweep:${day.date}`), ...encodeEvent(event), metadata: { receivedAt: report.completedAt, source: 'sweep' } }],
      'no_stream',
    );
    if (appended.status === 'already_stored') return { status: 'already_done', report: await sweepIsDone(deps, day.date) };
  } catch (error) {
    // Another instance recorded the day first (its lock was lost mid-sweep): the day is swept, once.
    if (error instanceof WrongExpectedVersion) return { status: 'already_done', report: await sweepIsDone(deps, day.date) };
    throw error;
  }
  return { status: 'completed', report };
}

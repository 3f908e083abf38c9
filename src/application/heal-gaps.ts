import { DAY_MS } from '../domain/calendar';
import { encodeEvent } from '../domain/event-codec';
import { healStreamId, type LedgerEvent } from '../domain/events';
import type { BreakToHeal } from '../domain/healing';
import { type BackfillDeps, backfillGrant } from './backfill-grant';
import { eventIdFor } from './event-ids';
import { BankHubError } from './ports/bankhub';
import { GrantSecretUnreadable } from './ports/grant-secrets';

export type { BreakToHeal };

export interface BreakStatus {
  readonly status: 'open' | 'resolved';
  readonly resolution: string | null;
}

export interface HealDeps {
  readonly backfill: BackfillDeps;
  /** Open breaks opened at or before `openedBefore` whose last attempt, if any, was at or before `attemptedBefore`. */
  readonly findBreaksToHeal: (query: { openedBefore: Date; attemptedBefore: Date; limit: number }) => Promise<BreakToHeal[]>;
  /** The grant that linked an account, for accounts whose transactions arrived without one. */
  readonly findGrantOfAccount: (fiId: string, accountNumber: string) => Promise<string | null>;
  /** Resolves once the ledger read model holds every event appended before the call. */
  readonly waitForProjection: () => Promise<void>;
  readonly breakStatuses: (breakIds: readonly string[]) => Promise<ReadonlyMap<string, BreakStatus>>;
  readonly healAfterMs: number;
  readonly maxBreaksPerRun?: number;
  /** Checked between Cas calls: a shutdown does not wait for a whole pass. */
  readonly shouldStop?: () => boolean;
}

export interface HealReport {
  readonly attempted: number;
  readonly closed: number;
  readonly notClosed: number;
  readonly failed: number;
}

type Outcome = { outcome: 'closed' | 'not_closed' | 'failed'; detail: string | null };

/** One Cas call covers several breaks of a grant whose windows lie within this many days. */
const MAX_WINDOW_DAYS = 31;

export async function healGaps(deps: HealDeps): Promise<HealReport> {
  const now = deps.backfill.now();
  // A break not closed by the last attempt waits as long again before the next: Cas is not asked every pass.
  const due = await deps.findBreaksToHeal({
    openedBefore: new Date(now.getTime() - deps.healAfterMs),
    attemptedBefore: new Date(now.getTime() - deps.healAfterMs),
    limit: deps.maxBreaksPerRun ?? 100,
  });
  const report = { attempted: 0, closed: 0, notClosed: 0, failed: 0 };
  const record = async (brk: BreakToHeal, grantId: string | null, window: Window, result: Outcome, counts: Counts) => {
    await appendAttempt(deps, brk, grantId, window, result, counts);
    report.attempted += 1;
    if (result.outcome === 'closed') report.closed += 1;
    else if (result.outcome === 'not_closed') report.notClosed += 1;
    else report.failed += 1;
  };

  const withGrant: { grantId: string; brk: BreakToHeal }[] = [];
  for (const brk of due) {
    const grantId = brk.grantId ?? (await deps.findGrantOfAccount(brk.fiId, brk.accountNumber));
    if (grantId === null) {
      await record(brk, null, brk, { outcome: 'failed', detail: 'NO_GRANT' }, NO_COUNTS);
    } else {
      withGrant.push({ grantId, brk });
    }
  }

  for (const batch of batchesOf(withGrant)) {
    if (deps.shouldStop?.()) break;
    const window = { fromDate: batch.fromDate, toDate: batch.toDate };
    let outcomes: Map<string, Outcome>;
    let counts: Counts = NO_COUNTS;
    try {
      const result = await backfillGrant(deps.backfill, {
        grantId: batch.grantId,
        from: batch.fromDate,
        to: batch.toDate,
        accountNumbers: [...new Set(batch.breaks.map((b) => b.accountNumber))],
      });
      if (!result.ok) {
        const detail = result.error === 'unknown_grant' ? 'GRANT_NOT_LINKED' : 'INVALID_WINDOW';
        outcomes = new Map(batch.breaks.map((b) => [b.breakId, { outcome: 'failed', detail }]));
      } else {
        counts = { fetched: result.value.fetched, accepted: result.value.accepted };
        // The recovered transactions are events like any other: wait until the ledger has projected them.
        await deps.waitForProjection();
        const statuses = await deps.breakStatuses(batch.breaks.map((b) => b.breakId));
        outcomes = new Map(
          batch.breaks.map((b) => {
            const status = statuses.get(b.breakId);
            return [
              b.breakId,
              status?.status === 'resolved'
                ? { outcome: 'closed', detail: status.resolution }
                : { outcome: 'not_closed', detail: `Cas has nothing that fills the gap (${counts.fetched} fetched, ${counts.accepted} new)` },
            ];
          }),
        );
      }
    } catch (error) {
      // Cas could not be asked (down, login required, grant gone): say so on the break, try again later.
      if (error instanceof BankHubError) {
        outcomes = new Map(batch.breaks.map((b) => [b.breakId, { outcome: 'failed', detail: error.errorCode }]));
      } else if (error instanceof GrantSecretUnreadable) {
        outcomes = new Map(batch.breaks.map((b) => [b.breakId, { outcome: 'failed', detail: 'GRANT_SECRET_UNREADABLE' }]));
      } else {
        throw error;
      }
    }
    for (const brk of batch.breaks) {
      await record(brk, batch.grantId, window, outcomes.get(brk.breakId) ?? { outcome: 'failed', detail: null }, counts);
    }
  }
  return report;
}

interface Window {
  readonly fromDate: string;
  readonly toDate: string;
}
interface Counts {
  readonly fetched: number;
  readonly accepted: number;
}
const NO_COUNTS: Counts = { fetched: 0, accepted: 0 };

interface Batch extends Window {
  readonly grantId: string;
  readonly breaks: BreakToHeal[];
}

/** Breaks of one grant whose windows fit in MAX_WINDOW_DAYS together share one call: Cas allows few per minute. */
function batchesOf(items: readonly { grantId: string; brk: BreakToHeal }[]): Batch[] {
  const sorted = [...items].sort(
    (a, b) => a.grantId.localeCompare(b.grantId) || a.brk.fromDate.localeCompare(b.brk.fromDate),
  );
  const batches: { grantId: string; fromDate: string; toDate: string; breaks: BreakToHeal[] }[] = [];
  for (const { grantId, brk } of sorted) {
    const last = batches.at(-1);
    if (last?.grantId === grantId) {
      const toDate = brk.toDate > last.toDate ? brk.toDate : last.toDate;
      if (Date.parse(toDate) - Date.parse(last.fromDate) <= MAX_WINDOW_DAYS * DAY_MS) {
        last.toDate = toDate;
        last.breaks.push(brk);
        continue;
      }
    }
    batches.push({ grantId, fromDate: brk.fromDate, toDate: brk.toDate, breaks: [brk] });
  }
  return batches;
}

async function appendAttempt(
  deps: HealDeps,
  brk: BreakToHeal,
  grantId: string | null,
  window: Window,
  result: Outcome,
  counts: Counts,
): Promise<void> {
  const at = deps.backfill.now();
  const event: LedgerEvent = {
    type: 'GapHealAttempted',
    data: {
      breakId: brk.breakId,
      accountId: brk.accountId,
      grantId,
      fromDate: window.fromDate,
      toDate: window.toDate,
      outcome: result.outcome,
      detail: result.detail,
      fetched: counts.fetched,
      accepted: counts.accepted,
    },
  };
  await deps.backfill.eventStore.appendToStream(
    healStreamId(brk.breakId),
    [
      {
        eventId: eventIdFor(`heal:${brk.breakId}:${at.toISOString()}`),
        ...encodeEvent(event),
        metadata: { receivedAt: at.toISOString(), source: 'heal' },
      },
    ],
    'any',
  );
}

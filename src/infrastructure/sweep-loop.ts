import type { Logger } from 'pino';
import { sweep, type SweepDeps, sweepIsDone, type SweepOutcome } from '../application/sweep';
import { dueSweep, type SweepDay } from '../domain/bank-day';
import { pause, stopSignal } from './locked-loop';
import type { Metrics } from './metrics';
import { advisoryLockKey, type Database } from './postgres/database';

/**
 * Runs the daily sweep (src/application/sweep.ts) once the bank's clock passes SWEEP_AT, looking every minute; a
 * process that was down then sweeps when it is back, the same day. One sweep at a time across instances: the lock is
 * taken for the sweep only (so `ledger sweep` may run one by hand while the service idles), and a day already in the
 * log is never swept again.
 */
export type SweepRun = SweepOutcome | { readonly status: 'not_due' } | { readonly status: 'busy' };

export interface SweepLoop {
  start(): void;
  stop(): Promise<void>;
  /** Today's sweep if it is due at `now` and not done yet (tests pass `now` in). */
  runIfDue(now: Date): Promise<SweepRun>;
  /** One day's sweep now, unless it is done or another process is sweeping. */
  runDay(day: SweepDay): Promise<SweepRun>;
}

export interface SweepLoopOptions {
  readonly database: Database;
  readonly deps: Omit<SweepDeps, 'shouldStop'>;
  /** Minutes after the bank-local midnight; null (SWEEP_AT=off): never due, only `runDay` by hand (`ledger sweep`). */
  readonly sweepAtMinutes: number | null;
  readonly now: () => Date;
  readonly logger: Logger;
  readonly metrics?: Pick<Metrics, 'swept'>;
  readonly tickMs?: number;
}

const SWEEP_LOCK_KEY = advisoryLockKey('sweep');

export function createSweepLoop(options: SweepLoopOptions): SweepLoop {
  const log = options.logger.child({ component: 'sweep' });
  const signal = stopSignal();
  let loop: Promise<void> | null = null;

  async function runDay(day: SweepDay): Promise<SweepRun> {
    const done = await sweepIsDone(options.deps, day.date);
    if (done) return { status: 'already_done', report: done };
    let outcome: SweepRun = { status: 'busy' };
    const held = await options.database.tryWithAdvisoryLock(SWEEP_LOCK_KEY, async (lost) => {
      let gone = false;
      void lost.then(() => (gone = true));
      outcome = await sweep({ ...options.deps, shouldStop: () => signal.stopping() || gone }, day);
    });
    if (!held) return { status: 'busy' };
    const run = outcome as SweepRun;
    if (run.status === 'completed') {
      options.metrics?.swept(run.report);
      const { totals, grants } = run.report;
      const failed = grants.filter((g) => g.outcome === 'failed');
      log.info(
        { date: day.date, totals, grants: grants.length, failed: failed.map((g) => ({ grantId: g.grantId, errorCode: g.errorCode })) },
        `daily sweep of ${day.date}: ${totals.accepted} recovered, ${totals.duplicates} already booked, ${failed.length} grant(s) failed`,
      );
    }
    return run;
  }

  const runIfDue = async (now: Date): Promise<SweepRun> => {
    const day = options.sweepAtMinutes === null ? null : dueSweep(now, options.sweepAtMinutes);
    return day ? runDay(day) : { status: 'not_due' };
  };

  return {
    start() {
      loop ??= (async () => {
        while (!signal.stopping()) {
          try {
            await runIfDue(options.now());
          } catch (error) {
            log.error({ err: error }, 'the daily sweep failed; trying again in a minute');
          }
          await pause(options.tickMs ?? 60_000, signal.stopped);
        }
      })();
    },
    stop: () => signal.stop(loop),
    runIfDue,
    runDay,
  };
}

import type { Logger } from 'pino';
import { advisoryLockKey, type Database } from './postgres/database';

export interface LockedLoopOptions {
  readonly database: Database;
  readonly key: bigint;
  readonly log: Logger;
  /** Resolves when the owner stops; the loop then returns once `work` has. */
  readonly stopped: Promise<void>;
  readonly isStopping: () => boolean;
  /** How often a stand-by looks whether the lock has become free. */
  readonly standbyMs: number;
  /**
   * Runs while this process holds the lock. It must return soon after `until` resolves: the lock's connection was
   * lost (the lock with it, so another process may take over) or the owner is stopping.
   */
  readonly work: (until: Promise<void>) => Promise<void>;
  /** Told of each failure to take the lock or of `work` (the store unreachable, most often). */
  readonly onFailure?: (error: unknown) => void;
  /** Told when the store answered but another process holds the lock. */
  readonly onStandby?: () => void;
}

/** After the n-th failure in a row, wait 100 ms · 2^(n−1), at most 5 s. */
export const reconnectDelayMs = (failures: number): number => Math.min(5_000, 100 * 2 ** Math.max(0, failures - 1));

/**
 * One process at a time does `work` (a projection runner, the healer): take a session advisory lock on a connection
 * of its own, work while it is held, and when the connection is lost — PostgreSQL crashed or restarted — stop
 * working and take the lock again, reconnecting with backoff (100 ms to 5 s) for as long as the store is away.
 * Nothing here throws: the loop ends only when the owner stops.
 */
export async function runWhileLocked(options: LockedLoopOptions): Promise<void> {
  const { database, key, log, stopped, isStopping } = options;
  let failures = 0;
  while (!isStopping()) {
    let waitMs = options.standbyMs;
    try {
      const held = await database.tryWithAdvisoryLock(key, async (lost) => {
        failures = 0;
        await options.work(Promise.race([lost, stopped]));
      });
      if (held && !isStopping()) {
        log.warn('the connection holding the lock was lost; taking the lock again');
        failures += 1;
        waitMs = reconnectDelayMs(failures);
      } else if (!held) {
        failures = 0;
        options.onStandby?.();
        log.debug('another process holds the lock; standing by');
      }
    } catch (error) {
      failures += 1;
      waitMs = reconnectDelayMs(failures);
      options.onFailure?.(error);
      log.warn({ err: error, retryInMs: waitMs }, 'could not take the lock or work under it; trying again');
    }
    if (!isStopping()) await pause(waitMs, stopped);
  }
}

/** Waits `ms`, or less if `until` resolves first; leaves no timer behind. */
export function pause(ms: number, until: Promise<void>): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    void until.then(() => (clearTimeout(timer), resolve()));
  });
}

/** Tells a loop to stop: `stopped` resolves, `stopping()` says so, and `stop()` waits for the loop to return. */
export function stopSignal() {
  let stopping = false;
  let wake: () => void = () => {};
  const stopped = new Promise<void>((resolve) => (wake = resolve));
  return {
    stopped,
    stopping: () => stopping,
    async stop(loop: Promise<void> | null): Promise<void> {
      stopping = true;
      wake();
      await loop;
    },
  };
}

export interface PeriodicLoop {
  start(): void;
  stop(): Promise<void>;
  readonly stopping: () => boolean;
}

/**
 * A pass every `intervalMs` while this process holds the lock named `name` (the healer, the alerter): one process at
 * a time across instances, another taking over when it stops or loses its connection. A failed pass is logged and
 * the next one comes at the next interval.
 */
export function periodicLockedLoop(options: {
  readonly database: Database;
  readonly name: string;
  readonly log: Logger;
  readonly intervalMs: number;
  readonly pass: () => Promise<unknown>;
}): PeriodicLoop {
  const signal = stopSignal();
  let loop: Promise<void> | null = null;
  return {
    start() {
      loop ??= runWhileLocked({
        database: options.database,
        key: advisoryLockKey(options.name),
        log: options.log,
        stopped: signal.stopped,
        isStopping: signal.stopping,
        standbyMs: options.intervalMs,
        work: async (until) => {
          let over = false;
          void until.then(() => (over = true));
          while (!over) {
            try {
              await options.pass();
            } catch (error) {
              options.log.error({ err: error }, `${options.name} pass failed; trying again next interval`);
            }
            await pause(options.intervalMs, until);
          }
        },
      });
    },
    stop: () => signal.stop(loop),
    stopping: signal.stopping,
  };
}

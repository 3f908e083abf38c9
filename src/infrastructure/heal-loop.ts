import type { Logger } from 'pino';
import { type HealDeps, type HealReport, healGaps } from '../application/heal-gaps';
import type { EventStore } from '../application/ports/event-store';
import type { Projection } from '../projections/projection';
import type { Database } from './postgres/database';
import type { WriteSideDb } from './postgres/tables';
import { periodicLockedLoop } from './locked-loop';
import { readCheckpoint, waitForProjection } from './projection-store';

/**
 * Runs `healGaps` every `intervalMs`. One healer at a time across instances (a session advisory lock, as the
 * projection runner does), so two servers never ask Cas twice for the same break; a lost lock connection is
 * reconnected with backoff. `stop()` lets the pass in flight finish its current Cas call and records nothing
 * half-done: every heal attempt is one event.
 */
export interface HealLoop {
  start(): void;
  stop(): Promise<void>;
  /** One pass, now (tests and operators). */
  runOnce(): Promise<HealReport>;
}

export interface HealLoopOptions {
  readonly database: Database;
  readonly heal: Omit<HealDeps, 'shouldStop'>;
  readonly intervalMs: number;
  readonly logger: Logger;
  /** Told of every pass's results (metrics: ledger_heal_attempts_total). */
  readonly onReport?: (report: HealReport) => void;
}

export function createHealLoop(options: HealLoopOptions): HealLoop {
  const log = options.logger.child({ component: 'heal' });
  const pass = async (): Promise<HealReport> => {
    const report = await healGaps({ ...options.heal, shouldStop: loop.stopping });
    options.onReport?.(report);
    if (report.attempted > 0) log.info(report, 'heal pass');
    return report;
  };
  const loop = periodicLockedLoop({ database: options.database, name: 'heal', log, intervalMs: options.intervalMs, pass });
  return { start: loop.start, stop: loop.stop, runOnce: pass };
}

/**
 * Resolves once the projection's committed checkpoint has passed every event appended before the call, wherever the
 * runner runs (this process, `ledger project`, another instance).
 */
export async function waitForCheckpoint(
  db: WriteSideDb,
  eventStore: EventStore,
  projection: Projection,
  schema: string,
  timeoutMs = 60_000,
): Promise<void> {
  await waitForProjection(eventStore, projection, async () => (await readCheckpoint(db, schema, projection.name)).position, {
    timeoutMs,
    pollMs: 25,
  });
}

import type { Logger } from 'pino';
import type { EventStore, RecordedEvent, Subscription } from '../application/ports/event-store';
import type { Projection } from '../projections/projection';
import { advisoryLockKey, type Database } from './postgres/database';
import type { WriteSideDb } from './postgres/tables';
import { runWhileLocked } from './locked-loop';
import { rebuildProjection } from './read-model-maintenance';
import {
  commitBatch,
  countParked,
  ensureProjectionSchema,
  type Parking,
  readCheckpoint,
  Resync,
  schemaExists,
  waitForProjection,
  warmOf,
} from './projection-store';

/** An event that fails on its own is tried this many times (with the subscription's backoff between) before it is parked. */
const TRIES_BEFORE_PARKING = 3;

/**
 * A page with none of the projection's events only moves its checkpoint past other projections' events: such a move
 * is committed at most once in this many ms. A runner whose types are not being appended (grants while webhooks
 * arrive) would otherwise commit a transaction at every poll; the reads after it start from the subscription's own
 * position either way, and a restart re-reads at most this long a stretch of events it skips.
 */
const CHECKPOINT_ONLY_MS = 5_000;

/** What GET /projections and `ledger status` report of a runner. */
export interface RunnerStatus {
  readonly projection: string;
  readonly active: boolean;
  readonly position: string | null;
  readonly eventsProjected: bigint;
  readonly eventsBehind: bigint | null;
  readonly secondsBehind: number;
  readonly lastError: string | null;
  /** Events that could not be applied and were set aside (`ledger parked list`). */
  readonly parked: number;
}

/**
 * Follows the log from the projection's checkpoint. Each batch's read-model changes and the new checkpoint
 * commit in one transaction: after a crash the batch is either fully there or not at all, so every event takes
 * effect exactly once. One runner per projection is active (advisory lock); others wait as stand-bys.
 */
export interface ProjectionRunner {
  /** The name of the projection it runs. */
  readonly projection: string;
  start(): void;
  stop(): Promise<void>;
  status(): Promise<RunnerStatus>;
  /** Resolves once every event appended before the call has been projected. */
  caughtUp(timeoutMs?: number): Promise<void>;
}

export interface RunnerOptions {
  readonly database: Database;
  readonly eventStore: EventStore;
  readonly projection: Projection;
  readonly logger: Logger;
  readonly schema?: string;
  readonly batchSize?: number;
  readonly now?: () => Date;
  /** See CHECKPOINT_ONLY_MS. */
  readonly checkpointOnlyMs?: number;
}

export function createProjectionRunner(options: RunnerOptions): ProjectionRunner {
  const { database, eventStore, projection, logger } = options;
  const schema = options.schema ?? projection.name;
  const batchSize = options.batchSize ?? 5000;
  const now = options.now ?? (() => new Date());
  const log = logger.child({ component: 'projection', projection: projection.name });
  let position: string | null = null; // committed: what a batch expects to find (the subscription may be past it)
  let committedAt = Number.NEGATIVE_INFINITY;
  const committed = (last: string) => ((position = last), (committedAt = performance.now()));
  let eventsProjected = 0n;
  let active = false;
  let lastError: string | null = null;
  let stopping = false;
  let wakeStop: () => void = () => {};
  const stopped = new Promise<void>((resolve) => (wakeStop = resolve));
  let loop: Promise<void> | null = null;
  const parking: Parking = { triesBeforeParking: TRIES_BEFORE_PARKING, failures: new Map(), now };

  /** Follows the log until `until` resolves (the lock's connection was lost, or stop()). */
  async function project(until: Promise<void>): Promise<void> {
    let over = false;
    void until.then(() => (over = true));
    // Remembered between this session's batches only: a lost lock (another runner may write meanwhile) starts afresh.
    const warm = warmOf(projection);
    await ensureSchema(database.db, projection, schema, eventStore, log);
    active = true;
    lastError = null;
    try {
      while (!over) {
        const checkpoint = await readCheckpoint(database.db, schema, projection.name);
        position = checkpoint.position;
        eventsProjected = checkpoint.events;
        const resync = new Promise<void>((resolve) => {
          const subscription: Subscription = eventStore.subscribe({
            after: position,
            filter: { eventTypes: projection.eventTypes },
            metadataKeys: projection.metadataKeys,
            maxBatch: batchSize,
            onEvents: async (events, last) => {
              const outcome = await commitBatch(database.db, projection, schema, position, events, last, { parking, warm });
              committed(last);
              eventsProjected += BigInt(outcome.applied);
              lastError = null;
              for (const { event, error } of outcome.parked) {
                log.error(
                  { eventId: event.eventId, position: event.position, type: event.type, error },
                  'event parked: it cannot be applied; the projection goes on without it (ledger parked list)',
                );
              }
            },
            onCheckpoint: async (last) => {
              lastError = null;
              if (performance.now() - committedAt < (options.checkpointOnlyMs ?? CHECKPOINT_ONLY_MS)) return;
              await commitBatch(database.db, projection, schema, position, [], last, { parking, warm });
              committed(last);
            },
            onError: (error) => {
              if (error instanceof Resync) {
                log.warn('checkpoint moved under the runner (rebuild?); resubscribing');
                void subscription.stop().then(resolve);
                return;
              }
              lastError = error instanceof Error ? error.message : String(error);
              log.error({ err: error }, 'projection batch failed; retrying');
            },
          });
          void until.then(() => subscription.stop()).then(resolve);
        });
        await resync;
      }
    } finally {
      active = false;
    }
  }

  return {
    projection: projection.name,
    start() {
      // One active runner per projection across processes; a lost lock (PostgreSQL went away) stops the
      // subscription and the runner takes the lock again, with backoff, from the committed checkpoint.
      loop ??= runWhileLocked({
        database,
        key: advisoryLockKey(projection.name),
        log,
        stopped,
        isStopping: () => stopping,
        standbyMs: 1_000,
        work: project,
        onFailure: (error) => (lastError = error instanceof Error ? error.message : String(error)),
        onStandby: () => (lastError = null),
      });
    },
    async stop() {
      stopping = true;
      wakeStop();
      await loop;
    },
    async status() {
      // A stand-by (or a runner not started) reports the checkpoint that the active runner has committed.
      if (!active && (await schemaExists(database.db, schema))) {
        ({ position, events: eventsProjected } = await readCheckpoint(database.db, schema, projection.name));
      }
      const next = await eventStore.readAll({ after: position, maxCount: 1, filter: { eventTypes: projection.eventTypes } });
      const first: RecordedEvent | undefined = next.events[0];
      return {
        projection: projection.name,
        active,
        position,
        eventsProjected,
        eventsBehind: eventStore.countAfter ? await eventStore.countAfter(position, { eventTypes: projection.eventTypes }) : null,
        secondsBehind: first ? Math.max(0, (now().getTime() - first.recordedAt.getTime()) / 1000) : 0,
        lastError,
        parked: (await schemaExists(database.db, schema)) ? await countParked(database.db, schema) : 0,
      };
    },
    caughtUp: (timeoutMs = 30_000) =>
      waitForProjection(eventStore, projection, async () => position, { timeoutMs, pollMs: 10 }),
  };
}

/** A missing schema is created; a schema of an older version is rebuilt from the log before the runner follows. */
async function ensureSchema(db: WriteSideDb, projection: Projection, schema: string, store: EventStore, log: Logger) {
  await ensureProjectionSchema(db, projection, schema);
  const { version } = await readCheckpoint(db, schema, projection.name);
  if (version !== projection.version) {
    log.warn({ from: version, to: projection.version }, 'read model version changed: rebuilding from the log');
    await rebuildProjection({ db, eventStore: store, projection, schema });
  }
}

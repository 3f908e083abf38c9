import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { sql } from 'kysely';
import type { EventStore } from '../application/ports/event-store';
import type { Projection } from '../projections/projection';
import { advisoryLockKey, type Database } from './postgres/database';
import type { WriteSideDb } from './postgres/tables';
import { type Progress, type VerifyReport, verifyProjections } from './read-model-maintenance';

export interface VerifyRun {
  readonly id: string;
  readonly startedAt: Date;
}

export type VerifyOutcome =
  | { readonly status: 'done'; readonly run: VerifyRun; readonly report: VerifyReport }
  /** Another verify runs (in this process or another): `running` names it when its row could be read. */
  | { readonly status: 'busy'; readonly running: VerifyRun | null };

export interface VerifierDeps {
  readonly database: Database;
  readonly eventStore: EventStore;
  readonly projections: readonly Projection[];
  readonly now: () => Date;
}

/** Held, on a connection of its own, by the one verify that runs; start-up clean-up takes it too. */
const VERIFY_LOCK = advisoryLockKey('verify');

/**
 * Verify replays the whole log into scratch schemas: one at a time is all the database should carry. Within the
 * process a flag says so at once; across processes a session advisory lock does, and the `verify_runs` row names
 * the run that holds it. Whoever holds the lock is the only verify running, so any scratch schema it finds was left
 * by a crash and is dropped first.
 */
export function createVerifier(deps: VerifierDeps) {
  const { database, now } = deps;
  let running: VerifyRun | null = null;
  return {
    async run(onProgress?: (progress: Progress) => void): Promise<VerifyOutcome> {
      if (running) return { status: 'busy', running };
      const run: VerifyRun = { id: randomUUID(), startedAt: now() };
      running = run;
      try {
        let report: VerifyReport | null = null;
        const ran = await database.tryWithAdvisoryLock(VERIFY_LOCK, async () => {
          await dropAbandoned(database.db, deps.projections, now());
          await database.db.insertInto('verify_runs').values({ id: run.id, started_at: run.startedAt, process: processName() }).execute();
          try {
            report = await verifyProjections({ db: database.db, eventStore: deps.eventStore, ...(onProgress ? { onProgress } : {}) }, deps.projections);
          } catch (error) {
            await finish(database.db, run.id, now(), 'failed', null, error instanceof Error ? error.message : String(error));
            throw error;
          }
          const { ok, differences } = report;
          await finish(database.db, run.id, now(), ok ? 'ok' : 'differences', differences.length, null);
        });
        if (!ran || !report) return { status: 'busy', running: await runningElsewhere(database.db) };
        return { status: 'done', run, report };
      } finally {
        running = null;
      }
    },
  };
}

export type Verifier = ReturnType<typeof createVerifier>;

/**
 * At start-up: scratch schemas of a verify that crashed are dropped, and its row marked abandoned, unless a verify
 * runs right now in another process (it holds the lock; its own start drops what is left over).
 */
export async function cleanUpAfterCrashedVerifies(database: Database, projections: readonly Projection[], now: Date): Promise<void> {
  await database.tryWithAdvisoryLock(VERIFY_LOCK, () => dropAbandoned(database.db, projections, now));
}

async function dropAbandoned(db: WriteSideDb, projections: readonly Projection[], at: Date): Promise<void> {
  const names = projections.map((p) => p.name);
  const { rows } = await sql<{ schema_name: string }>`
    select schema_name from information_schema.schemata
    where schema_name ~ ('^(' || array_to_string(${names}::text[], '|') || ')_verify_[0-9a-f]{8}$')`.execute(db);
  for (const { schema_name } of rows) await sql`drop schema if exists ${sql.id(schema_name)} cascade`.execute(db);
  await db.updateTable('verify_runs').set({ finished_at: at, outcome: 'abandoned' }).where('finished_at', 'is', null).execute();
}

type Outcome = 'ok' | 'differences' | 'failed';

async function finish(db: WriteSideDb, id: string, at: Date, outcome: Outcome, differences: number | null, error: string | null) {
  await db.updateTable('verify_runs').set({ finished_at: at, outcome, differences, error }).where('id', '=', id).execute();
}

async function runningElsewhere(db: WriteSideDb): Promise<VerifyRun | null> {
  const row = await db
    .selectFrom('verify_runs')
    .select(['id', 'started_at'])
    .where('finished_at', 'is', null)
    .orderBy('started_at', 'desc')
    .limit(1)
    .executeTakeFirst();
  return row ? { id: row.id, startedAt: new Date(row.started_at) } : null;
}

const processName = () => `${hostname()}:${process.pid}`;

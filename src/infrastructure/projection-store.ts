import { type Kysely, sql } from 'kysely';
import type { EventStore, RecordedEvent } from '../application/ports/event-store';
import type { Projection } from '../projections/projection';

/** The checkpoint moved under a runner (a rebuild swapped the schema, or another runner): start again from it. */
export class Resync extends Error {
  override readonly name = 'Resync';
}

export async function readCheckpoint(db: Kysely<any>, schema: string, name: string) {
  const { rows } = await sql<{ position: string | null; events: string; version: number }>`
    select position, events, version from ${sql.id(schema)}.checkpoint where projection = ${name}`.execute(db);
  const row = rows[0];
  return { position: row?.position ?? null, events: BigInt(row?.events ?? 0), version: row?.version ?? null };
}

/** One batch: lock the checkpoint row, check nobody moved it, apply, advance it; all in one transaction. */
export async function commitBatch(
  db: Kysely<any>,
  projection: Projection,
  schema: string,
  expected: string | null,
  events: readonly RecordedEvent[],
  last: string,
): Promise<void> {
  await db.transaction().execute(async (trx) => {
    const { rows } = await sql<{ position: string | null }>`
      select position from ${sql.id(schema)}.checkpoint where projection = ${projection.name} for update`.execute(trx);
    if ((rows[0]?.position ?? null) !== expected) throw new Resync(`checkpoint of ${projection.name} moved`);
    if (events.length > 0) await projection.apply(trx, schema, events);
    await sql`
      update ${sql.id(schema)}.checkpoint
      set position = ${last}, events = events + ${events.length}, updated_at = now()
      where projection = ${projection.name}`.execute(trx);
  });
}

export async function createProjectionSchema(db: Kysely<any>, projection: Projection, schema: string): Promise<void> {
  await db.transaction().execute((trx) => createSchemaIn(trx, projection, schema));
}

async function createSchemaIn(trx: Kysely<any>, projection: Projection, schema: string): Promise<void> {
  await projection.createSchema(trx, schema);
  await sql`
    create table ${sql.id(schema)}.checkpoint (
      projection text primary key, version integer not null, position text, events bigint not null default 0,
      updated_at timestamptz not null default now()
    )`.execute(trx);
  await sql`insert into ${sql.id(schema)}.checkpoint (projection, version) values (${projection.name}, ${projection.version})`.execute(trx);
}

/**
 * Creates the projection's schema unless it exists. Safe when several processes start at once: they queue on an
 * advisory lock keyed by the schema's name and look again once they hold it.
 */
export async function ensureProjectionSchema(db: Kysely<any>, projection: Projection, schema: string): Promise<void> {
  if (await schemaExists(db, schema)) return;
  await db.transaction().execute(async (trx) => {
    await sql`select pg_advisory_xact_lock(hashtext(${`balance-ledger:schema:${schema}`}))`.execute(trx);
    if (await schemaExists(trx, schema)) return;
    await createSchemaIn(trx, projection, schema);
  });
}

export async function schemaExists(db: Kysely<any>, schema: string): Promise<boolean> {
  const { rows } = await sql`select 1 from information_schema.schemata where schema_name = ${schema}`.execute(db);
  return rows.length > 0;
}


/**
 * Resolves once no event of the projection's types lies after `position()` — the runner's own position, or the
 * committed checkpoint wherever the runner runs.
 */
export async function waitForProjection(
  eventStore: EventStore,
  projection: Projection,
  position: () => Promise<string | null>,
  { timeoutMs, pollMs }: { timeoutMs: number; pollMs: number },
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const next = await eventStore.readAll({ after: await position(), maxCount: 1, filter: { eventTypes: projection.eventTypes } });
    if (next.events.length === 0) return;
    if (Date.now() > deadline) throw new Error(`projection ${projection.name} did not catch up in ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

import { type Kysely, type Migration, type MigrationProvider, type MigrationResultSet, Migrator, sql } from 'kysely';
import type { WriteSideDb } from './tables';

/**
 * Write-side tables: the event log, the quarantine of rejected bodies, linked grants, API keys, operators' history and
 * the alert outbox. Read models are not migrated: they are rebuilt from the log (src/projections/*-schema.ts). Their
 * types: tables.ts.
 */
const migrations: Record<string, Migration> = {
  '0001_event_store': {
    async up(db) {
      await sql`
        create table events (
          seq bigserial primary key,
          stream_id text not null,
          revision bigint not null,
          event_id uuid not null,
          type text not null,
          data json not null,
          metadata json not null,
          -- The body exactly as received, kept out of the metadata JSON so it is neither escaped nor re-parsed.
          raw_body text,
          recorded_at timestamptz not null default clock_timestamp(),
          constraint events_stream_revision unique (stream_id, revision),
          constraint events_event_id unique (event_id)
        )`.execute(db);
      // The global order is seq: appends are serialised by an advisory lock (see postgres-event-store).
      await sql`create index events_type_seq on events (type, seq)`.execute(db);
    },
  },
  '0002_quarantine': {
    async up(db) {
      await sql`
        create table quarantine (
          id bigserial primary key,
          body_sha256 text not null unique,
          raw_body bytea not null,
          content_type text,
          reason jsonb not null,
          source text not null,
          request_id text,
          remote_address text,
          first_received_at timestamptz not null,
          last_received_at timestamptz not null,
          times_received integer not null default 1,
          reingested_at timestamptz,
          reingest_outcome jsonb
        )`.execute(db);
    },
  },
  // Cas access tokens, AES-256-GCM sealed (src/infrastructure/secrets): kept out of the event log so they can be erased.
  '0003_grant_secrets': {
    async up(db) {
      await sql`
        create table grant_secrets (
          grant_id text primary key,
          iv bytea not null,
          ciphertext bytea not null,
          auth_tag bytea not null,
          key_id text not null,
          created_at timestamptz not null,
          updated_at timestamptz not null
        )`.execute(db);
    },
  },
  // API keys (src/application/access.ts): only the SHA-256 of each key is stored; a revoked key stays, marked.
  '0004_api_keys': {
    async up(db) {
      await sql`
        create table api_keys (
          id uuid primary key,
          name text not null,
          role text not null,
          key_sha256 text not null,
          created_at timestamptz not null,
          last_used_at timestamptz,
          revoked_at timestamptz,
          constraint api_keys_key_sha256 unique (key_sha256)
        )`.execute(db);
      // Names are unique among live keys: a rotated key's successor may take the name once the old one is revoked.
      await sql`create unique index api_keys_live_name on api_keys (name) where revoked_at is null`.execute(db);
    },
  },
  // Operators' history: what became of each retry of a parked event, and every verify run (one runs at a time).
  '0005_operations_history': {
    async up(db) {
      await sql`
        create table parked_event_retries (
          id bigserial primary key,
          projection text not null,
          event_id text not null,
          log_position text not null,
          event_type text not null,
          subject text,
          parked_error text not null,
          tries integer not null,
          first_failed_at timestamptz not null,
          retried_at timestamptz not null,
          outcome text not null check (outcome in ('applied', 'failed_again')),
          error text
        )`.execute(db);
      await sql`create index parked_event_retries_event on parked_event_retries (projection, event_id)`.execute(db);
      await sql`
        create table verify_runs (
          id uuid primary key,
          started_at timestamptz not null,
          finished_at timestamptz,
          outcome text check (outcome in ('ok', 'differences', 'failed', 'abandoned')),
          differences integer,
          error text,
          process text not null
        )`.execute(db);
    },
  },
  // The alert outbox (src/application/alerts.ts): one row per alert, keyed by an id derived from what it is about, so
  // that a restart, a rebuild of the read models or a replay of the log never sends an alert twice.
  '0006_alerts': {
    async up(db) {
      await sql`
        create table alerts (
          alert_id text primary key,
          kind text not null,
          alert jsonb not null,
          status text not null check (status in ('pending', 'delivered', 'failed')),
          created_at timestamptz not null,
          attempts integer not null default 0,
          next_attempt_at timestamptz,
          last_attempt_at timestamptz,
          last_error text,
          delivered_at timestamptz
        )`.execute(db);
      // The dispatcher's queue, and GET /alerts (by status or all, oldest first).
      await sql`create index alerts_due on alerts (next_attempt_at) where status = 'pending'`.execute(db);
      await sql`create index alerts_status_created on alerts (status, created_at, alert_id)`.execute(db);
      await sql`create index alerts_created on alerts (created_at, alert_id)`.execute(db);
      // What the detector last saw of a subject (a projection's lag, a grant's status): an alert marks a change.
      await sql`
        create table alert_observations (
          subject text primary key,
          state text not null,
          observed_at timestamptz not null
        )`.execute(db);
    },
  },
  // A webhook's row is ~2.1 KB, over PostgreSQL's 2 KB toast threshold, so every insert compresses its largest value
  // (the raw body). pglz took ~4 µs of the server's CPU a row for it, lz4 ~0.4 µs, to the same size
  // (`npx tsx bench/toast-compression.ts`). Only where the server has lz4 (PGlite has pglz alone); rows already
  // stored keep theirs, and reads decompress either. Since 0008 moved the body out, a webhook's rows are under the
  // threshold and nothing of them is compressed; lz4 stays for larger values.
  '0007_events_lz4': {
    async up(db) {
      if (!(await serverHasLz4(db))) return;
      await sql`
        alter table events
          alter column raw_body set compression lz4,
          alter column data set compression lz4,
          alter column metadata set compression lz4`.execute(db);
    },
  },
  // The raw body out of the event rows into a table of its own, keyed by the event's seq: with it inline a row was
  // ~1.9 KB (4 a page), and a from-zero projection of a vacuumed log, which never reads it, spent ~9 µs of
  // PostgreSQL's CPU an event more fetching those pages (docs/performance-history.md, perf-projection-12). The bodies
  // stored so far move here unchanged (text to text, no re-encoding). Dropping the column frees nothing on disk: its
  // bytes stay in the old pages until the table is rewritten (VACUUM FULL or pg_repack, an operator's choice); new
  // pages are dense at once.
  '0008_event_attachments': {
    async up(db) {
      await sql`
        create table event_attachments (
          seq bigint primary key,
          -- The body exactly as received (the port's attachment); only events that carry one have a row.
          body text not null
        )`.execute(db);
      if (await serverHasLz4(db)) await sql`alter table event_attachments alter column body set compression lz4`.execute(db);
      await sql`
        insert into event_attachments (seq, body)
        select seq, raw_body from events where raw_body is not null order by seq`.execute(db);
      await sql`alter table events drop column raw_body`.execute(db);
    },
  },
};

/** Whether the server can compress with lz4 (a PostgreSQL built with it; PGlite has pglz alone). */
async function serverHasLz4(db: Kysely<unknown>): Promise<boolean> {
  const { rows } = await sql<{ lz4: boolean }>`
    select 'lz4' = any(enumvals) as lz4 from pg_settings where name = 'default_toast_compression'`.execute(db);
  return rows[0]?.lz4 === true;
}

const provider: MigrationProvider = { getMigrations: async () => migrations };

export async function migrateToLatest(db: WriteSideDb): Promise<void> {
  thrownIfFailed(await new Migrator({ db, provider }).migrateToLatest());
}

/** The write side as it stood after migration `name` (tests build an older deployment's schema with it). */
export async function migrateTo(db: WriteSideDb, name: string): Promise<void> {
  if (!(name in migrations)) throw new Error(`no migration ${name}`);
  thrownIfFailed(await new Migrator({ db, provider }).migrateTo(name));
}

function thrownIfFailed({ error, results }: MigrationResultSet): void {
  const failed = results?.find((r) => r.status === 'Error');
  if (error || failed) {
    throw new Error(`migration ${failed?.migrationName ?? ''} failed: ${String(error)}`, { cause: error });
  }
}

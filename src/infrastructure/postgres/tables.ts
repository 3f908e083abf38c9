/**
 * The write side's tables (migrations.ts creates them) as kysely knows them: one declaration per table; row types
 * are `Selectable<…>` of these. The read models' tables live in schemas named at run time (projections/tables.ts,
 * projections/read-model.ts).
 */
import type { ColumnType, Generated, Kysely } from 'kysely';
import type { Alert, AlertKind } from '../../application/alerts';
import type { FieldProblem } from '../../application/cas-webhook';
import type { AlertStatus } from '../../application/ports/alert-outbox';
import type { JsonObject } from '../../domain/bank-transaction';
import type { Defaulted, Int8, Json, Timestamptz } from '../../projections/tables';

export interface WriteSideTables {
  events: EventsTable;
  event_attachments: EventAttachmentsTable;
  quarantine: QuarantineTable;
  grant_secrets: GrantSecretsTable;
  api_keys: ApiKeysTable;
  parked_event_retries: ParkedEventRetriesTable;
  verify_runs: VerifyRunsTable;
  alerts: AlertsTable;
  alert_observations: AlertObservationsTable;
  kysely_migration: KyselyMigrationTable;
  kysely_migration_lock: KyselyMigrationLockTable;
}

/** The write pool and the read pool both speak to these tables. */
export type WriteSideDb = Kysely<WriteSideTables>;

/** The event log (postgres-event-store.ts). `seq` is the global order. */
export interface EventsTable {
  seq: Defaulted<Int8>;
  stream_id: string;
  revision: Int8;
  event_id: string;
  type: string;
  data: Json<JsonObject>;
  metadata: Json<JsonObject>;
  recorded_at: Defaulted<Timestamptz>;
}

/**
 * An event's attachment (the raw body, exactly as received), one row per event that has one, written in the same
 * statement as the event: out of the event rows so that reads that never ask for it (projections) read narrow pages,
 * and out of the metadata JSON so it is neither escaped nor re-parsed.
 */
export interface EventAttachmentsTable {
  seq: Int8;
  body: string;
}

/** Bodies that could not be booked, byte for byte (quarantine-repository.ts). */
export interface QuarantineTable {
  id: Defaulted<Int8>;
  body_sha256: string;
  raw_body: ColumnType<Uint8Array, Uint8Array, Uint8Array>;
  content_type: string | null;
  reason: Json<{ problems: FieldProblem[] }>;
  source: string;
  request_id: string | null;
  remote_address: string | null;
  first_received_at: Timestamptz;
  last_received_at: Timestamptz;
  times_received: Generated<number>;
  reingested_at: Timestamptz | null;
  reingest_outcome: Json<unknown> | null;
}

/** Cas access tokens, sealed (grant-secrets-repository.ts). */
export interface GrantSecretsTable {
  grant_id: string;
  iv: ColumnType<Uint8Array, Uint8Array, Uint8Array>;
  ciphertext: ColumnType<Uint8Array, Uint8Array, Uint8Array>;
  auth_tag: ColumnType<Uint8Array, Uint8Array, Uint8Array>;
  key_id: string;
  created_at: Timestamptz;
  updated_at: Timestamptz;
}

/** API keys: the SHA-256 of each key, never the key (api-key-repository.ts). */
export interface ApiKeysTable {
  id: string;
  name: string;
  role: string;
  key_sha256: string;
  created_at: Timestamptz;
  last_used_at: Timestamptz | null;
  revoked_at: Timestamptz | null;
}

/** Every retry of a parked event and what became of it (parked-events.ts). */
export interface ParkedEventRetriesTable {
  id: Defaulted<Int8>;
  projection: string;
  event_id: string;
  log_position: string;
  event_type: string;
  subject: string | null;
  parked_error: string;
  tries: number;
  first_failed_at: Timestamptz;
  retried_at: Timestamptz;
  outcome: 'applied' | 'failed_again';
  error: string | null;
}

/** Every verify run (verify-runs.ts). */
export interface VerifyRunsTable {
  id: string;
  started_at: Timestamptz;
  finished_at: Timestamptz | null;
  outcome: 'ok' | 'differences' | 'failed' | 'abandoned' | null;
  differences: number | null;
  error: string | null;
  process: string;
}

/** The alert outbox (migration 0006, alert-outbox-repository.ts): one row per alert, keyed by what it is about. */
export interface AlertsTable {
  alert_id: string;
  kind: AlertKind;
  alert: Json<Alert>;
  status: AlertStatus;
  created_at: Timestamptz;
  attempts: Generated<number>;
  next_attempt_at: Timestamptz | null;
  last_attempt_at: Timestamptz | null;
  last_error: string | null;
  delivered_at: Timestamptz | null;
}

/** What the alert detector last saw of a subject (a break, a projection's lag, a grant's status). */
export interface AlertObservationsTable {
  subject: string;
  state: string;
  observed_at: Timestamptz;
}

/** kysely's own bookkeeping of the migrations. */
export interface KyselyMigrationTable {
  name: string;
  timestamp: string;
}

export interface KyselyMigrationLockTable {
  id: string;
  is_locked: Generated<number>;
}

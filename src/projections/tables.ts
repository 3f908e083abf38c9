/**
 * The read models' tables as kysely knows them: one declaration per table, unqualified (a read model lives in a
 * schema named at run time: `ledger`, `ledger_rebuild`, `ledger_verify_…`; read-model.ts binds one). Row types are
 * `Selectable<…>` of these. Both drivers return int8 and numeric as text and dates as 'YYYY-MM-DD' (database.ts).
 */
import type { ColumnType, Generated } from 'kysely';
import type { LinkedAccount } from '../domain/events';
import type { GrantError, GrantStatus } from '../domain/grant';

/** bigint: its exact decimal text both ways (never a double; JSON cannot carry a JavaScript bigint). */
export type Int8 = ColumnType<string, string, string>;
/** A calendar date: 'YYYY-MM-DD' both ways. */
export type DateText = ColumnType<string, string, string>;
/** An instant: read as a Date; written from a Date or ISO-8601 text. */
export type Timestamptz = ColumnType<Date, Date | string, Date | string>;
/** json/jsonb: read parsed; written as JSON text. */
export type Json<T> = ColumnType<T, string, string>;
/** A column with a default: it may be left out of an insert (kysely's Generated, for columns typed above). */
export type Defaulted<C> = C extends ColumnType<infer S, infer I, infer U> ? ColumnType<S, I | undefined, U> : Generated<C>;

/** ledger.accounts: one row per (bank, account number). */
export interface AccountsTable {
  account_id: string;
  fi_id: string;
  fi_name: string | null;
  account_number: string;
  currency: string;
  balance: Int8 | null;
  last_transaction_id: string | null;
  last_transaction_at: Timestamptz | null;
  last_transaction_date_time: string | null;
  line_count: Defaulted<Int8>;
  open_breaks: Generated<number>;
  late_deliveries: Generated<number>;
  grant_id: string | null;
  first_seen_at: Timestamptz;
  /**
   * Which transaction last changed what the account's statements show (its xid: never the same for two
   * transactions), written in the same transaction as the change: a statement cached at one version is current
   * while the version is.
   */
  version: Int8;
  /**
   * The most days by which a line's transaction_date (the bank's date) has come after (ahead) or before (behind) the
   * UTC date of its instant, over every line the account ever had; never less than 0, only ever raised (ledger-write.ts),
   * in the same transaction as the lines. So every line dated in [from, to] has its instant in
   * [from − ahead days, to + behind + 1 days) at 00:00 UTC: a statement reads its period as that window of instants
   * and keeps the lines dated in the period (ledger.queries.ts). A value of DATE_GAP_UNBOUNDED or more: no bound.
   */
  date_ahead_days: Generated<number>;
  date_behind_days: Generated<number>;
}

/**
 * At or beyond this many days a date gap bounds nothing: the statement reads the account's lines whatever their
 * instants (ledger.queries.ts). Kept far inside PostgreSQL's date range, so that a period's window is plain arithmetic.
 */
export const DATE_GAP_UNBOUNDED = 100_000;

/** ledger.statement_lines: one row per transaction, in statement order by (instant, group_seq). */
export interface StatementLinesTable {
  transaction_id: string;
  account_id: string;
  event_id: string;
  instant: Timestamptz;
  group_seq: number;
  transaction_date: DateText;
  transaction_date_time: string;
  booking_date: DateText | null;
  amount: Int8;
  running_balance: Int8 | null;
  balance_before: Int8 | null;
  balance_after: Int8 | null;
  description: string | null;
  reference: string | null;
  counter_account_number: string | null;
  counter_account_name: string | null;
  counter_account_bank_name: string | null;
  virtual_account_number: string | null;
  virtual_account_name: string | null;
  payment_channel: string | null;
  late: boolean;
  received_at: Timestamptz;
  source: string;
  log_position: string;
}

/** ledger.breaks: a gap in the bank's running-balance chain between two consecutive lines, open or resolved. */
export interface BreaksTable {
  break_id: string;
  account_id: string;
  after_transaction_id: string;
  before_transaction_id: string;
  missing_amount: Int8;
  status: 'open' | 'resolved';
  opened_at: Timestamptz;
  opened_by_event_id: string;
  resolved_at: Timestamptz | null;
  resolved_by_event_id: string | null;
  resolved_by_source: string | null;
  resolution: string | null;
  heal_attempts: Generated<number>;
  last_heal_at: Timestamptz | null;
  last_heal_outcome: string | null;
  last_heal_detail: string | null;
  last_heal_event_id: string | null;
}

/** ledger.anomalies: late deliveries and conflicting repeats. */
export interface AnomaliesTable {
  anomaly_id: string;
  kind: 'late' | 'conflict';
  account_id: string;
  transaction_id: string;
  event_id: string;
  received_at: Timestamptz;
  source: string;
  details: Json<Record<string, string | null>>;
  log_position: string;
}

/** grants.grants: one row per grant, the state its GRANT webhooks left it in. */
export interface GrantsTable {
  grant_id: string;
  status: GrantStatus;
  fi_id: string | null;
  accounts: Json<LinkedAccount[]>;
  linked_at: Timestamptz | null;
  last_error: Json<GrantError> | null;
  last_webhook_code: string | null;
  updated_at: Timestamptz;
  /** The log position of the last event folded in: an event at or before it is a replay and changes nothing. */
  last_position: string;
}

/** Every projection's schema: where it has got to in the log (projection-store.ts). */
export interface CheckpointTable {
  projection: string;
  version: number;
  position: string | null;
  events: Defaulted<Int8>;
  updated_at: Defaulted<Timestamptz>;
}

/** Every projection's schema: the events it could not apply, set aside (projection-store.ts). */
export interface ParkedEventsTable {
  event_id: string;
  log_position: string;
  event_type: string;
  stream_id: string;
  subject: string | null;
  transaction_date: string | null;
  error: string;
  tries: number;
  first_failed_at: Timestamptz;
  last_failed_at: Timestamptz;
}

export interface LedgerTables {
  accounts: AccountsTable;
  statement_lines: StatementLinesTable;
  breaks: BreaksTable;
  anomalies: AnomaliesTable;
}

export interface GrantsTables {
  grants: GrantsTable;
}

export interface ProjectionTables {
  checkpoint: CheckpointTable;
  parked_events: ParkedEventsTable;
}

/** Every read-model table by its unqualified name (no two projections use the same name). */
export interface ReadModelTables extends LedgerTables, GrantsTables, ProjectionTables {}

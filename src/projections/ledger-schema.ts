import { type RawBuilder, sql } from 'kysely';
import type { ReadTable } from './projection';
import type { ReadModel } from './read-model';

/** The ledger's read model (its tables' types: tables.ts). Money columns are bigint whole đồng; `*_at` columns are instants. */
export async function createLedgerSchema({ db, schema }: ReadModel): Promise<void> {
  const s = sql.id(schema);
  await sql`create schema if not exists ${s}`.execute(db);
  // Every batch rewrites the row of each account it touched (balance, tail, version), none of them an indexed column:
  // pages half empty leave room for the new version beside the old, so the update is HOT (no new entries in the two
  // indexes) and the page's dead versions are pruned without a vacuum. Full pages moved most versions elsewhere.
  await sql`
    create table ${s}.accounts (
      account_id uuid primary key,
      fi_id text not null,
      fi_name text,
      account_number text not null,
      currency text not null,
      balance bigint,
      last_transaction_id text,
      last_transaction_at timestamptz,
      last_transaction_date_time text,
      line_count bigint not null default 0,
      open_breaks integer not null default 0,
      late_deliveries integer not null default 0,
      grant_id text,
      first_seen_at timestamptz not null,
      version bigint not null,
      -- How far the bank dates of the account's lines have strayed from their instants' UTC dates (tables.ts).
      date_ahead_days integer not null default 0,
      date_behind_days integer not null default 0,
      unique (fi_id, account_number)
    ) with (fillfactor = 50)`.execute(db);
  await sql`
    create table ${s}.statement_lines (
      transaction_id text primary key,
      account_id uuid not null,
      event_id uuid not null,
      instant timestamptz not null,
      group_seq integer not null,
      transaction_date date not null,
      transaction_date_time text not null,
      booking_date date,
      amount bigint not null,
      running_balance bigint,
      balance_before bigint,
      balance_after bigint,
      description text,
      reference text,
      counter_account_number text,
      counter_account_name text,
      counter_account_bank_name text,
      virtual_account_number text,
      virtual_account_name text,
      payment_channel text,
      late boolean not null,
      received_at timestamptz not null,
      source text not null,
      log_position text not null
    )`.execute(db);
  // Statement order is (instant, group_seq): the fold's loads read lines around an instant by it, and statements read
  // their period by it too (a window of instants wide enough for the period's bank dates, filtered by transaction_date:
  // see the accounts' date_ahead_days and date_behind_days), so it includes what the period's figures read: where the
  // visibility map says a page is all-visible (a rebuild vacuums what it made) the period comes from the index alone.
  // One index for both: a second one led by the bank date cost every batch's COPY about as much as the other three.
  await sql`create index on ${s}.statement_lines (account_id, instant, group_seq)
    include (transaction_date, event_id, amount, balance_before, balance_after)`.execute(db);
  // The auditor's view of one account reads its lines that are not late in log order from the instant index
  // (audit.queries.ts); the late ones, rare, from here.
  await sql`create index on ${s}.statement_lines (account_id, log_position) where late`.execute(db);
  await sql`
    create table ${s}.breaks (
      break_id uuid primary key,
      account_id uuid not null,
      after_transaction_id text not null,
      before_transaction_id text not null,
      missing_amount bigint not null,
      status text not null check (status in ('open', 'resolved')),
      opened_at timestamptz not null,
      opened_by_event_id uuid not null,
      resolved_at timestamptz,
      resolved_by_event_id uuid,
      resolved_by_source text,
      resolution text,
      heal_attempts integer not null default 0,
      last_heal_at timestamptz,
      last_heal_outcome text,
      last_heal_detail text,
      last_heal_event_id uuid
    )`.execute(db);
  await sql`create index on ${s}.breaks (account_id, status)`.execute(db);
  await sql`
    create table ${s}.anomalies (
      anomaly_id uuid primary key,
      kind text not null check (kind in ('late', 'conflict')),
      account_id uuid not null,
      transaction_id text not null,
      event_id uuid not null,
      received_at timestamptz not null,
      source text not null,
      details jsonb not null,
      log_position text not null
    )`.execute(db);
  await sql`create index on ${s}.anomalies (account_id, kind)`.execute(db);
}

/** The indexes only readers use (projection.ts: a rebuild builds them after its bulk replay, verify never). */
export function ledgerQueryIndexes(schema: string): readonly RawBuilder<unknown>[] {
  const s = sql.id(schema);
  return [
    // GET /breaks pages in (status, opened_at, break_id) order: open first, then oldest first.
    sql`create index on ${s}.breaks (status, opened_at, break_id)`,
    // GET /anomalies pages in the order they were detected: when the delivery reached us, then id.
    sql`create index on ${s}.anomalies (received_at, anomaly_id)`,
  ];
}

export const LEDGER_TABLES: readonly ReadTable[] = [
  // `version` names the transaction that last wrote the row: never the same in a replay.
  { name: 'accounts', key: ['account_id'], volatile: ['version'] },
  { name: 'statement_lines', key: ['transaction_id'] },
  { name: 'breaks', key: ['break_id'] },
  { name: 'anomalies', key: ['anomaly_id'] },
];

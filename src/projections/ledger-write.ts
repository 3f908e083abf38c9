import { type RawBuilder, sql } from 'kysely';
import { v5 as uuidv5 } from 'uuid';
import type { BookLine, BreakState } from './account-book';
import type { AccountChanges, Anomaly, HealAttempt, LedgerChanges } from './ledger-fold';
import type { ReadModel } from './read-model';
import type { LedgerTables } from './tables';

/** The namespace of the ledger read model's name-based ids (accounts, breaks, anomalies): the same on every rebuild. */
export const LEDGER_NAMESPACE = '0d5f3c1e-2b7a-4c1d-8e9f-6a5b4c3d2e1f';

const breakIdOf = (accountId: string, b: BreakState) =>
  uuidv5(`break:${accountId}:${b.afterTransactionId}:${b.beforeTransactionId}:${b.openedByEventId}`, LEDGER_NAMESPACE);
const anomalyIdOf = (kind: string, eventId: string) => uuidv5(`anomaly:${kind}:${eventId}`, LEDGER_NAMESPACE);

/**
 * The ledger fold's write step: one statement per table for the whole batch, then the heal attempts (they come
 * after the transactions they recovered, so they are recorded once those are booked).
 */
export async function writeLedgerChanges(rm: ReadModel, changes: LedgerChanges): Promise<void> {
  await writeLines(rm, changes.accounts);
  await writeBreaks(rm, changes.accounts);
  await writeAnomalies(rm, [...changes.accounts.flatMap((a) => a.late), ...changes.conflicts]);
  await writeAccounts(rm, changes.accounts);
  for (const heal of changes.heals) await recordHealAttempt(rm, heal);
}

/**
 * Writes a batch's rows of one table in one statement. One JSON parameter per statement costs far less than one
 * array per column (measured: the projection ran about twice as fast), and the table's own row type names the
 * columns. Money goes in as decimal strings.
 */
async function upsert<T extends keyof LedgerTables>(
  rm: ReadModel,
  table: T,
  rows: readonly RecordsetRow<LedgerTables[T]>[],
  onConflict: RawBuilder<unknown>,
): Promise<void> {
  if (rows.length === 0) return;
  const t = rm.table(table);
  await sql`insert into ${t} select * from json_populate_recordset(null::${t}, ${JSON.stringify(rows)}::json) ${onConflict}`.execute(rm.db);
}

/** A row as json_populate_recordset reads it: every column, as a JSON value (money and instants as text). */
type RecordsetRow<Table> = { readonly [Column in keyof Table]: string | number | boolean | null | Readonly<Record<string, string | null>> };

const text = (v: bigint | null) => (v === null ? null : v.toString());
const iso = (ms: number) => new Date(ms).toISOString();

async function writeLines(rm: ReadModel, accounts: readonly AccountChanges[]): Promise<void> {
  // New lines are plain inserts (no speculative insertion); a line already stored only moves or changes balances.
  await upsert(rm, 'statement_lines', accounts.flatMap((a) => a.added.map((l) => lineRow(a.account.accountId, l))), sql``);
  const moved = accounts.flatMap((a) => a.moved);
  if (moved.length === 0) return;
  await sql`
    update ${rm.table('statement_lines')} l set group_seq = m.group_seq, balance_before = m.balance_before, balance_after = m.balance_after
    from json_to_recordset(${JSON.stringify(
      moved.map((l) => ({ transaction_id: l.id, group_seq: l.seq, balance_before: text(l.before), balance_after: text(l.after) })),
    )}::json) as m(transaction_id text, group_seq integer, balance_before bigint, balance_after bigint)
    where l.transaction_id = m.transaction_id`.execute(rm.db);
}

function lineRow(accountId: string, l: BookLine): RecordsetRow<LedgerTables['statement_lines']> {
  return {
    transaction_id: l.id,
    account_id: accountId,
    event_id: l.eventId,
    instant: iso(l.instant),
    group_seq: l.seq,
    transaction_date: l.transactionDate,
    transaction_date_time: l.details.transactionDateTime,
    booking_date: l.details.bookingDate,
    amount: l.amount.toString(),
    running_balance: text(l.runningBalance),
    balance_before: text(l.before),
    balance_after: text(l.after),
    description: l.details.description,
    reference: l.details.reference,
    counter_account_number: l.details.counterAccountNumber,
    counter_account_name: l.details.counterAccountName,
    counter_account_bank_name: l.details.counterAccountBankName,
    virtual_account_number: l.details.virtualAccountNumber,
    virtual_account_name: l.details.virtualAccountName,
    payment_channel: l.details.paymentChannel,
    late: l.late,
    received_at: l.receivedAt,
    source: l.source,
    log_position: l.details.logPosition,
  };
}

async function writeBreaks(rm: ReadModel, accounts: readonly AccountChanges[]): Promise<void> {
  await upsert(
    rm,
    'breaks',
    accounts.flatMap(({ account: { accountId }, breaks }) =>
      breaks.map((b) => ({
        break_id: breakIdOf(accountId, b),
        account_id: accountId,
        after_transaction_id: b.afterTransactionId,
        before_transaction_id: b.beforeTransactionId,
        missing_amount: b.missingAmount.toString(),
        status: b.status,
        opened_at: b.openedAt,
        opened_by_event_id: b.openedByEventId,
        resolved_at: b.resolvedAt,
        resolved_by_event_id: b.resolvedByEventId,
        resolved_by_source: b.resolvedBySource,
        resolution: b.resolution,
        heal_attempts: 0,
        last_heal_at: null,
        last_heal_outcome: null,
        last_heal_detail: null,
        last_heal_event_id: null,
      })),
    ),
    sql`on conflict (break_id) do update set
      status = excluded.status, resolved_at = excluded.resolved_at, resolved_by_event_id = excluded.resolved_by_event_id,
      resolved_by_source = excluded.resolved_by_source, resolution = excluded.resolution`,
  );
}

async function writeAnomalies(rm: ReadModel, anomalies: readonly Anomaly[]): Promise<void> {
  await upsert(
    rm,
    'anomalies',
    anomalies.map((a) => ({
      anomaly_id: anomalyIdOf(a.kind, a.eventId),
      kind: a.kind,
      account_id: a.accountId,
      transaction_id: a.transactionId,
      event_id: a.eventId,
      received_at: a.receivedAt,
      source: a.source,
      details: a.details,
      log_position: a.position,
    })),
    sql`on conflict (anomaly_id) do nothing`,
  );
}

async function writeAccounts(rm: ReadModel, accounts: readonly AccountChanges[]): Promise<void> {
  await upsert(
    rm,
    'accounts',
    accounts.map(({ account: a }) => ({
      account_id: a.accountId,
      fi_id: a.fiId,
      fi_name: a.fiName,
      account_number: a.accountNumber,
      currency: a.currency,
      balance: text(a.balance),
      last_transaction_id: a.lastTransactionId,
      last_transaction_at: a.lastTransactionAt === null ? null : iso(a.lastTransactionAt),
      last_transaction_date_time: a.lastTransactionDateTime,
      line_count: a.lineCount.toString(),
      open_breaks: a.openBreaks,
      late_deliveries: a.lateDeliveries,
      grant_id: a.grantId,
      first_seen_at: a.firstSeenAt,
    })),
    sql`on conflict (account_id) do update set
      balance = excluded.balance, last_transaction_id = excluded.last_transaction_id,
      last_transaction_at = excluded.last_transaction_at, last_transaction_date_time = excluded.last_transaction_date_time,
      line_count = excluded.line_count, open_breaks = excluded.open_breaks, late_deliveries = excluded.late_deliveries,
      grant_id = coalesce(${rm.table('accounts')}.grant_id, excluded.grant_id)`,
  );
}

/** A heal attempt is counted once on its break, however often its event is replayed. */
async function recordHealAttempt(rm: ReadModel, heal: HealAttempt): Promise<void> {
  await rm.db
    .updateTable('breaks')
    .set((eb) => ({
      heal_attempts: eb('heal_attempts', '+', 1),
      last_heal_at: heal.at,
      last_heal_outcome: heal.outcome,
      last_heal_detail: heal.detail,
      last_heal_event_id: heal.eventId,
    }))
    .where('break_id', '=', heal.breakId)
    .where('last_heal_event_id', 'is distinct from', heal.eventId)
    .execute();
}

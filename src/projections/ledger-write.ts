import { type RawBuilder, sql } from 'kysely';
import { v5 as uuidv5 } from 'uuid';
import { DAY_MS, daysSince1970 } from '../domain/calendar';
import type { BookLine, BreakState } from './account-book';
import { copyLines, iso, LINE_COLUMNS, lineValues, text, type Value } from './ledger-copy';
import type { AccountChanges, Anomaly, HealAttempt, LedgerChanges } from './ledger-fold';
import type { ReadModel } from './read-model';
import { DATE_GAP_UNBOUNDED, type LedgerTables } from './tables';

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
async function upsert<T extends keyof LedgerTables, FromBase extends keyof LedgerTables[T] = never>(
  rm: ReadModel,
  table: T,
  rows: readonly RecordsetRow<Omit<LedgerTables[T], FromBase>>[],
  onConflict: RawBuilder<unknown>,
  /** A row of the table whose values fill the columns `rows` leave out (FromBase). */
  base: RawBuilder<unknown> = sql`null::${rm.table(table)}`,
): Promise<void> {
  if (rows.length === 0) return;
  const t = rm.table(table);
  await sql`insert into ${t} select * from json_populate_recordset(${base}, ${JSON.stringify(rows)}::json) ${onConflict}`.execute(rm.db);
}

/**
 * The account version this transaction writes: its transaction id, which no other transaction ever has (xid8 does
 * not wrap), so a version never comes back, even when a retry deletes an account's rows and writes them again.
 */
export const WRITING_VERSION = sql<string>`pg_current_xact_id()::text::bigint`;

/** A row as json_populate_recordset reads it: every column, as a JSON value (money and instants as text). */
type RecordsetRow<Table> = { readonly [Column in keyof Table]: string | number | boolean | null | Readonly<Record<string, string | null>> };

async function writeLines(rm: ReadModel, accounts: readonly AccountChanges[]): Promise<void> {
  // New lines are plain inserts (no speculative insertion); a line already stored only moves or changes balances.
  const count = accounts.reduce((n, a) => n + a.added.length, 0);
  if (count > 0 && rm.copyRows) {
    const { format, data } = copyLines(accounts, count);
    await rm.copyRows('statement_lines', LINE_COLUMNS, data, format);
  } else {
    const added = accounts.flatMap((a) => a.added.map((l) => recordOf(LINE_COLUMNS, lineValues(a.account.accountId, l))));
    await upsert(rm, 'statement_lines', added, sql``);
  }
  const moved = accounts.flatMap((a) => a.moved);
  if (moved.length === 0) return;
  await sql`
    update ${rm.table('statement_lines')} l set group_seq = m.group_seq, balance_before = m.balance_before, balance_after = m.balance_after
    from json_to_recordset(${JSON.stringify(
      moved.map((l) => ({ transaction_id: l.id, group_seq: l.seq, balance_before: text(l.before), balance_after: text(l.after) })),
    )}::json) as m(transaction_id text, group_seq integer, balance_before bigint, balance_after bigint)
    where l.transaction_id = m.transaction_id`.execute(rm.db);
}

/** Values in `columns` order as the row json_populate_recordset reads (where COPY is not available: PGlite). */
const recordOf = <Table>(columns: readonly (keyof Table & string)[], values: readonly Value[]): RecordsetRow<Table> =>
  Object.fromEntries(columns.map((c, i) => [c, values[i] ?? null])) as RecordsetRow<Table>;

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

/**
 * Every account whose lines, balances, breaks or late flags the batch changed has a row here (the fold returns one
 * per account it changed), so each gets the batch's version with its changes. An account the batch loaded from the
 * tables is updated with only the columns a batch changes (a follower's batch touches about one account per event,
 * and the columns that never change after the first line were most of each row's JSON); a new one is inserted whole.
 */
async function writeAccounts(rm: ReadModel, accounts: readonly AccountChanges[]): Promise<void> {
  const stored = accounts.filter((a) => a.stored);
  await updateAccounts(rm, stored);
  if (stored.length < accounts.length) await insertAccounts(rm, accounts.filter((a) => !a.stored));
}

/** What a batch changes in a stored account's row (see writeAccounts); the bank, number, currency and grant stay. */
async function updateAccounts(rm: ReadModel, accounts: readonly AccountChanges[]): Promise<void> {
  if (accounts.length === 0) return;
  const t = rm.table('accounts');
  const rows = accounts.map((changes) => ({ account_id: changes.account.accountId, ...batchColumns(changes) }));
  const result = await sql`
    update ${t} a set ${batchAssignments(sql`a`, sql`r`)}, version = ${WRITING_VERSION}
    from json_to_recordset(${JSON.stringify(rows)}::json) as r(
      account_id uuid, balance bigint, last_transaction_id text, last_transaction_at timestamptz, last_transaction_date_time text,
      line_count bigint, open_breaks integer, late_deliveries integer, date_ahead_days integer, date_behind_days integer)
    where a.account_id = r.account_id`.execute(rm.db);
  // The rows were loaded in this transaction (or remembered by a writer whose checkpoint version still holds).
  if (result.numAffectedRows !== undefined && Number(result.numAffectedRows) !== rows.length) {
    throw new Error(`accounts: ${rows.length - Number(result.numAffectedRows)} of ${rows.length} loaded accounts are no longer stored`);
  }
}

/** The columns of an account's row that a batch changes, as json_to_recordset and json_populate_record read them. */
const batchColumns = ({ account: a, added }: AccountChanges) => ({
  balance: text(a.balance),
  last_transaction_id: a.lastTransactionId,
  last_transaction_at: a.lastTransactionAt === null ? null : iso(a.lastTransactionAt),
  last_transaction_date_time: a.lastTransactionDateTime,
  line_count: a.lineCount.toString(),
  open_breaks: a.openBreaks,
  late_deliveries: a.lateDeliveries,
  ...dateGaps(added),
});

/**
 * The batch's columns set on a stored row (`stored`) from the batch's (`batch`): its figures replace the row's, the
 * date gaps only widen it.
 */
const batchAssignments = (stored: RawBuilder<unknown>, batch: RawBuilder<unknown>) => sql`
  balance = ${batch}.balance, last_transaction_id = ${batch}.last_transaction_id,
  last_transaction_at = ${batch}.last_transaction_at, last_transaction_date_time = ${batch}.last_transaction_date_time,
  line_count = ${batch}.line_count, open_breaks = ${batch}.open_breaks, late_deliveries = ${batch}.late_deliveries,
  date_ahead_days = greatest(${stored}.date_ahead_days, ${batch}.date_ahead_days),
  date_behind_days = greatest(${stored}.date_behind_days, ${batch}.date_behind_days)`;

async function insertAccounts(rm: ReadModel, accounts: readonly AccountChanges[]): Promise<void> {
  const t = rm.table('accounts');
  await upsert<'accounts', 'version'>(
    rm,
    'accounts',
    accounts.map((changes) => {
      const a = changes.account;
      const { accountId, fiId, fiName, accountNumber, currency, grantId, firstSeenAt } = a;
      return {
        account_id: accountId,
        fi_id: fiId,
        fi_name: fiName,
        account_number: accountNumber,
        currency,
        grant_id: grantId,
        first_seen_at: firstSeenAt,
        ...batchColumns(changes),
      };
    }),
    sql`on conflict (account_id) do update set ${batchAssignments(t, sql`excluded`)},
      grant_id = coalesce(${t}.grant_id, excluded.grant_id), version = excluded.version`,
    // The rows' JSON leaves `version` out: it comes from this base row.
    sql`json_populate_record(null::${t}, json_build_object('version', ${WRITING_VERSION}))`,
  );
}

/**
 * The widest gaps between the bank dates of lines added and their instants' UTC dates (tables.ts, AccountsTable): the
 * upsert keeps the greater of these and the account's. A line's instant and date never change once it is stored
 * (a later batch only moves its place in a group or its balances), so the lines added are all there is to look at.
 */
function dateGaps(added: readonly BookLine[]): { date_ahead_days: number; date_behind_days: number } {
  let ahead = 0;
  let behind = 0;
  for (const l of added) {
    const date = daysSince1970(l.transactionDate);
    const day = Math.floor(l.instant / DAY_MS);
    if (date === null || !Number.isFinite(day)) return { date_ahead_days: DATE_GAP_UNBOUNDED, date_behind_days: DATE_GAP_UNBOUNDED };
    ahead = Math.max(ahead, Math.min(DATE_GAP_UNBOUNDED, date - day));
    behind = Math.max(behind, Math.min(DATE_GAP_UNBOUNDED, day - date));
  }
  return { date_ahead_days: ahead, date_behind_days: behind };
}

/**
 * A heal attempt is counted once on its break, however often its event is replayed. A statement shows its open
 * breaks' healing, so the break's account takes a new version with it.
 */
async function recordHealAttempt(rm: ReadModel, heal: HealAttempt): Promise<void> {
  await rm.db
    .with('healed', (db) =>
      db
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
        .returning('account_id'),
    )
    .updateTable('accounts')
    .set({ version: WRITING_VERSION })
    .where('account_id', 'in', (eb) => eb.selectFrom('healed').select('healed.account_id'))
    .execute();
}

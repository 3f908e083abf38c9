import { type Kysely, sql } from 'kysely';
import { v5 as uuidv5 } from 'uuid';
import type { BankTransaction } from '../domain/bank-transaction';
import { isCalendarDate } from '../domain/calendar';
import { decodeEvent } from '../domain/event-codec';
import { healStreamId } from '../domain/events';
import { AccountBook, type BookLine, type BookLoader, type BreakState, type LineFacts, type StoredLine } from './account-book';
import { type AccountTableRow, createLedgerSchema, LEDGER_TABLES, type StatementLineRow } from './ledger-schema';
import type { EventSubject, Projection, ProjectionEvent, SubjectHistory } from './projection';

const NAMESPACE = '0d5f3c1e-2b7a-4c1d-8e9f-6a5b4c3d2e1f';

/** An account is (bank, number); its id is a name-based UUID of that pair: opaque, URL-safe, the same on rebuild. */
export const accountIdOf = (fiId: string, accountNumber: string): string => {
  const name = `account:${fiId}:${accountNumber}`;
  let id = accountIds.get(name);
  if (id === undefined) {
    id = uuidv5(name, NAMESPACE);
    if (accountIds.size >= 100_000) accountIds.clear(); // a bound, not an eviction policy: ids are cheap to redo
    accountIds.set(name, id);
  }
  return id;
};
/** Account ids are SHA-1 based and asked for on every event: the same few accounts come back all the time. */
const accountIds = new Map<string, string>();

const breakIdOf = (accountId: string, b: BreakState) =>
  uuidv5(`break:${accountId}:${b.afterTransactionId}:${b.beforeTransactionId}:${b.openedByEventId}`, NAMESPACE);
const anomalyIdOf = (kind: string, eventId: string) => uuidv5(`anomaly:${kind}:${eventId}`, NAMESPACE);

/** Lines loaded after each new transaction's instant before a batch starts; more are loaded only if needed. */
const WINDOW = 32;

type AccountRow = AccountTableRow;

type LineRow = StatementLineRow;

interface BreakRow {
  break_id: string;
  after_transaction_id: string;
  before_transaction_id: string;
  missing_amount: string;
  opened_at: Date;
  opened_by_event_id: string;
  account_id: string;
}

interface Anomaly {
  readonly kind: 'late' | 'conflict';
  readonly accountId: string;
  readonly transactionId: string;
  readonly eventId: string;
  readonly receivedAt: string;
  readonly source: string;
  readonly details: Record<string, string | null>;
  readonly position: string;
}

interface AccountState {
  row: AccountRow;
  book: AccountBook;
  lateAdded: number;
  touched: boolean;
}

/**
 * Balances, statement lines, breaks and anomalies from BalanceChanged and ConflictingDuplicateReceived events.
 * A batch is read around its new transactions in a few set-based queries, changed in memory (AccountBook),
 * and written back with one statement per table.
 */
export function createLedgerProjection(): Projection {
  return {
    name: 'ledger',
    version: 2,
    eventTypes: ['BalanceChanged', 'ConflictingDuplicateReceived', 'GapHealAttempted'],
    tables: LEDGER_TABLES,
    createSchema: createLedgerSchema,
    apply: (trx, schema, events) => applyBatch(trx, schema, events),
    subjectOf: ledgerSubjectOf,
    forget: forgetAccounts,
  };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The account a BalanceChanged, a conflicting repeat or a heal attempt concerns, read defensively: it may not decode. */
function ledgerSubjectOf(event: ProjectionEvent): EventSubject {
  const tx = event.data.transaction;
  if (tx !== null && typeof tx === 'object' && !Array.isArray(tx)) {
    const { fiId, accountNumber, transactionDate } = tx as Record<string, unknown>;
    return {
      subject: typeof fiId === 'string' && typeof accountNumber === 'string' ? accountIdOf(fiId, accountNumber) : null,
      transactionDate: typeof transactionDate === 'string' && isCalendarDate(transactionDate) ? transactionDate : null,
    };
  }
  const accountId = event.data.accountId;
  return { subject: typeof accountId === 'string' && UUID.test(accountId) ? accountId.toLowerCase() : null, transactionDate: null };
}

/**
 * Everything derived for some accounts: their lines, breaks, anomalies and account rows, and the conflicting repeats
 * of the transactions being retried (a repeat is filed under the account of the line it contradicts, which may only
 * exist once the retried event is applied). Heal attempts are read back from their streams (heal-<breakId>).
 */
async function forgetAccounts(
  trx: Kysely<any>,
  schema: string,
  subjects: readonly string[],
  retried: readonly ProjectionEvent[],
): Promise<SubjectHistory> {
  const s = sql.id(schema);
  const accounts = subjects.filter((id) => UUID.test(id));
  const txIds = retried.flatMap((e) => {
    const tx = e.data.transaction;
    const id = tx !== null && typeof tx === 'object' && !Array.isArray(tx) ? (tx as Record<string, unknown>).id : undefined;
    return typeof id === 'string' ? [id] : [];
  });
  const { rows: events } = await sql<{ event_id: string; log_position: string }>`
    select event_id, log_position from ${s}.statement_lines where account_id = any(${accounts}::uuid[])
    union
    select event_id, log_position from ${s}.anomalies
    where kind = 'conflict' and (account_id = any(${accounts}::uuid[]) or transaction_id = any(${txIds}::text[]))`.execute(trx);
  const { rows: healed } = await sql<{ break_id: string }>`
    select break_id from ${s}.breaks where account_id = any(${accounts}::uuid[]) and heal_attempts > 0`.execute(trx);
  await sql`delete from ${s}.statement_lines where account_id = any(${accounts}::uuid[])`.execute(trx);
  await sql`delete from ${s}.breaks where account_id = any(${accounts}::uuid[])`.execute(trx);
  await sql`
    delete from ${s}.anomalies
    where account_id = any(${accounts}::uuid[]) or (kind = 'conflict' and transaction_id = any(${txIds}::text[]))`.execute(trx);
  await sql`delete from ${s}.accounts where account_id = any(${accounts}::uuid[])`.execute(trx);
  return {
    events: events.map((r) => ({ eventId: r.event_id, position: r.log_position })),
    streams: healed.map((r) => healStreamId(r.break_id)),
  };
}

async function applyBatch(trx: Kysely<any>, schema: string, events: readonly ProjectionEvent[]): Promise<void> {
  const s = sql.id(schema);
  await applyLedgerEvents(trx, s, events.filter((e) => e.type !== 'GapHealAttempted'));
  // Heal attempts come after the transactions they recovered, so they are recorded after those are booked.
  for (const event of events) {
    const decoded = event.type === 'GapHealAttempted' ? decodeEvent(event.type, event.data) : null;
    if (decoded?.type !== 'GapHealAttempted') continue;
    await sql`
      update ${s}.breaks set heal_attempts = heal_attempts + 1, last_heal_at = ${new Date(receivedAtOf(event))},
        last_heal_outcome = ${decoded.data.outcome}, last_heal_detail = ${decoded.data.detail},
        last_heal_event_id = ${event.eventId}
      where break_id = ${decoded.data.breakId} and last_heal_event_id is distinct from ${event.eventId}`.execute(trx);
  }
}

async function applyLedgerEvents(trx: Kysely<any>, s: ReturnType<typeof sql.id>, events: readonly ProjectionEvent[]): Promise<void> {
  const items = events.flatMap((event) => {
    const decoded = decodeEvent(event.type, event.data);
    if (decoded?.type !== 'BalanceChanged' && decoded?.type !== 'ConflictingDuplicateReceived') return [];
    const tx = decoded.data.transaction;
    return [
      {
        event,
        kind: decoded.type,
        tx,
        accountId: accountIdOf(tx.fiId, tx.accountNumber),
        grantId: decoded.data.grantId,
        facts: factsOf(event, tx, decoded.data.source),
      },
    ];
  });
  if (items.length === 0) return;

  const booked = items.filter((i) => i.kind === 'BalanceChanged');
  const conflicts = items.filter((i) => i.kind === 'ConflictingDuplicateReceived');
  const accountIds = [...new Set(booked.map((i) => i.accountId))];

  const loader: BookLoader = {
    async linesAfter(accountId, position, limit) {
      const { rows } = await sql<LineRow>`
        select * from ${s}.statement_lines
        where account_id = ${accountId} and (instant, group_seq) > (${new Date(position.instant)}, ${position.seq})
        order by instant, group_seq limit ${limit}`.execute(trx);
      return rows.map(storedOf);
    },
  };

  // The runner is the only writer of its schema (advisory lock), so nothing here needs row locks.
  const accountRows = accountIds.length
    ? (await sql<AccountRow>`select * from ${s}.accounts where account_id = any(${accountIds}::uuid[])`.execute(trx)).rows
    : [];
  const known = new Map(accountRows.map((row) => [row.account_id, row]));
  // Live traffic mostly appends after an account's last line: then the last line is all the context needed.
  const earliest = new Map<string, number>();
  for (const i of booked) earliest.set(i.accountId, Math.min(earliest.get(i.accountId) ?? Infinity, i.facts.instant));
  const appendsOnly = new Set(
    accountIds.filter((id) => {
      const row = known.get(id);
      const last = row?.last_transaction_at?.getTime();
      return !row || (last !== undefined && earliest.get(id)! > last);
    }),
  );
  const tails = accountRows.filter((r) => appendsOnly.has(r.account_id) && r.last_transaction_id !== null);
  const withBreaks = accountRows.filter((r) => r.open_breaks > 0).map((r) => r.account_id);
  const [tailRows, islands, breakRows, conflictLines] = await Promise.all([
    tails.length
      ? sql<LineRow>`select * from ${s}.statement_lines where transaction_id = any(${tails.map((r) => r.last_transaction_id)}::text[])`.execute(trx)
      : { rows: [] as LineRow[] },
    loadIslands(trx, s, booked.filter((i) => !appendsOnly.has(i.accountId)).map((i) => ({ accountId: i.accountId, instant: i.facts.instant }))),
    withBreaks.length
      ? sql<BreakRow>`select * from ${s}.breaks where account_id = any(${withBreaks}::uuid[]) and status = 'open'`.execute(trx)
      : { rows: [] as BreakRow[] },
    conflicts.length
      ? sql<{ transaction_id: string; account_id: string }>`
          select transaction_id, account_id from ${s}.statement_lines
          where transaction_id = any(${conflicts.map((c) => c.tx.id)}::text[])`.execute(trx)
      : { rows: [] as { transaction_id: string; account_id: string }[] },
  ]);
  const accounts = new Map<string, AccountState>();
  for (const row of accountRows) {
    accounts.set(row.account_id, { row, book: new AccountBook(row.account_id, loader), lateAdded: 0, touched: false });
  }
  const stateOf = (tx: BankTransaction, accountId: string, event: ProjectionEvent, grantId: string | null): AccountState => {
    let state = accounts.get(accountId);
    if (!state) {
      state = {
        row: {
          account_id: accountId,
          fi_id: tx.fiId,
          fi_name: tx.fiName,
          account_number: tx.accountNumber,
          currency: tx.currency,
          balance: null,
          last_transaction_id: null,
          last_transaction_at: null,
          last_transaction_date_time: null,
          line_count: '0',
          open_breaks: 0,
          late_deliveries: 0,
          grant_id: grantId,
          first_seen_at: new Date(receivedAtOf(event)),
        },
        book: new AccountBook(accountId, loader),
        lateAdded: 0,
        touched: false,
      };
      accounts.set(accountId, state);
    }
    return state;
  };
  for (const tail of tailRows.rows) accounts.get(tail.account_id)?.book.addStored(storedOf(tail), [], true);
  for (const island of islands) {
    const state = accounts.get(island.accountId);
    state?.book.addStored(island.prev, island.from, island.from.length < WINDOW);
  }
  for (const row of breakRows.rows) {
    accounts.get(row.account_id)?.book.addOpenBreaks([
      {
        afterTransactionId: row.after_transaction_id,
        beforeTransactionId: row.before_transaction_id,
        missingAmount: BigInt(row.missing_amount),
        openedAt: row.opened_at.toISOString(),
        openedByEventId: row.opened_by_event_id,
        status: 'open',
        resolvedAt: null,
        resolvedByEventId: null,
        resolvedBySource: null,
        resolution: null,
        dirty: false,
      },
    ]);
  }

  const anomalies: Anomaly[] = [];
  const conflictAccount = new Map(conflictLines.rows.map((r) => [r.transaction_id, r.account_id]));
  for (const item of items) {
    if (item.kind === 'ConflictingDuplicateReceived') {
      const accountId = conflictAccount.get(item.tx.id) ?? item.accountId;
      anomalies.push({
        kind: 'conflict',
        accountId,
        transactionId: item.tx.id,
        eventId: item.event.eventId,
        receivedAt: item.facts.receivedAt,
        source: item.facts.source,
        details: {
          originalEventId: String(item.event.data.originalEventId ?? ''),
          amount: item.tx.amount.toString(),
          runningBalance: item.tx.runningBalance?.toString() ?? null,
          transactionDateTime: item.tx.transactionDateTime,
        },
        position: item.event.position,
      });
      continue;
    }
    const state = stateOf(item.tx, item.accountId, item.event, item.grantId);
    const outcome = await state.book.insert(item.facts);
    if (!outcome) continue;
    state.touched = true;
    if (outcome.late) {
      state.lateAdded += 1;
      const next = state.book.lines[state.book.lines.indexOf(outcome.line) + 1];
      anomalies.push({
        kind: 'late',
        accountId: state.row.account_id,
        transactionId: item.tx.id,
        eventId: item.event.eventId,
        receivedAt: item.facts.receivedAt,
        source: item.facts.source,
        details: { followingTransactionId: next?.id ?? null, transactionDateTime: item.tx.transactionDateTime },
        position: item.event.position,
      });
    }
  }

  const touched = [...accounts.values()].filter((a) => a.touched);
  await writeLines(trx, s, touched);
  await writeBreaks(trx, s, touched);
  await writeAnomalies(trx, s, anomalies);
  await writeAccounts(trx, s, touched);
}

function factsOf(event: ProjectionEvent, tx: BankTransaction, source: string): LineFacts {
  return {
    id: tx.id,
    eventId: event.eventId,
    instant: Date.parse(tx.transactionDateTime),
    amount: tx.amount,
    runningBalance: tx.runningBalance,
    transactionDate: tx.transactionDate,
    receivedAt: receivedAtOf(event),
    source,
    details: {
      transactionDateTime: tx.transactionDateTime,
      bookingDate: tx.bookingDate,
      description: tx.description,
      reference: tx.reference,
      counterAccountNumber: tx.counterAccountNumber,
      counterAccountName: tx.counterAccountName,
      counterAccountBankName: tx.counterAccountBankName,
      virtualAccountNumber: tx.virtualAccountNumber,
      virtualAccountName: tx.virtualAccountName,
      paymentChannel: tx.paymentChannel,
      logPosition: event.position,
    },
  };
}

/** When Cas's delivery reached us; the log's own timestamp for events written before receivedAt existed. */
const ISO_UTC = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

function receivedAtOf(event: ProjectionEvent): string {
  const stated = event.metadata.receivedAt;
  if (typeof stated !== 'string') return event.recordedAt.toISOString();
  return ISO_UTC.test(stated) ? stated : new Date(stated).toISOString();
}

function storedOf(row: LineRow): StoredLine & { accountId: string } {
  return {
    accountId: row.account_id,
    id: row.transaction_id,
    eventId: row.event_id,
    instant: row.instant.getTime(),
    amount: BigInt(row.amount),
    runningBalance: row.running_balance === null ? null : BigInt(row.running_balance),
    transactionDate: row.transaction_date,
    receivedAt: row.received_at.toISOString(),
    source: row.source,
    seq: row.group_seq,
    before: row.balance_before === null ? null : BigInt(row.balance_before),
    after: row.balance_after === null ? null : BigInt(row.balance_after),
    late: row.late,
    details: {
      transactionDateTime: row.transaction_date_time,
      bookingDate: row.booking_date,
      description: row.description,
      reference: row.reference,
      counterAccountNumber: row.counter_account_number,
      counterAccountName: row.counter_account_name,
      counterAccountBankName: row.counter_account_bank_name,
      virtualAccountNumber: row.virtual_account_number,
      virtualAccountName: row.virtual_account_name,
      paymentChannel: row.payment_channel,
      logPosition: row.log_position,
    },
  };
}

/** For each new transaction: the line before its instant and up to WINDOW lines from its instant on. */
async function loadIslands(trx: Kysely<any>, s: ReturnType<typeof sql.id>, probes: { accountId: string; instant: number }[]) {
  const unique = [...new Map(probes.map((p) => [`${p.accountId}@${p.instant}`, p])).values()];
  if (unique.length === 0) return [];
  const { rows } = await sql<LineRow & { probe: string; role: 'prev' | 'from' }>`
    with probe as (
      select * from unnest(${unique.map((p) => p.accountId)}::uuid[], ${unique.map((p) => new Date(p.instant))}::timestamptz[])
        with ordinality as p(account_id, instant, n)
    )
    select p.n as probe, 'prev' as role, l.* from probe p cross join lateral (
      select * from ${s}.statement_lines l where l.account_id = p.account_id and l.instant < p.instant
      order by l.instant desc, l.group_seq desc limit 1) l
    union all
    select p.n, 'from', l.* from probe p cross join lateral (
      select * from ${s}.statement_lines l where l.account_id = p.account_id and l.instant >= p.instant
      order by l.instant, l.group_seq limit ${WINDOW}) l`.execute(trx);
  return unique.map((probe, i) => {
    const mine = rows.filter((r) => Number(r.probe) === i + 1);
    const prevRow = mine.find((r) => r.role === 'prev');
    const from = mine
      .filter((r) => r.role === 'from')
      .map(storedOf)
      .sort((a, b) => a.instant - b.instant || a.seq - b.seq);
    return { accountId: probe.accountId, prev: prevRow ? storedOf(prevRow) : null, from };
  });
}

/**
 * Writes a batch's rows of one table in one statement. One JSON parameter per statement costs far less than one
 * array per column (measured: the projection ran about twice as fast), and the table's own row type names the
 * columns. Money goes in as decimal strings.
 */
async function upsert(
  trx: Kysely<any>,
  s: ReturnType<typeof sql.id>,
  table: string,
  rows: readonly Record<string, string | number | boolean | null | Readonly<Record<string, string | null>>>[],
  onConflict: ReturnType<typeof sql>,
): Promise<void> {
  if (rows.length === 0) return;
  const t = sql`${s}.${sql.id(table)}`;
  await sql`insert into ${t} select * from json_populate_recordset(null::${t}, ${JSON.stringify(rows)}::json) ${onConflict}`.execute(trx);
}

const text = (v: bigint | null) => (v === null ? null : v.toString());
const iso = (ms: number) => new Date(ms).toISOString();

async function writeLines(trx: Kysely<any>, s: ReturnType<typeof sql.id>, accounts: AccountState[]) {
  const dirty = accounts.flatMap((a) => a.book.lines.filter((l) => l.dirty).map((l) => ({ accountId: a.row.account_id, l })));
  // New lines are plain inserts (no speculative insertion); a line already stored only moves or changes balances.
  await upsert(
    trx,
    s,
    'statement_lines',
    dirty.filter(({ l }) => !l.stored).map(({ accountId, l }) => lineRow(accountId, l)),
    sql``,
  );
  const moved = dirty.filter(({ l }) => l.stored);
  if (moved.length > 0) {
    await sql`
      update ${s}.statement_lines l set group_seq = m.group_seq, balance_before = m.balance_before, balance_after = m.balance_after
      from json_to_recordset(${JSON.stringify(
        moved.map(({ l }) => ({ transaction_id: l.id, group_seq: l.seq, balance_before: text(l.before), balance_after: text(l.after) })),
      )}::json) as m(transaction_id text, group_seq integer, balance_before bigint, balance_after bigint)
      where l.transaction_id = m.transaction_id`.execute(trx);
  }
  for (const { l } of dirty) l.dirty = false;
}

function lineRow(accountId: string, l: BookLine) {
  return {
    transaction_id: l.id,
    account_id: accountId,
    event_id: l.eventId,
    instant: iso(l.instant),
    group_seq: l.seq,
    transaction_date: l.transactionDate,
    transaction_date_time: l.details.transactionDateTime ?? null,
    booking_date: l.details.bookingDate ?? null,
    amount: l.amount.toString(),
    running_balance: text(l.runningBalance),
    balance_before: text(l.before),
    balance_after: text(l.after),
    description: l.details.description ?? null,
    reference: l.details.reference ?? null,
    counter_account_number: l.details.counterAccountNumber ?? null,
    counter_account_name: l.details.counterAccountName ?? null,
    counter_account_bank_name: l.details.counterAccountBankName ?? null,
    virtual_account_number: l.details.virtualAccountNumber ?? null,
    virtual_account_name: l.details.virtualAccountName ?? null,
    payment_channel: l.details.paymentChannel ?? null,
    late: l.late,
    received_at: l.receivedAt,
    source: l.source,
    log_position: l.details.logPosition ?? null,
  };
}

async function writeBreaks(trx: Kysely<any>, s: ReturnType<typeof sql.id>, accounts: AccountState[]) {
  const rows = accounts.flatMap((a) =>
    [...a.book.openBreaks, ...a.book.closedBreaks].filter((b) => b.dirty).map((b) => ({ accountId: a.row.account_id, b })),
  );
  await upsert(
    trx,
    s,
    'breaks',
    rows.map(({ accountId, b }) => ({
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
    sql`on conflict (break_id) do update set
      status = excluded.status, resolved_at = excluded.resolved_at, resolved_by_event_id = excluded.resolved_by_event_id,
      resolved_by_source = excluded.resolved_by_source, resolution = excluded.resolution`,
  );
  for (const { b } of rows) b.dirty = false;
}

async function writeAnomalies(trx: Kysely<any>, s: ReturnType<typeof sql.id>, anomalies: Anomaly[]) {
  await upsert(
    trx,
    s,
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

async function writeAccounts(trx: Kysely<any>, s: ReturnType<typeof sql.id>, accounts: AccountState[]) {
  await upsert(
    trx,
    s,
    'accounts',
    accounts.map(({ row, book, lateAdded }) => {
      const tail = book.tail();
      return {
        account_id: row.account_id,
        fi_id: row.fi_id,
        fi_name: row.fi_name,
        account_number: row.account_number,
        currency: row.currency,
        balance: tail ? text(tail.after) : row.balance,
        last_transaction_id: tail ? tail.id : row.last_transaction_id,
        last_transaction_at: tail ? iso(tail.instant) : (row.last_transaction_at?.toISOString() ?? null),
        last_transaction_date_time: tail ? (tail.details.transactionDateTime ?? null) : row.last_transaction_date_time,
        line_count: (BigInt(row.line_count) + BigInt(book.inserted)).toString(),
        open_breaks: book.openBreakCount,
        late_deliveries: row.late_deliveries + lateAdded,
        grant_id: row.grant_id,
        first_seen_at: row.first_seen_at.toISOString(),
      };
    }),
    sql`on conflict (account_id) do update set
      balance = excluded.balance, last_transaction_id = excluded.last_transaction_id,
      last_transaction_at = excluded.last_transaction_at, last_transaction_date_time = excluded.last_transaction_date_time,
      line_count = excluded.line_count, open_breaks = excluded.open_breaks, late_deliveries = excluded.late_deliveries,
      grant_id = coalesce(${s}.accounts.grant_id, excluded.grant_id)`,
  );
}

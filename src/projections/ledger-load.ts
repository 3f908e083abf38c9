import { type Selectable, sql } from 'kysely';
import type { LinesWanted, StoredLine, StoredRun } from './account-book';
import {
  type AccountContext,
  type AccountState,
  bookedAccounts,
  continuationRun,
  islandRun,
  type LedgerBatch,
  type LedgerContext,
  type LoadPlan,
  planLoads,
  type StoredBreak,
  WINDOW,
} from './ledger-fold';
import type { KnownAccount } from './ledger-warm';
import type { ReadModel } from './read-model';
import type { AccountsTable, BreaksTable, StatementLinesTable } from './tables';

/**
 * The ledger fold's load step: what a batch needs, read explicitly before the fold runs — the accounts' rows, then
 * in one round of set-based queries their tails or the lines around late arrivals, their open breaks and the lines
 * that conflicting repeats contradict — and, between rounds of the fold, the lines it asks for. The runner is the
 * only writer of its schema (advisory lock), so nothing here takes row locks. Accounts in `known` (remembered by a
 * warm writer from its earlier batches, ledger-warm.ts) are not read again: their rows, and their last lines when
 * the batch only appends to them.
 */
export async function loadLedgerContext(rm: ReadModel, batch: LedgerBatch, known: ReadonlyMap<string, KnownAccount> = new Map()): Promise<LedgerContext> {
  const ids = bookedAccounts(batch);
  const unknown = ids.filter((id) => !known.has(id));
  const rows = unknown.length > 0 ? await rm.db.selectFrom('accounts').selectAll().where('account_id', '=', (eb) => eb.fn.any(eb.val(unknown))).execute() : [];
  const states = new Map(rows.map((row) => [row.account_id, accountStateOf(row)]));
  for (const id of ids) {
    const state = known.get(id)?.state;
    if (state) states.set(id, state);
  }
  const plan = planLoads(batch, states);
  const [tails, islands, breaks, conflicts] = await Promise.all([
    loadTails(rm, plan, known),
    loadIslands(rm, plan),
    loadOpenBreaks(rm, plan),
    plan.conflicts.length > 0
      ? rm.db
          .selectFrom('statement_lines')
          .select(['transaction_id', 'account_id'])
          .where('transaction_id', '=', (eb) => eb.fn.any(eb.val([...plan.conflicts])))
          .execute()
      : [],
  ]);
  const accounts = new Map<string, { state: AccountState | null; runs: StoredRun[]; openBreaks: StoredBreak[] }>(
    ids.map((id) => [id, { state: states.get(id) ?? null, runs: [], openBreaks: [] }]),
  );
  for (const { accountId, run } of [...tails, ...islands]) accounts.get(accountId)?.runs.push(run);
  for (const { accountId, open } of breaks) accounts.get(accountId)?.openBreaks.push(open);
  return {
    accounts: accounts as ReadonlyMap<string, AccountContext>,
    linesOfConflicts: new Map(conflicts.map((r) => [r.transaction_id, r.account_id])),
  };
}

/** For each request of the fold: the line it names and up to `limit` lines after it, in one statement. */
export async function loadWantedLines(rm: ReadModel, wanted: readonly LinesWanted[]): Promise<{ accountId: string; run: StoredRun }[]> {
  const lines = rm.table('statement_lines');
  const { rows } = await sql<LineRow & { wanted: string }>`
    with wanted as (
      select * from unnest(${wanted.map((w) => w.afterTransactionId)}::text[], ${wanted.map((w) => w.limit + 1)}::int[])
        with ordinality as w(transaction_id, lim, n)
    )
    select w.n as wanted, l.* from wanted w
    join ${lines} f on f.transaction_id = w.transaction_id
    cross join lateral (
      select * from ${lines} l where l.account_id = f.account_id and (l.instant, l.group_seq) >= (f.instant, f.group_seq)
      order by l.instant, l.group_seq limit w.lim) l`.execute(rm.db);
  const byRequest = groupBy(rows, (r) => Number(r.wanted));
  return wanted.flatMap((w, i) => {
    const [after, ...more] = linesOf(byRequest.get(i + 1) ?? []);
    return after ? [{ accountId: w.accountId, run: continuationRun(after, more, w) }] : [];
  });
}

type LineRow = Selectable<StatementLinesTable>;

/** The last line of each account the batch appends to: remembered from an earlier batch, else read. */
async function loadTails(rm: ReadModel, plan: LoadPlan, known: ReadonlyMap<string, KnownAccount>): Promise<{ accountId: string; run: StoredRun }[]> {
  const tails: { accountId: string; run: StoredRun }[] = [];
  const unknown: string[] = [];
  for (const { accountId, transactionId } of plan.tails) {
    const tail = known.get(accountId)?.tail;
    if (tail?.id === transactionId) tails.push({ accountId, run: { lines: [tail], complete: true } });
    else unknown.push(transactionId);
  }
  if (unknown.length === 0) return tails;
  const rows = await rm.db
    .selectFrom('statement_lines')
    .selectAll()
    .where('transaction_id', '=', (eb) => eb.fn.any(eb.val(unknown)))
    .execute();
  for (const row of rows) tails.push({ accountId: row.account_id, run: { lines: [storedLineOf(row)], complete: true } });
  return tails;
}

/** For each new transaction that is not an append: the line before its instant and up to WINDOW lines from it on. */
async function loadIslands(rm: ReadModel, plan: LoadPlan): Promise<{ accountId: string; run: StoredRun }[]> {
  if (plan.islands.length === 0) return [];
  const lines = rm.table('statement_lines');
  const { rows } = await sql<LineRow & { probe: string; role: 'prev' | 'from' }>`
    with probe as (
      select * from unnest(${plan.islands.map((p) => p.accountId)}::uuid[], ${plan.islands.map((p) => new Date(p.instant))}::timestamptz[])
        with ordinality as p(account_id, instant, n)
    )
    select p.n as probe, 'prev' as role, l.* from probe p cross join lateral (
      select * from ${lines} l where l.account_id = p.account_id and l.instant < p.instant
      order by l.instant desc, l.group_seq desc limit 1) l
    union all
    select p.n, 'from', l.* from probe p cross join lateral (
      select * from ${lines} l where l.account_id = p.account_id and l.instant >= p.instant
      order by l.instant, l.group_seq limit ${WINDOW}) l`.execute(rm.db);
  const byProbe = groupBy(rows, (r) => Number(r.probe));
  return plan.islands.map((probe, i) => {
    const mine = byProbe.get(i + 1) ?? [];
    const prev = mine.find((r) => r.role === 'prev');
    const from = linesOf(mine.filter((r) => r.role === 'from'));
    return { accountId: probe.accountId, run: islandRun(prev ? storedLineOf(prev) : null, from) };
  });
}

async function loadOpenBreaks(rm: ReadModel, plan: LoadPlan): Promise<{ accountId: string; open: StoredBreak }[]> {
  if (plan.breaks.length === 0) return [];
  const rows = await rm.db
    .selectFrom('breaks')
    .selectAll()
    .where('account_id', '=', (eb) => eb.fn.any(eb.val([...plan.breaks])))
    .where('status', '=', 'open')
    .execute();
  return rows.map((row) => ({ accountId: row.account_id, open: storedBreakOf(row) }));
}

function groupBy<T, K>(items: readonly T[], key: (item: T) => K): Map<K, T[]> {
  const groups = new Map<K, T[]>();
  for (const item of items) {
    const k = key(item);
    const group = groups.get(k);
    if (group) group.push(item);
    else groups.set(k, [item]);
  }
  return groups;
}

/** Lines in statement order. */
const linesOf = (rows: readonly LineRow[]): StoredLine[] =>
  rows.map(storedLineOf).sort((a, b) => a.instant - b.instant || a.seq - b.seq);

function accountStateOf(row: Selectable<AccountsTable>): AccountState {
  return {
    accountId: row.account_id,
    fiId: row.fi_id,
    fiName: row.fi_name,
    accountNumber: row.account_number,
    currency: row.currency,
    grantId: row.grant_id,
    firstSeenAt: row.first_seen_at.toISOString(),
    balance: row.balance === null ? null : BigInt(row.balance),
    lastTransactionId: row.last_transaction_id,
    lastTransactionAt: row.last_transaction_at?.getTime() ?? null,
    lastTransactionDateTime: row.last_transaction_date_time,
    lineCount: BigInt(row.line_count),
    openBreaks: row.open_breaks,
    lateDeliveries: row.late_deliveries,
  };
}

const bigintOrNull = (v: string | null): bigint | null => (v === null ? null : BigInt(v));

function storedLineOf(row: LineRow): StoredLine {
  return {
    id: row.transaction_id,
    eventId: row.event_id,
    instant: row.instant.getTime(),
    amount: BigInt(row.amount),
    runningBalance: bigintOrNull(row.running_balance),
    transactionDate: row.transaction_date,
    receivedAt: row.received_at.toISOString(),
    source: row.source,
    seq: row.group_seq,
    before: bigintOrNull(row.balance_before),
    after: bigintOrNull(row.balance_after),
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

function storedBreakOf(row: Selectable<BreaksTable>): StoredBreak {
  return {
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
  };
}

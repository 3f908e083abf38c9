import { createHash } from 'node:crypto';
import { CompiledQuery, type RawBuilder, type Selectable, sql } from 'kysely';
import { fromMicros, micros, type Page, pageOf } from './paging';
import type { ReadModel } from './read-model';
import { type AccountsTable, type BreaksTable, DATE_GAP_UNBOUNDED } from './tables';

/**
 * Money as PostgreSQL writes a bigint: an exact decimal string of whole đồng. The queries hand it on as it comes,
 * since nothing on the way to a JSON answer (itself a decimal string) computes with it.
 */
export type MoneyText = string;

/** Where the ledger's read models live (the projection's schema; renamed whole by a rebuild). */
export interface ReadModels extends ReadModel {
  /**
   * True on embedded PGlite: one connection serves the whole process, so a read must never hold it (in a
   * transaction) while it waits for a client.
   */
  readonly singleConnection?: boolean;
}

export interface AccountView {
  readonly id: string;
  readonly fiId: string;
  readonly fiName: string | null;
  readonly accountNumber: string;
  readonly currency: string;
  readonly balance: MoneyText | null;
  /** transactionDateTime of the account's last line in statement order, as the bank sent it (with its offset). */
  readonly lastTransactionAt: string | null;
  readonly openBreaks: number;
  readonly lateDeliveries: number;
  /** Events of this account the projection could not apply (set aside; `ledger parked list`). */
  readonly parkedEvents: number;
}

export interface LineView {
  readonly transactionId: string;
  readonly eventId: string;
  readonly transactionDate: string;
  readonly transactionDateTime: string;
  readonly bookingDate: string | null;
  readonly amount: MoneyText;
  /** As the bank sent it; null when it sent none (the balances are then carried from the line before). */
  readonly runningBalance: MoneyText | null;
  readonly balanceBefore: MoneyText | null;
  readonly balanceAfter: MoneyText | null;
  readonly description: string | null;
  readonly reference: string | null;
  readonly counterAccountNumber: string | null;
  readonly counterAccountName: string | null;
  readonly counterAccountBankName: string | null;
  readonly virtualAccountNumber: string | null;
  readonly late: boolean;
}

export interface BreakView {
  readonly id: string;
  readonly accountId: string;
  readonly afterTransactionId: string;
  readonly beforeTransactionId: string;
  readonly missingAmount: MoneyText;
  readonly status: 'open' | 'resolved';
  readonly openedAt: string;
  readonly resolvedAt: string | null;
  readonly resolution: string | null;
  readonly resolvedBySource: string | null;
  readonly healing: {
    readonly attempts: number;
    readonly lastAttemptAt: string | null;
    readonly lastOutcome: string | null;
    readonly lastDetail: string | null;
  };
}

export interface AnomalyView {
  readonly kind: 'late' | 'conflict';
  readonly accountId: string;
  readonly transactionId: string;
  readonly receivedAt: string;
  readonly eventId: string;
  readonly source: string;
  readonly details: Readonly<Record<string, string | null>>;
}

/** A position in statement order: lines strictly after it come next. */
export interface StatementCursor {
  readonly instant: Date;
  readonly seq: number;
}

export interface StatementQuery {
  /** Bank-local dates YYYY-MM-DD, both included. */
  readonly from: string;
  readonly to: string;
  /** Lines per page; `all` for every line of the period (CSV). */
  readonly limit: number | 'all';
  readonly cursor: StatementCursor | null;
}

export interface Statement {
  readonly account: AccountView;
  readonly from: string;
  readonly to: string;
  readonly openingBalance: MoneyText | null;
  readonly closingBalance: MoneyText | null;
  readonly totalCredits: MoneyText;
  readonly totalDebits: MoneyText;
  readonly lineCount: number;
  readonly reconciled: boolean;
  /** Parked BalanceChanged events of the account that touch the period: while any is, it is not reconciled. */
  readonly parkedEvents: number;
  readonly digest: string;
  readonly breaks: readonly BreakView[];
  readonly lines: readonly LineView[];
  readonly nextCursor: string | null;
  /** The period's last line in statement order, its instant as PostgreSQL wrote it (null without lines): where an export stops. */
  readonly lastLine: { readonly instant: string; readonly seq: number } | null;
  /** The account's version in the statement's own snapshot: what a cached copy is valid for (null: do not cache). */
  readonly version: StatementVersion | null;
}

export interface DigestInput {
  readonly lines: readonly {
    readonly eventId: string;
    readonly amount: bigint;
    readonly balanceBefore: bigint | null;
    readonly balanceAfter: bigint | null;
  }[];
  readonly openingBalance: bigint | null;
  readonly closingBalance: bigint | null;
}

const DIGEST_TAG = 'ledger-statement-v1';

/**
 * SHA-256 (hex) of a statement's canonical content, for the whole period. The bytes: the ASCII tag
 * `ledger-statement-v1`, the number of lines (int64), then per line in statement order the event id (16 bytes),
 * the amount (int64) and the balances before and after; then the opening and closing balances. Integers are
 * big-endian two's complement; a balance is 0x01 + int64, or 0x00 when unknown. Pure, so that an auditor can
 * recompute it from the events; the statement query builds the same bytes in SQL.
 */
export function statementDigest({ lines, openingBalance, closingBalance }: DigestInput): string {
  const int64 = (v: bigint) => {
    const b = Buffer.alloc(8);
    b.writeBigInt64BE(v);
    return b;
  };
  const balance = (v: bigint | null) => (v === null ? Buffer.of(0) : Buffer.concat([Buffer.of(1), int64(v)]));
  const hash = createHash('sha256').update(DIGEST_TAG, 'ascii').update(int64(BigInt(lines.length)));
  for (const line of lines) {
    if (!UUID.test(line.eventId)) throw new Error(`not an event id: ${line.eventId}`);
    hash.update(Buffer.from(line.eventId.replaceAll('-', ''), 'hex'));
    hash.update(int64(line.amount)).update(balance(line.balanceBefore)).update(balance(line.balanceAfter));
  }
  return hash.update(balance(openingBalance)).update(balance(closingBalance)).digest('hex');
}

export function encodeCursor(cursor: StatementCursor): string {
  return Buffer.from(`${cursor.instant.toISOString()}~${cursor.seq}`, 'utf8').toString('base64url');
}

/** The position a cursor names, or null when it is not one this API wrote. */
export function decodeCursor(text: string): StatementCursor | null {
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(text)) return null;
  const match = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)~(0|[1-9]\d{0,8})$/.exec(Buffer.from(text, 'base64url').toString('utf8'));
  if (!match) return null;
  const instant = new Date(match[1]!);
  if (Number.isNaN(instant.getTime()) || instant.toISOString() !== match[1]) return null;
  const cursor = { instant, seq: Number.parseInt(match[2]!, 10) };
  return encodeCursor(cursor) === text ? cursor : null;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Account ids are opaque: anything that is not one of ours is simply unknown (never an SQL cast error). */
const isAccountId = (id: string) => UUID.test(id);
const bigintOf = (v: MoneyText | null): bigint | null => (v === null ? null : BigInt(v));

type AccountRow = Pick<
  Selectable<AccountsTable>,
  'account_id' | 'fi_id' | 'fi_name' | 'account_number' | 'currency' | 'balance' | 'last_transaction_date_time' | 'open_breaks' | 'late_deliveries'
> & { parked_events: number | null };

/** The same count in raw SQL, for the statement query. */
const parkedOf = (rm: ReadModel, accountId: RawBuilder<unknown>) =>
  sql`(select count(*)::int from ${rm.table('parked_events')} p where p.subject = (${accountId})::text)`;

const selectAccounts = ({ db }: ReadModel) =>
  db
    .selectFrom('accounts as a')
    .select(['a.account_id', 'a.fi_id', 'a.fi_name', 'a.account_number', 'a.currency', 'a.balance', 'a.last_transaction_date_time', 'a.open_breaks', 'a.late_deliveries'])
    // The account's parked events, beside its row.
    .select((eb) =>
      eb
        .selectFrom('parked_events as p')
        .select(sql<number>`count(*)::int`.as('n'))
        .where('p.subject', '=', eb.cast<string>('a.account_id', 'text'))
        .as('parked_events'),
    );

const accountOf = (r: AccountRow): AccountView => ({
  id: r.account_id,
  fiId: r.fi_id,
  fiName: r.fi_name,
  accountNumber: r.account_number,
  currency: r.currency,
  balance: r.balance,
  lastTransactionAt: r.last_transaction_date_time,
  openBreaks: r.open_breaks,
  lateDeliveries: r.late_deliveries,
  parkedEvents: r.parked_events ?? 0,
});

/** Where a page starts: after this sort key (from the previous page), or at the beginning. */
export interface PageQuery {
  readonly limit: number;
  readonly after: readonly string[] | null;
}

/** The sort keys of the listings, part by part (paging.ts checks a cursor's parts against them). */
export const ACCOUNTS_KEY = ['text', 'text', 'uuid'] as const;
export const BREAKS_KEY = ['text', 'micros', 'uuid'] as const;
export const ANOMALIES_KEY = ['micros', 'uuid'] as const;

/** Accounts in (fi_id, account_number, account_id) order, a page at a time. */
export async function listAccounts(rm: ReadModel, page: PageQuery): Promise<Page<AccountView>> {
  const after = page.after;
  const rows = await selectAccounts(rm)
    .$if(after !== null, (q) =>
      q.where((eb) => eb(eb.refTuple('a.fi_id', 'a.account_number', 'a.account_id'), '>', eb.tuple(after![0]!, after![1]!, after![2]!))),
    )
    .orderBy('a.fi_id')
    .orderBy('a.account_number')
    .orderBy('a.account_id')
    .limit(page.limit + 1)
    .execute();
  return pageOf(rows, page.limit, accountOf, (r) => [r.fi_id, r.account_number, r.account_id]);
}

export async function getAccount(rm: ReadModel, accountId: string): Promise<AccountView | null> {
  if (!isAccountId(accountId)) return null;
  const row = await selectAccounts(rm).where('a.account_id', '=', accountId).executeTakeFirst();
  return row ? accountOf(row) : null;
}

/** after(t) of the last line in statement order whose instant is at or before `at`; null for an unknown account. */
export async function balanceAt(
  rm: ReadModel,
  accountId: string,
  at: Date,
): Promise<{ balance: MoneyText | null; transactionId: string | null } | null> {
  if (!isAccountId(accountId)) return null;
  // One statement: the account's existence and its line at `at` from one snapshot.
  const { rows } = await sql<{ known: boolean; transaction_id: string | null; balance_after: string | null }>`
    select exists (select 1 from ${rm.table('accounts')} where account_id = ${accountId}) as known, l.transaction_id, l.balance_after::text
    from (select 1) one left join lateral (
      select transaction_id, balance_after from ${rm.table('statement_lines')}
      where account_id = ${accountId} and instant <= ${at}
      order by instant desc, group_seq desc limit 1) l on true`.execute(rm.db);
  const row = rows[0]!;
  if (!row.known) return null;
  return { balance: row.balance_after, transactionId: row.transaction_id };
}

/**
 * One account's statement for the bank-local dates [from, to]. Every figure (opening, closing, totals, reconciled,
 * digest, breaks) covers the whole period; only `lines` is a page. It is ONE statement: one round trip, and one
 * snapshot, so the page, the totals and the digest describe the same state of the read model.
 * Cost: one pass over the period's lines (the instant index between the bounds the account's date gaps give), one
 * page read in order from the instant index, and one-row probes; never the account's whole history.
 */
export async function statement(rm: ReadModel, accountId: string, query: StatementQuery): Promise<Statement | null> {
  const page = await statementPage(rm, accountId, query);
  if (!page) return null;
  const { pageLines, ...figures } = page;
  // The SQL wrote each line with LineView's keys and formats.
  return { ...figures, lines: pageLines.map((line) => JSON.parse(line) as LineView) };
}

/** A statement whose page of lines is JSON as PostgreSQL wrote it: each line a LineView (compact, keys in LineView's order), in order. */
export interface StatementPage extends Omit<Statement, 'lines'> {
  readonly pageLines: readonly string[];
}

/**
 * statement(), with each of the page's lines left as the JSON text PostgreSQL built: the JSON answer splices them in,
 * so that Node neither parses a page of lines into objects nor writes them out again.
 */
export async function statementPage(rm: ReadModel, accountId: string, query: StatementQuery): Promise<StatementPage | null> {
  if (!isAccountId(accountId)) return null;
  const { from, to, cursor } = query;
  const page = query.limit === 'all' ? null : query.limit;
  const compiled = statementQueryOf(rm, page !== null, cursor !== null);
  const values: StatementValues = {
    accountId,
    from,
    to,
    page,
    pageAndOne: page === null ? null : page + 1,
    cursorInstant: cursor?.instant ?? null,
    cursorSeq: cursor?.seq ?? null,
  };
  const { rows } = await rm.db.executeQuery<StatementRow>(
    CompiledQuery.raw(compiled.sql, compiled.parameters.map((p) => (p instanceof Slot ? values[p.name] : p))),
  );
  const { row, pageLines, next } = figuresAndLines(rows);
  if (!row.account) return null;
  const { read_model: readModel, version } = row.account;
  const p = row.summary;
  const first = p.line_count > 0;
  const openingBalance = first ? p.first_before : row.has_before ? row.before : null;
  const closingBalance = first ? p.last_after : openingBalance;
  // A link needs both balances known and equal: an unknown balance cannot be reconciled.
  const reconciled =
    row.parked === 0 && p.lines_link && (!first || !row.has_before || (row.before !== null && row.before === p.first_before));
  const nextCursor = next ? encodeCursor({ instant: new Date(next.instant), seq: next.seq }) : null;
  return {
    account: accountOf(row.account),
    from,
    to,
    openingBalance,
    closingBalance,
    totalCredits: p.total_credits,
    totalDebits: p.total_debits,
    lineCount: p.line_count,
    reconciled,
    parkedEvents: row.parked,
    // Only a period without lines has no digest from SQL: its bytes are the two balances.
    digest: p.digest ?? statementDigest({ lines: [], openingBalance: bigintOf(openingBalance), closingBalance: bigintOf(closingBalance) }),
    breaks: (row.breaks ?? []).map((b) => breakOf({ ...b, opened_at: new Date(b.opened_at), resolved_at: b.resolved_at ? new Date(b.resolved_at) : null, last_heal_at: b.last_heal_at ? new Date(b.last_heal_at) : null })),
    pageLines,
    nextCursor,
    lastLine: p.last_instant === null || p.last_seq === null ? null : { instant: p.last_instant, seq: p.last_seq },
    version: version === null ? null : { readModel, version },
  };
}

/**
 * The statement query's rows: the figures' row, and the page's lines put in order (each row says its place). A line
 * row without its line is the one after the page: then the page's last line's key is where the next page starts.
 */
export function figuresAndLines(rows: readonly StatementRow[]): { row: StatementRow; pageLines: string[]; next: StatementRow['next'] } {
  let figures: StatementRow | undefined;
  let follows = false;
  let last: StatementRow['next'] = null;
  const pageLines: string[] = [];
  for (const r of rows) {
    if (r.k === null) figures = r;
    else if (r.line === null) follows = true;
    else {
      pageLines[r.k - 1] = r.line;
      if (r.next !== null) last = r.next;
    }
  }
  // Every row but the figures' and the one after the page is a line with its place: k = 1 … their count, no gap.
  if (figures === undefined || pageLines.length !== rows.length - 1 - (follows ? 1 : 0) || pageLines.includes(undefined as never)) throw new Error('the statement query answered no figures, or a page with gaps');
  if (follows && last === null) throw new Error('the statement query answered a line after the page without the page\'s last key');
  return { row: figures, pageLines, next: follows ? last : null };
}

/**
 * Which state of the read model an account's statements were computed from: the accounts table (a rebuild swaps
 * in a new one, with its own oid) and the account's version (ledger-write.ts: written with every change a
 * statement of the account shows, in the same transaction). Null version: a read model made before versions
 * (being rebuilt), which a cache must not trust.
 */
export interface StatementVersion {
  readonly readModel: string;
  readonly version: string;
}

/**
 * The table's oid and the account's version. `version` is read through the row's JSON, so that a read model made
 * before the column (served while start-up rebuilds it) answers null instead of failing.
 */
const VERSION_COLUMNS = sql.raw(`x.tableoid::bigint::text as read_model, to_jsonb(x) ->> 'version' as version`);

/**
 * The current StatementVersion of some accounts, in one statement by their primary key (prepared: a fixed text), by
 * lower-case account id; an unknown account, and every account of a read model without versions, is absent.
 */
export async function statementVersions(rm: ReadModel, accountIds: readonly string[]): Promise<Map<string, StatementVersion>> {
  const ids = accountIds.filter(isAccountId);
  const versions = new Map<string, StatementVersion>();
  if (ids.length === 0) return versions;
  const compiled = compiledOnce(versionQueries, rm.schema, () =>
    sql<VersionRow>`select x.account_id, ${VERSION_COLUMNS} from ${rm.table('accounts')} x where x.account_id = any(${slot.accountId}::uuid[])`.compile(rm.db),
  );
  const { rows } = await rm.db.executeQuery<VersionRow>(CompiledQuery.raw(compiled.sql, [ids]));
  for (const row of rows) if (row.version !== null) versions.set(row.account_id, { readModel: row.read_model, version: row.version });
  return versions;
}
interface VersionRow {
  account_id: string;
  read_model: string;
  version: string | null;
}
const versionQueries = new Map<string, CompiledQuery<VersionRow>>();

/** A value bound at each call of a statement query compiled once (statementQueryOf). */
class Slot {
  constructor(readonly name: keyof StatementValues) {}
}

interface StatementValues {
  readonly accountId: string;
  readonly from: string;
  readonly to: string;
  readonly page: number | null;
  readonly pageAndOne: number | null;
  readonly cursorInstant: Date | null;
  readonly cursorSeq: number | null;
}

const slot = Object.fromEntries(
  (['accountId', 'from', 'to', 'page', 'pageAndOne', 'cursorInstant', 'cursorSeq'] as const).map((name) => [name, new Slot(name)]),
) as Record<keyof StatementValues, Slot>;

export interface StatementRow {
  account: (AccountRow & { read_model: string; version: string | null }) | null;
  summary: PeriodSummary;
  before: string | null;
  has_before: boolean;
  /**
   * Null in the figures' row; in each line's row, its place on the page (from 1) and its JSON; in the row after the
   * page (a line follows it), its place and no JSON.
   */
  k: number | null;
  line: string | null;
  /** In the page's last line's row (when paged), its key; null in every other row. */
  next: { instant: string; seq: number } | null;
  breaks: BreakJson[] | null;
  parked: number;
}

/**
 * A query built and compiled by kysely once per key (a schema, a shape): building and compiling a statement's text
 * cost Node more than PostgreSQL took to run it. Each call binds its values in the slots. Bounded, since verify's
 * scratch schemas come and go.
 */
function compiledOnce<R>(compiled: Map<string, CompiledQuery<R>>, key: string, build: () => CompiledQuery<R>): CompiledQuery<R> {
  let query = compiled.get(key);
  if (query === undefined) {
    query = build();
    if (compiled.size >= 64) compiled.clear();
    compiled.set(key, query);
  }
  return query;
}

const compiledStatements = new Map<string, CompiledQuery<StatementRow>>();

/** The statement query of a read model's schema, with or without a page limit and a cursor. */
function statementQueryOf(rm: ReadModel, paged: boolean, withCursor: boolean): CompiledQuery<StatementRow> {
  return compiledOnce(compiledStatements, `${rm.schema}|${paged}|${withCursor}`, () => buildStatementQuery(rm, paged, withCursor));
}

function buildStatementQuery(rm: ReadModel, paged: boolean, withCursor: boolean): CompiledQuery<StatementRow> {
  const lines = rm.table('statement_lines');
  const from = sql`${slot.from}::date`;
  const to = sql`${slot.to}::date`;
  // The page starts after this key: the cursor's line, or just before the period's first line (group_seq is an
  // integer, so `> (first_at, first_seq - 1)` is `>= (first_at, first_seq)`); never before the period's first line,
  // so that the page's index scan starts inside the period whatever the cursor.
  const start = withCursor
    ? sql`case when (${slot.cursorInstant}::timestamptz, ${slot.cursorSeq}::bigint) >= (first_at, first_seq) then ${slot.cursorInstant}::timestamptz else first_at end as start_at,
        case when (${slot.cursorInstant}::timestamptz, ${slot.cursorSeq}::bigint) >= (first_at, first_seq) then ${slot.cursorSeq}::bigint else first_seq - 1 end as start_seq`
    : sql`first_at as start_at, first_seq - 1 as start_seq`;
  // The period's lines are read once (instant index, index-only, bounded by the date gaps) in statement order, for the
  // figures alone; the page is read apart, in statement order from the instant index between the period's first and
  // last lines.
  // The text starts with `with`, so that the read pool prepares it (database.ts).
  return sql<StatementRow>`    with gaps as (${accountGaps(rm, sql`${slot.accountId}`)}),
    period as not materialized (
      select ${PERIOD_COLUMNS},
        row_number() over w as n,
        lag(l.balance_after) over w = l.balance_before as links,
        lead(l.instant) over w is null as is_last
      from ${lines} l
      where l.account_id = ${slot.accountId} and l.transaction_date between ${from} and ${to}
        and ${instantsDatable(from, to)}
      window w as (order by l.instant, l.group_seq)
    ),
    summary as (${periodSummary()}),
    bounds as (
      select first_at, first_seq, last_at, last_seq, ${start}
      from (select first_instant::timestamptz as first_at, first_seq::bigint as first_seq, last_instant::timestamptz as last_at, last_seq from summary) s
    ),
    -- For a period without lines, the latest date before it, read in windows of instants (never the history before):
    -- every line dated before the period lies before the instant after its eve; the latest of those in statement order
    -- has a date no later than the one sought, and every line of that date lies at or after its first instant.
    last_earlier as (
      select l.transaction_date as day from ${lines} l
      where (select first_at from bounds) is null and l.account_id = ${slot.accountId} and l.transaction_date < ${from}
        and l.instant < (select ${instantAfter(sql`${from} - 1`)} from gaps g)
      order by l.instant desc, l.group_seq desc limit 1
    ),
    latest_earlier as (
      select max(l.transaction_date) as day from ${lines} l
      where l.account_id = ${slot.accountId} and l.transaction_date < ${from}
        and l.instant >= (select ${firstInstantOf(sql`day`)} from last_earlier, gaps g)
        and l.instant < (select ${instantAfter(sql`${from} - 1`)} from gaps g)
    ),
    -- The line before the period: the one before its first line in statement order; for a period without lines,
    -- the last line (statement order) of the latest earlier date. Bounds are scalar subqueries, not a join, so that they
    -- become index conditions rather than filters.
    before as (
      select * from (
        select l.balance_after::text as balance_after from ${lines} l
        where l.account_id = ${slot.accountId}
          and (l.instant, l.group_seq) < ((select first_at from bounds), (select first_seq from bounds))
        order by l.instant desc, l.group_seq desc limit 1
      ) with_lines
      union all
      select * from (
        select l.balance_after::text from ${lines} l, bounds b
        where b.first_at is null and l.account_id = ${slot.accountId} and l.transaction_date = (select day from latest_earlier)
          and l.instant >= (select ${firstInstantOf(sql`day`)} from latest_earlier, gaps g)
          and l.instant < (select ${instantAfter(sql`day`)} from latest_earlier, gaps g)
        order by l.instant desc, l.group_seq desc limit 1
      ) without_lines
    ),
    -- The page's lines after the start, k counting from its first line, each already the JSON the API answers; when
    -- paged, one line more without its JSON (k = page + 1): it says that a line follows the page. Read in statement
    -- order from the (account_id, instant, group_seq) index between the start and the period's last line; read once
    -- (lines, below), so that PostgreSQL inlines it rather than storing a copy of the page's JSON.
    page as (
      select row_number() over pw as k, l.instant, l.group_seq,
        ${!paged ? LINE_JSON : sql`case when row_number() over pw <= ${slot.page} then ${LINE_JSON} end`} as line
      from ${lines} l
      -- The date tested on each line (a CASE: the planner counts half the lines as passing, so that it reads the page in
      -- order from the instant index and stops, not the whole period and sorts).
      where l.account_id = ${slot.accountId} and case when l.transaction_date between ${slot.from}::date and ${slot.to}::date then true end
        and (l.instant, l.group_seq) > ((select start_at from bounds), (select start_seq from bounds))
        and (l.instant, l.group_seq) <= ((select last_at from bounds), (select last_seq from bounds))
      window pw as (order by l.instant, l.group_seq)
      order by l.instant, l.group_seq ${!paged ? sql`` : sql`limit ${slot.pageAndOne}`}
    ),
    open_breaks as (
      select b.break_id, b.account_id, b.after_transaction_id, b.before_transaction_id, b.missing_amount::text as missing_amount,
        b.status, b.opened_at, b.resolved_at, b.resolved_by_source, b.resolution, b.heal_attempts, b.last_heal_at,
        b.last_heal_outcome, b.last_heal_detail
      from ${rm.table('breaks')} b
      where b.account_id = ${slot.accountId} and b.status = 'open' and exists (
        select 1 from ${lines} l
        where l.transaction_id in (b.after_transaction_id, b.before_transaction_id)
          and l.transaction_date between ${slot.from}::date and ${slot.to}::date)
    )
    select
      (select row_to_json(a) from (select account_id, fi_id, fi_name, account_number, currency, balance::text as balance,
        last_transaction_date_time, open_breaks, late_deliveries, ${parkedOf(rm, sql`account_id`)} as parked_events,
        ${VERSION_COLUMNS}
        from ${rm.table('accounts')} x where account_id = ${slot.accountId}) a) as account,
      -- A parked transaction dated on or before the period's last day may belong in it or carry into it (a line
      -- without running balance carries its predecessor's); one whose date cannot be read may belong anywhere.
      (select count(*)::int from ${rm.table('parked_events')} p where p.subject = ${slot.accountId} and p.event_type = 'BalanceChanged'
        and (p.transaction_date is null or p.transaction_date <= ${slot.to})) as parked,
      (select row_to_json(x) from summary x) as summary,
      (select balance_after from before limit 1) as before,
      exists (select 1 from before) as has_before,
      null::json as next,
      (select json_agg(o order by o.opened_at, o.break_id) from open_breaks o) as breaks,
      null::int as k, null::text as line
    -- Then the page's lines, a row each, unordered (k says where each goes): a page's text is never one value, which
    -- PostgreSQL would build in a growing buffer and the driver decode into one string (~300 kB for 500 lines, in
    -- memory fresh each time: page faults), nor sorted as a whole. The page's last line carries its key (where the
    -- next page starts, when a line follows it).
    union all
    select null, null, null, null, null,
      ${!paged ? sql`null` : sql`case when p.k = ${slot.page} then json_build_object('instant', p.instant, 'seq', p.group_seq) end`},
      null, p.k::int, p.line from page p`.compile(rm.db);
}

export interface StatementSink {
  /** The statement's figures (every one for the whole period), before any line. */
  head(statement: Statement): Promise<void>;
  /** The next lines in statement order; the next chunk is read once the promise resolves. */
  lines(lines: readonly LineView[]): Promise<void>;
}

/**
 * A whole period for an export (the CSV), from ONE snapshot (a read-only repeatable-read transaction): the
 * statement's figures with its first chunk of lines, then the rest chunk by chunk in statement order, each read
 * by keyset from the (account_id, instant, group_seq) index between the period's first and last lines. The sink is
 * awaited between chunks, so a slow reader holds the reading back and memory stays at one chunk, however long the
 * period. On embedded PGlite (`singleConnection`) each chunk is a statement of its own instead: a transaction would
 * hold the process's only connection while the client reads. False, with nothing given to the sink, for an unknown
 * account.
 */
export async function exportStatement(
  readModels: ReadModels,
  accountId: string,
  period: { readonly from: string; readonly to: string },
  sink: StatementSink,
  chunk = 1000,
): Promise<boolean> {
  if (!isAccountId(accountId)) return false;
  const inSnapshot = <T>(work: (db: ReadModel['db']) => Promise<T>): Promise<T> =>
    readModels.singleConnection
      ? work(readModels.db)
      : readModels.db.transaction().setIsolationLevel('repeatable read').setAccessMode('read only').execute(work);
  return inSnapshot(async (db) => {
    const head = await statement({ ...readModels, db }, accountId, { ...period, limit: chunk, cursor: null });
    if (!head) return false;
    await sink.head(head);
    await sink.lines(head.lines);
    const last = head.lastLine;
    let cursor = head.nextCursor ? decodeCursor(head.nextCursor) : null;
    while (cursor && last) {
      const after = cursor;
      const rows = await db
        .selectFrom('statement_lines as l')
        .select(['l.instant', 'l.group_seq', LINE_JSON.as('line')])
        .where('l.account_id', '=', accountId)
        .where('l.transaction_date', '>=', period.from)
        .where('l.transaction_date', '<=', period.to)
        .where((eb) => eb(eb.refTuple('l.instant', 'l.group_seq'), '>', eb.tuple(after.instant, after.seq)))
        .where((eb) => eb(eb.refTuple('l.instant', 'l.group_seq'), '<=', eb.tuple(sql<Date>`${last.instant}::timestamptz`, last.seq)))
        .orderBy('l.instant')
        .orderBy('l.group_seq')
        .limit(chunk)
        .execute();
      await sink.lines(rows.map((r) => JSON.parse(r.line) as LineView));
      const end = rows[rows.length - 1];
      cursor = rows.length === chunk && end ? { instant: end.instant, seq: end.group_seq } : null;
    }
    return true;
  });
}

/** One line of an account's statement by its transaction id; null when the account has no such line. */
export async function statementLine({ db }: ReadModel, accountId: string, transactionId: string): Promise<LineView | null> {
  if (!isAccountId(accountId)) return null;
  const row = await db
    .selectFrom('statement_lines as l')
    .select(LINE_JSON.as('line'))
    .where('l.transaction_id', '=', transactionId)
    .where('l.account_id', '=', accountId)
    .executeTakeFirst();
  return row ? (JSON.parse(row.line) as LineView) : null;
}

/**
 * A line as the API's JSON (LineView, in its key order): money as text (a JSON number would be a double), dates as
 * YYYY-MM-DD. row_to_json writes it compact and escapes strings as JSON.stringify does.
 */
const LINE_JSON_FIELDS = sql.raw(
  `l.transaction_id as "transactionId", l.event_id as "eventId", l.transaction_date as "transactionDate",
  l.transaction_date_time as "transactionDateTime", l.booking_date as "bookingDate", l.amount::text as amount,
  l.running_balance::text as "runningBalance", l.balance_before::text as "balanceBefore", l.balance_after::text as "balanceAfter",
  l.description, l.reference, l.counter_account_number as "counterAccountNumber", l.counter_account_name as "counterAccountName",
  l.counter_account_bank_name as "counterAccountBankName", l.virtual_account_number as "virtualAccountNumber", l.late`,
);
/**
 * A line of the statement table `l` as the API's JSON text: the one definition of a LineView, for the statement's
 * page (spliced into the answer as it is), the export's chunks and one line (parsed).
 */
const LINE_JSON = sql<string>`(select row_to_json(j) from (select ${LINE_JSON_FIELDS}) j)::text`;

/**
 * The account's date gaps (tables.ts, AccountsTable) as `ahead` and `behind` days, each null where it bounds nothing: at
 * or beyond DATE_GAP_UNBOUNDED, or absent in a read model made before them (served while start-up rebuilds it; read
 * through the row's JSON so that it answers instead of failing). No row for an unknown account.
 */
export function accountGaps(rm: ReadModel, accountId: RawBuilder<unknown>): RawBuilder<unknown> {
  return sql`select case when g.ahead < ${sql.lit(DATE_GAP_UNBOUNDED)} then g.ahead end as ahead,
      case when g.behind < ${sql.lit(DATE_GAP_UNBOUNDED)} then g.behind end as behind
    from (select (to_jsonb(x) ->> 'date_ahead_days')::int as ahead, (to_jsonb(x) ->> 'date_behind_days')::int as behind
      from ${rm.table('accounts')} x where x.account_id = ${accountId}) g`;
}

/** The earliest instant a line dated `day` may have, given `gaps g` (accountGaps): 00:00 UTC `ahead` days before. */
const firstInstantOf = (day: RawBuilder<unknown>) =>
  sql`coalesce(((${day}) - g.ahead)::timestamp at time zone 'UTC', '-infinity'::timestamptz)`;
/** Every line dated `day` or before lies before this instant, given `gaps g`: 00:00 UTC `behind` + 1 days after. */
const instantAfter = (day: RawBuilder<unknown>) =>
  sql`coalesce(((${day}) + g.behind + 1)::timestamp at time zone 'UTC', 'infinity'::timestamptz)`;
/** Line `l`'s instant lies where a line dated in [from, to] can lie, given the query's `gaps` (accountGaps). */
export const instantsDatable = (from: RawBuilder<unknown>, to: RawBuilder<unknown>) =>
  sql`l.instant >= (select ${firstInstantOf(from)} from gaps g) and l.instant < (select ${instantAfter(to)} from gaps g)`;

/**
 * What the period reads of each line: the figures' columns, all of them in the instant index (ledger-schema.ts), so
 * that the period is read from the index alone where the visibility map allows; the page reads its own lines whole,
 * in statement order from the instant index.
 */
const PERIOD_COLUMNS = sql.raw(`l.instant, l.group_seq, l.event_id, l.amount, l.balance_before, l.balance_after`);
type BreakJson = Omit<BreakRow, 'opened_at' | 'resolved_at' | 'last_heal_at'> & {
  opened_at: string;
  resolved_at: string | null;
  last_heal_at: string | null;
};

interface PeriodSummary {
  line_count: number;
  total_credits: string;
  total_debits: string;
  lines_link: boolean;
  /** As text, so that the bounds keep the column's full precision. */
  first_instant: string | null;
  first_seq: number | null;
  first_before: string | null;
  last_instant: string | null;
  last_seq: number | null;
  last_after: string | null;
  digest: string | null;
}

/**
 * Every figure of a period in one pass over its lines, in statement order: totals (numeric, so a sum cannot
 * overflow), whether each line links to the one before it in the period (lag), the first and last lines, and the
 * digest. The digest's bytes are statementDigest's, built here so that the lines never leave the database; the
 * API tests recompute it with statementDigest. Null digest when the period has no lines.
 */
function periodSummary() {
  return sql`
    with summary as (
      select count(*)::int as line_count,
        coalesce(sum(amount) filter (where amount > 0), 0)::numeric::text as total_credits,
        coalesce(sum(-amount) filter (where amount < 0), 0)::numeric::text as total_debits,
        coalesce(bool_and(coalesce(links, false)) filter (where n > 1), true) as lines_link,
        min(instant) filter (where n = 1)::text as first_instant,
        min(group_seq) filter (where n = 1) as first_seq,
        (min(balance_before) filter (where n = 1))::text as first_before,
        min(instant) filter (where is_last)::text as last_instant,
        min(group_seq) filter (where is_last) as last_seq,
        (min(balance_after) filter (where is_last))::text as last_after,
        string_agg(uuid_send(event_id) || int8send(amount) || ${balanceBytes(sql`balance_before`)}
          || ${balanceBytes(sql`balance_after`)}, ''::bytea order by n) as canonical
      from period
    )
    select line_count, total_credits, total_debits, lines_link, first_instant, first_seq, first_before,
      last_instant, last_seq, last_after,
      encode(sha256(convert_to(${DIGEST_TAG}::text, 'UTF8') || int8send(line_count::bigint) || canonical
        || ${balanceBytes(sql`first_before`)} || ${balanceBytes(sql`last_after`)}), 'hex') as digest
    from summary`;
}

function balanceBytes(value: RawBuilder<unknown>) {
  return sql`coalesce('\\x01'::bytea || int8send((${value})::bigint), '\\x00'::bytea)`;
}

/** The columns of a break the views show (the statement's open breaks come as JSON with these). */
type BreakRow = Omit<Selectable<BreaksTable>, 'opened_by_event_id' | 'resolved_by_event_id' | 'last_heal_event_id'>;

const breakOf = (r: BreakRow): BreakView => ({
  id: r.break_id,
  accountId: r.account_id,
  afterTransactionId: r.after_transaction_id,
  beforeTransactionId: r.before_transaction_id,
  missingAmount: r.missing_amount,
  status: r.status,
  openedAt: r.opened_at.toISOString(),
  resolvedAt: r.resolved_at?.toISOString() ?? null,
  resolution: r.resolution,
  resolvedBySource: r.resolved_by_source,
  healing: {
    attempts: r.heal_attempts,
    lastAttemptAt: r.last_heal_at?.toISOString() ?? null,
    lastOutcome: r.last_heal_outcome,
    lastDetail: r.last_heal_detail,
  },
});

/** Breaks, open ones first, then by when they opened and id; a page at a time. */
export async function listBreaks(
  { db }: ReadModel,
  filter: { status?: 'open' | 'resolved' | undefined; accountId?: string | undefined },
  page: PageQuery,
): Promise<Page<BreakView>> {
  const { status, accountId } = filter;
  if (accountId !== undefined && !isAccountId(accountId)) return { items: [], next: null };
  const after = page.after;
  const rows = await db
    .selectFrom('breaks')
    .selectAll()
    .select(micros(sql`opened_at`).as('opened_micros'))
    .$if(status !== undefined, (q) => q.where('status', '=', status!))
    .$if(accountId !== undefined, (q) => q.where('account_id', '=', accountId!))
    .$if(after !== null, (q) =>
      q.where((eb) => eb(eb.refTuple('status', 'opened_at', 'break_id'), '>', eb.tuple(after![0]! as 'open', fromMicros(after![1]!), after![2]!))),
    )
    .orderBy('status')
    .orderBy('opened_at')
    .orderBy('break_id')
    .limit(page.limit + 1)
    .execute();
  return pageOf(rows, page.limit, breakOf, (r) => [r.status, r.opened_micros, r.break_id]);
}

/** Anomalies in the order they were detected (when the late or conflicting delivery reached us), then id; paged. */
export async function listAnomalies(
  { db }: ReadModel,
  filter: { kind?: 'late' | 'conflict' | undefined; accountId?: string | undefined },
  page: PageQuery,
): Promise<Page<AnomalyView>> {
  const { kind, accountId } = filter;
  if (accountId !== undefined && !isAccountId(accountId)) return { items: [], next: null };
  const after = page.after;
  const rows = await db
    .selectFrom('anomalies')
    .selectAll()
    .select(micros(sql`received_at`).as('received_micros'))
    .$if(kind !== undefined, (q) => q.where('kind', '=', kind!))
    .$if(accountId !== undefined, (q) => q.where('account_id', '=', accountId!))
    .$if(after !== null, (q) => q.where((eb) => eb(eb.refTuple('received_at', 'anomaly_id'), '>', eb.tuple(fromMicros(after![0]!), after![1]!))))
    .orderBy('received_at')
    .orderBy('anomaly_id')
    .limit(page.limit + 1)
    .execute();
  return pageOf(
    rows,
    page.limit,
    (r) => ({
      kind: r.kind,
      accountId: r.account_id,
      transactionId: r.transaction_id,
      receivedAt: r.received_at.toISOString(),
      eventId: r.event_id,
      source: r.source,
      details: r.details,
    }),
    (r) => [r.received_micros, r.anomaly_id],
  );
}

import { type RawBuilder, sql } from 'kysely';
import { accountGaps, instantsDatable } from './ledger.queries';
import { fromMicros, microsOf } from './paging';
import type { ReadModel } from './read-model';

export interface AccountEventRef {
  readonly eventId: string;
  readonly position: string;
}

/**
 * The events that concern one account, in log order: its BalanceChanged events (one per statement line) and the
 * conflicting repeats of its transactions. Paged by log position; optionally only transactions dated in a period.
 *
 * No index is led by the log position (the live projection would maintain it on every line). Instead: a line that is
 * not `late` was the last of its account in statement order when it was projected, after every line of the account
 * before it in the log, so the lines that are not late, ordered by (instant, log position), are in log order. They are
 * read from the instant index, from the instant of the first of them after the cursor (found by bisecting the
 * account's instants: `startAfter`); the late lines (rare) from the partial index `(account_id, log_position) where
 * late`, the conflicts from theirs; the three are merged by position.
 */
export async function accountEventRefs(
  rm: ReadModel,
  accountId: string,
  options: { after: string | null; limit: number; from?: string; to?: string },
): Promise<AccountEventRef[]> {
  const lines = rm.table('statement_lines');
  const { after, limit } = options;
  const period = options.from !== undefined && options.to !== undefined ? { from: sql`${options.from}::date`, to: sql`${options.to}::date` } : null;
  const afterCursor = after === null ? sql`true` : sql`l.log_position > ${after}`;
  const inPeriod = period === null ? sql`true` : sql`l.transaction_date between ${period.from} and ${period.to}`;
  // Lines dated in the period have their instants in the window the account's date gaps give (ledger.queries.ts).
  const inWindow = period === null ? sql`true` : instantsDatable(period.from, period.to);
  const start = after === null ? sql`'-infinity'::timestamptz` : sql`(select ${fromMicros(sql`lo`)} from bisect where hi - lo <= 1)`;
  const { rows } = await sql<{ event_id: string; log_position: string }>`
    with recursive gaps as (${accountGaps(rm, sql`${accountId}::uuid`)}),
    ${after === null ? sql`` : sql`bisect (lo, hi) as (${startAfter(rm, accountId, after)}),`}
    refs as (
      (select l.event_id, l.log_position from ${lines} l
        where l.account_id = ${accountId} and not l.late and l.instant >= ${start} and ${afterCursor} and ${inPeriod} and ${inWindow}
        order by l.instant, l.log_position limit ${limit})
      union all
      (select l.event_id, l.log_position from ${lines} l
        where l.account_id = ${accountId} and l.late and ${afterCursor} and ${inPeriod}
        order by l.log_position limit ${limit})
      union all
      (select a.event_id, a.log_position from ${rm.table('anomalies')} a join ${lines} l on l.transaction_id = a.transaction_id
        where a.account_id = ${accountId} and a.kind = 'conflict' and ${after === null ? sql`true` : sql`a.log_position > ${after}`} and ${inPeriod}
        order by a.log_position limit ${limit})
    )
    select event_id, log_position from refs order by log_position limit ${limit}`.execute(rm.db);
  return rows.map((r) => ({ eventId: r.event_id, position: r.log_position }));
}

/**
 * Bisects the account's instants (as microseconds since 1970) for the first line, not late, whose log position is
 * after `after`. A row (lo, hi) keeps: no line before instant lo is after the cursor, some line before hi is (or hi
 * is past the last line); the row with hi − lo ≤ 1 names the instant to read from. Whether a line before t is after
 * the cursor is one probe: the last instant before t (backwards in the instant index) and the greatest position at
 * it, which is the greatest of all the lines before t since positions grow with (instant, position). About 45 probes
 * for a year of instants, however many lines.
 */
function startAfter(rm: ReadModel, accountId: string, after: string): RawBuilder<unknown> {
  const lines = rm.table('statement_lines');
  const span = sql`select ${microsOf(sql`min(l.instant)`)} as lo, ${microsOf(sql`max(l.instant)`)} + 1 as hi from ${lines} l
    where l.account_id = ${accountId} and not l.late`;
  const someAfterBefore = (t: RawBuilder<unknown>) => sql`coalesce((select max(m.log_position) > ${after} from ${lines} m
    where m.account_id = ${accountId} and not m.late and m.instant = (select l.instant from ${lines} l
      where l.account_id = ${accountId} and not l.late and l.instant < ${fromMicros(t)} order by l.instant desc limit 1)), false)`;
  // `offset 0` keeps the probe a subquery of its own, evaluated once a step (inlined, it would run once per use).
  return sql`select lo, hi from (${span}) s where lo is not null
    union all
    select case when p.found then b.lo else b.mid end, case when p.found then b.mid else b.hi end
    from (select lo, hi, lo + (hi - lo) / 2 as mid from bisect where hi - lo > 1) b
      cross join lateral (select ${someAfterBefore(sql`b.mid`)} as found offset 0) p`;
}

export async function accountExists({ db }: ReadModel, accountId: string): Promise<boolean> {
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(accountId)) return false;
  return (await db.selectFrom('accounts').select('account_id').where('account_id', '=', accountId).executeTakeFirst()) !== undefined;
}

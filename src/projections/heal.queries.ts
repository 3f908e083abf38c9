import { type Kysely, sql } from 'kysely';
import type { BreakToHeal } from '../domain/healing';

/**
 * Open breaks opened at or before `openedBefore` and not attempted since `attemptedBefore`, oldest first.
 * The window is the two lines' transaction dates (bank-local), the days the missing transactions lie in.
 */
export async function findBreaksToHeal(
  db: Kysely<any>,
  schema: string,
  query: { readonly openedBefore: Date; readonly attemptedBefore: Date; readonly limit: number },
): Promise<BreakToHeal[]> {
  // Before the ledger projection's first start there is nothing to heal.
  const { rows: found } = await sql<{ t: string | null }>`select to_regclass(${`${schema}.breaks`})::text as t`.execute(db);
  if (found[0]?.t == null) return [];
  const s = sql.id(schema);
  const { rows } = await sql<{
    break_id: string;
    account_id: string;
    grant_id: string | null;
    fi_id: string;
    account_number: string;
    from_date: string;
    to_date: string;
  }>`
    select b.break_id, b.account_id, a.grant_id, a.fi_id, a.account_number,
      least(la.transaction_date, lb.transaction_date) as from_date,
      greatest(la.transaction_date, lb.transaction_date) as to_date
    from ${s}.breaks b
    join ${s}.accounts a on a.account_id = b.account_id
    join ${s}.statement_lines la on la.transaction_id = b.after_transaction_id
    join ${s}.statement_lines lb on lb.transaction_id = b.before_transaction_id
    where b.status = 'open' and b.opened_at <= ${query.openedBefore}
      and (b.last_heal_at is null or b.last_heal_at <= ${query.attemptedBefore})
    order by b.opened_at, b.break_id
    limit ${query.limit}`.execute(db);
  return rows.map((r) => ({
    breakId: r.break_id,
    accountId: r.account_id,
    grantId: r.grant_id,
    fiId: r.fi_id,
    accountNumber: r.account_number,
    fromDate: r.from_date,
    toDate: r.to_date,
  }));
}

export async function breakStatuses(
  db: Kysely<any>,
  schema: string,
  breakIds: readonly string[],
): Promise<Map<string, { status: 'open' | 'resolved'; resolution: string | null }>> {
  if (breakIds.length === 0) return new Map();
  const { rows } = await sql<{ break_id: string; status: 'open' | 'resolved'; resolution: string | null }>`
    select break_id, status, resolution from ${sql.id(schema)}.breaks where break_id = any(${[...breakIds]}::uuid[])`.execute(db);
  return new Map(rows.map((r) => [r.break_id, { status: r.status, resolution: r.resolution }]));
}

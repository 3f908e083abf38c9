import { sql } from 'kysely';
import type { BreakToHeal } from '../domain/healing';
import type { ReadModel } from './read-model';

/**
 * Open breaks opened at or before `openedBefore` and not attempted since `attemptedBefore`, oldest first.
 * The window is the two lines' transaction dates (bank-local), the days the missing transactions lie in.
 */
export async function findBreaksToHeal(
  { db, schema }: ReadModel,
  query: { readonly openedBefore: Date; readonly attemptedBefore: Date; readonly limit: number },
): Promise<BreakToHeal[]> {
  // Before the ledger projection's first start there is nothing to heal.
  const { rows: found } = await sql<{ t: string | null }>`select to_regclass(${`${schema}.breaks`})::text as t`.execute(db);
  if (found[0]?.t == null) return [];
  const rows = await db
    .selectFrom('breaks as b')
    .innerJoin('accounts as a', 'a.account_id', 'b.account_id')
    .innerJoin('statement_lines as la', 'la.transaction_id', 'b.after_transaction_id')
    .innerJoin('statement_lines as lb', 'lb.transaction_id', 'b.before_transaction_id')
    .select(['b.break_id', 'b.account_id', 'a.grant_id', 'a.fi_id', 'a.account_number'])
    .select((eb) => [
      eb.fn<string>('least', ['la.transaction_date', 'lb.transaction_date']).as('from_date'),
      eb.fn<string>('greatest', ['la.transaction_date', 'lb.transaction_date']).as('to_date'),
    ])
    .where('b.status', '=', 'open')
    .where('b.opened_at', '<=', query.openedBefore)
    .where((eb) => eb.or([eb('b.last_heal_at', 'is', null), eb('b.last_heal_at', '<=', query.attemptedBefore)]))
    .orderBy('b.opened_at')
    .orderBy('b.break_id')
    .limit(query.limit)
    .execute();
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
  rm: ReadModel,
  breakIds: readonly string[],
): Promise<Map<string, { status: 'open' | 'resolved'; resolution: string | null }>> {
  if (breakIds.length === 0) return new Map();
  const rows = await rm.db
    .selectFrom('breaks')
    .select(['break_id', 'status', 'resolution'])
    .where('break_id', '=', (eb) => eb.fn.any(eb.val([...breakIds])))
    .execute();
  return new Map(rows.map((r) => [r.break_id, { status: r.status, resolution: r.resolution }]));
}

import { type Kysely, sql } from 'kysely';

export interface AccountEventRef {
  readonly eventId: string;
  readonly position: string;
}

/**
 * The events that concern one account, in log order: its BalanceChanged events (one per statement line) and the
 * conflicting repeats of its transactions. Paged by log position; optionally only transactions dated in a period.
 */
export async function accountEventRefs(
  db: Kysely<any>,
  schema: string,
  accountId: string,
  options: { after: string | null; limit: number; from?: string; to?: string },
): Promise<AccountEventRef[]> {
  const s = sql.id(schema);
  const period =
    options.from && options.to ? sql`and l.transaction_date between ${options.from}::date and ${options.to}::date` : sql``;
  const { rows } = await sql<{ event_id: string; log_position: string }>`
    select event_id, log_position from (
      select l.event_id, l.log_position from ${s}.statement_lines l where l.account_id = ${accountId} ${period}
      union all
      select a.event_id, a.log_position from ${s}.anomalies a
      join ${s}.statement_lines l on l.transaction_id = a.transaction_id
      where a.account_id = ${accountId} and a.kind = 'conflict' ${period}
    ) refs
    where ${options.after === null ? sql`true` : sql`log_position > ${options.after}`}
    order by log_position limit ${options.limit}`.execute(db);
  return rows.map((r) => ({ eventId: r.event_id, position: r.log_position }));
}

export async function accountExists(db: Kysely<any>, schema: string, accountId: string): Promise<boolean> {
  if (!/^[0-9a-f-]{36}$/i.test(accountId)) return false;
  const { rows } = await sql`select 1 from ${sql.id(schema)}.accounts where account_id = ${accountId}`.execute(db);
  return rows.length > 0;
}

import type { ReadModel } from './read-model';

export interface AccountEventRef {
  readonly eventId: string;
  readonly position: string;
}

/**
 * The events that concern one account, in log order: its BalanceChanged events (one per statement line) and the
 * conflicting repeats of its transactions. Paged by log position; optionally only transactions dated in a period.
 */
export async function accountEventRefs(
  { db }: ReadModel,
  accountId: string,
  options: { after: string | null; limit: number; from?: string; to?: string },
): Promise<AccountEventRef[]> {
  const { from, to } = options;
  const rows = await db
    .selectFrom((eb) =>
      eb
        .selectFrom('statement_lines as l')
        .select(['l.event_id', 'l.log_position'])
        .where('l.account_id', '=', accountId)
        .$if(from !== undefined && to !== undefined, (q) => q.where('l.transaction_date', '>=', from!).where('l.transaction_date', '<=', to!))
        .unionAll(
          eb
            .selectFrom('anomalies as a')
            .innerJoin('statement_lines as l', 'l.transaction_id', 'a.transaction_id')
            .select(['a.event_id', 'a.log_position'])
            .where('a.account_id', '=', accountId)
            .where('a.kind', '=', 'conflict')
            .$if(from !== undefined && to !== undefined, (q) => q.where('l.transaction_date', '>=', from!).where('l.transaction_date', '<=', to!)),
        )
        .as('refs'),
    )
    .select(['refs.event_id', 'refs.log_position'])
    .$if(options.after !== null, (q) => q.where('refs.log_position', '>', options.after!))
    .orderBy('refs.log_position')
    .limit(options.limit)
    .execute();
  return rows.map((r) => ({ eventId: r.event_id, position: r.log_position }));
}

export async function accountExists({ db }: ReadModel, accountId: string): Promise<boolean> {
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(accountId)) return false;
  return (await db.selectFrom('accounts').select('account_id').where('account_id', '=', accountId).executeTakeFirst()) !== undefined;
}

import { sql } from 'kysely';
import type { LinkedAccount } from '../domain/events';
import type { GrantError, GrantStatus } from '../domain/grant';
import type { ReadModel } from './read-model';

export interface GrantView {
  readonly grantId: string;
  readonly status: GrantStatus;
  readonly fiId: string | null;
  readonly accounts: readonly LinkedAccount[];
  /** null for a grant known only from its webhooks (linked before this ledger, or elsewhere). */
  readonly linkedAt: Date | null;
  readonly lastError: GrantError | null;
  readonly lastWebhookCode: string | null;
  readonly updatedAt: Date;
}

/** Every grant, most recently linked first; empty until the grants projection has created its schema. */
export async function listGrants(rm: ReadModel): Promise<GrantView[]> {
  if (!(await tableExists(rm))) return [];
  const rows = await rm.db.selectFrom('grants').selectAll().orderBy('linked_at', (o) => o.desc().nullsLast()).orderBy('grant_id').execute();
  return rows.map((r) => ({
    grantId: r.grant_id,
    status: r.status,
    fiId: r.fi_id,
    accounts: r.accounts,
    linkedAt: r.linked_at,
    lastError: r.last_error,
    lastWebhookCode: r.last_webhook_code,
    updatedAt: r.updated_at,
  }));
}

/** The newest grant, not revoked, that linked the account (fiId, accountNumber); null when none did. */
export async function findGrantOfAccount(rm: ReadModel, fiId: string, accountNumber: string): Promise<string | null> {
  if (!(await tableExists(rm))) return null;
  const { rows } = await sql<{ grant_id: string }>`
    select g.grant_id from ${rm.table('grants')} g cross join lateral jsonb_array_elements(g.accounts) a
    where g.status <> 'revoked' and a ->> 'accountNumber' = ${accountNumber}
      and coalesce(a ->> 'fiId', g.fi_id, ${fiId}) = ${fiId}
    order by g.linked_at desc nulls last limit 1`.execute(rm.db);
  return rows[0]?.grant_id ?? null;
}

async function tableExists({ db, schema }: ReadModel): Promise<boolean> {
  const { rows } = await sql<{ found: string | null }>`select to_regclass(${`${schema}.grants`})::text as found`.execute(db);
  return rows[0]?.found != null;
}

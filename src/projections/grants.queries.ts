import { type Kysely, sql } from 'kysely';
import type { LinkedAccount } from '../domain/events';
import type { GrantError, GrantStatus } from '../domain/grant';
import type { GrantRow } from './grants.projection';

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
export async function listGrants(db: Kysely<any>, schema: string): Promise<GrantView[]> {
  if (!(await tableExists(db, schema))) return [];
  const { rows } = await sql<GrantRow>`select * from ${sql.id(schema)}.grants order by linked_at desc nulls last, grant_id`.execute(db);
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
export async function findGrantOfAccount(
  db: Kysely<any>,
  schema: string,
  fiId: string,
  accountNumber: string,
): Promise<string | null> {
  if (!(await tableExists(db, schema))) return null;
  const { rows } = await sql<{ grant_id: string }>`
    select g.grant_id from ${sql.id(schema)}.grants g cross join lateral jsonb_array_elements(g.accounts) a
    where g.status <> 'revoked' and a ->> 'accountNumber' = ${accountNumber}
      and coalesce(a ->> 'fiId', g.fi_id, ${fiId}) = ${fiId}
    order by g.linked_at desc nulls last limit 1`.execute(db);
  return rows[0]?.grant_id ?? null;
}

async function tableExists(db: Kysely<any>, schema: string): Promise<boolean> {
  const { rows } = await sql<{ found: string | null }>`select to_regclass(${`${schema}.grants`})::text as found`.execute(db);
  return rows[0]?.found != null;
}

import { type Kysely, sql } from 'kysely';
import { type GrantView, listGrants } from './grants.queries';

/** The grants the daily sweep asks Cas about: the active ones. */
export async function activeGrants(db: Kysely<any>, grantsSchema: string): Promise<GrantView[]> {
  return (await listGrants(db, grantsSchema)).filter((g) => g.status === 'active');
}

/** Banks' names (fiId → name) as the ledger's accounts hold them: the alert's text names the bank. */
export async function bankNames(db: Kysely<any>, ledgerSchema: string): Promise<Map<string, string>> {
  const { rows } = await sql<{ fi_id: string; fi_name: string }>`
    select distinct on (fi_id) fi_id, fi_name from ${sql.id(ledgerSchema)}.accounts where fi_name is not null order by fi_id`.execute(db);
  return new Map(rows.map((r) => [r.fi_id, r.fi_name]));
}

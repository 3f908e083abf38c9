import { type GrantView, listGrants } from './grants.queries';
import type { ReadModel } from './read-model';

/** The grants the daily sweep asks Cas about: the active ones. */
export async function activeGrants(grants: ReadModel): Promise<GrantView[]> {
  return (await listGrants(grants)).filter((g) => g.status === 'active');
}

/** Banks' names (fiId → name) as the ledger's accounts hold them: the alert's text names the bank. */
export async function bankNames(ledger: ReadModel): Promise<Map<string, string>> {
  const rows = await ledger.db
    .selectFrom('accounts')
    .distinctOn('fi_id')
    .select(['fi_id', 'fi_name'])
    .where('fi_name', 'is not', null)
    .orderBy('fi_id')
    .$narrowType<{ fi_name: string }>()
    .execute();
  return new Map(rows.map((r) => [r.fi_id, r.fi_name]));
}

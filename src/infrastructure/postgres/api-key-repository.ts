import { type ExpressionBuilder, type Selectable, sql } from 'kysely';
import { isUuid } from '../../application/access';
import type { ApiKeyRecord, ApiKeys } from '../../application/ports/api-keys';
import type { ApiKeysTable, WriteSideDb, WriteSideTables } from './tables';

const COLUMNS = ['id', 'name', 'role', 'created_at', 'last_used_at', 'revoked_at'] as const;
/** `id or name`: a text that is not a uuid can only be a name (names never look like one). */
const byIdOrName = (idOrName: string) => (eb: ExpressionBuilder<WriteSideTables, 'api_keys'>) =>
  isUuid(idOrName) ? eb('id', '=', idOrName) : eb('name', '=', idOrName);

/** API keys in the write-side table `api_keys` (migration 0004): the SHA-256 of each key, never the key. */
export function createApiKeyRepository(db: WriteSideDb): ApiKeys {
  return {
    async insert(key) {
      try {
        await db
          .insertInto('api_keys')
          .values({ id: key.id, name: key.name, role: key.role, key_sha256: key.keySha256, created_at: key.createdAt })
          .execute();
        return 'inserted';
      } catch (error) {
        if ((error as { code?: string }).code === '23505' && String((error as Error).message).includes('api_keys_live_name')) return 'name_taken';
        throw error;
      }
    },
    async findByHash(keySha256) {
      const row = await db.selectFrom('api_keys').select(COLUMNS).where('key_sha256', '=', keySha256).executeTakeFirst();
      return row ? toRecord(row) : null;
    },
    async list() {
      return (await db.selectFrom('api_keys').select(COLUMNS).orderBy('created_at').orderBy('name').execute()).map(toRecord);
    },
    async revoke(idOrName, at) {
      const row = await db
        .updateTable('api_keys')
        .set({ revoked_at: at })
        .where(byIdOrName(idOrName))
        .where('revoked_at', 'is', null)
        .returning(COLUMNS)
        .executeTakeFirst();
      return row ? toRecord(row) : null;
    },
    async find(idOrName) {
      return (await db.selectFrom('api_keys').select(COLUMNS).where(byIdOrName(idOrName)).orderBy('created_at').execute()).map(toRecord);
    },
    async touch(id, at) {
      // Several processes may touch the same key: the newest time wins, and a minute-old one is not rewritten.
      await db
        .updateTable('api_keys')
        .set({ last_used_at: at })
        .where('id', '=', id)
        .where((eb) => eb.or([eb('last_used_at', 'is', null), eb('last_used_at', '<', sql<Date>`${at}::timestamptz - interval '1 minute'`)]))
        .execute();
    },
    async count() {
      const row = await db
        .selectFrom('api_keys')
        .select((eb) => [eb.fn.countAll<string>().filterWhere('revoked_at', 'is', null).as('live'), eb.fn.countAll<string>().as('total')])
        .executeTakeFirst();
      return { live: Number(row?.live ?? 0), total: Number(row?.total ?? 0) };
    },
  };
}

function toRecord(row: Pick<Selectable<ApiKeysTable>, (typeof COLUMNS)[number]>): ApiKeyRecord {
  return {
    id: row.id,
    name: row.name,
    role: row.role,
    createdAt: new Date(row.created_at),
    lastUsedAt: row.last_used_at ? new Date(row.last_used_at) : null,
    revokedAt: row.revoked_at ? new Date(row.revoked_at) : null,
  };
}

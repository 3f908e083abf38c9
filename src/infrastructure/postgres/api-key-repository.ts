import { type Kysely, sql } from 'kysely';
import { isUuid } from '../../application/access';
import type { ApiKeyRecord, ApiKeys } from '../../application/ports/api-keys';

interface ApiKeyRow {
  id: string;
  name: string;
  role: string;
  created_at: Date;
  last_used_at: Date | null;
  revoked_at: Date | null;
}

const COLUMNS = sql`id, name, role, created_at, last_used_at, revoked_at`;
/** `id or name`: a text that is not a uuid can only be a name (names never look like one). */
const byIdOrName = (idOrName: string) => (isUuid(idOrName) ? sql`id = ${idOrName}::uuid` : sql`name = ${idOrName}`);

/** API keys in the write-side table `api_keys` (migration 0005): the SHA-256 of each key, never the key. */
export function createApiKeyRepository(db: Kysely<any>): ApiKeys {
  return {
    async insert(key) {
      try {
        await sql`
          insert into api_keys (id, name, role, key_sha256, created_at)
          values (${key.id}, ${key.name}, ${key.role}, ${key.keySha256}, ${key.createdAt})`.execute(db);
        return 'inserted';
      } catch (error) {
        if ((error as { code?: string }).code === '23505' && String((error as Error).message).includes('api_keys_live_name')) return 'name_taken';
        throw error;
      }
    },
    async findByHash(keySha256) {
      const { rows } = await sql<ApiKeyRow>`select ${COLUMNS} from api_keys where key_sha256 = ${keySha256}`.execute(db);
      return rows[0] ? toRecord(rows[0]) : null;
    },
    async list() {
      const { rows } = await sql<ApiKeyRow>`select ${COLUMNS} from api_keys order by created_at, name`.execute(db);
      return rows.map(toRecord);
    },
    async revoke(idOrName, at) {
      const { rows } = await sql<ApiKeyRow>`
        update api_keys set revoked_at = ${at} where ${byIdOrName(idOrName)} and revoked_at is null
        returning ${COLUMNS}`.execute(db);
      return rows[0] ? toRecord(rows[0]) : null;
    },
    async find(idOrName) {
      const { rows } = await sql<ApiKeyRow>`select ${COLUMNS} from api_keys where ${byIdOrName(idOrName)} order by created_at`.execute(db);
      return rows.map(toRecord);
    },
    async touch(id, at) {
      // Several processes may touch the same key: the newest time wins, and a minute-old one is not rewritten.
      await sql`
        update api_keys set last_used_at = ${at}
        where id = ${id} and (last_used_at is null or last_used_at < ${at}::timestamptz - interval '1 minute')`.execute(db);
    },
    async count() {
      const { rows } = await sql<{ live: string; total: string }>`
        select count(*) filter (where revoked_at is null) as live, count(*) as total from api_keys`.execute(db);
      return { live: Number(rows[0]?.live ?? 0), total: Number(rows[0]?.total ?? 0) };
    },
  };
}

function toRecord(row: ApiKeyRow): ApiKeyRecord {
  return {
    id: row.id,
    name: row.name,
    role: row.role,
    createdAt: new Date(row.created_at),
    lastUsedAt: row.last_used_at ? new Date(row.last_used_at) : null,
    revokedAt: row.revoked_at ? new Date(row.revoked_at) : null,
  };
}

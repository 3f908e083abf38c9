import { type Kysely, sql } from 'kysely';
import { type GrantSecrets, GrantSecretUnreadable } from '../../application/ports/grant-secrets';
import { SecretOpenError, type TokenCipher } from '../secrets/token-cipher';

/** Access tokens in the write-side table `grant_secrets`, sealed with AES-256-GCM; plaintext never reaches the database. */
export function createGrantSecretsRepository(db: Kysely<any>, cipher: TokenCipher): GrantSecrets {
  return {
    async save(grantId, accessToken, at) {
      const sealed = cipher.seal(accessToken, grantId);
      await sql`
        insert into grant_secrets (grant_id, iv, ciphertext, auth_tag, key_id, created_at, updated_at)
        values (${grantId}, ${sealed.iv}, ${sealed.ciphertext}, ${sealed.authTag}, ${sealed.keyId}, ${at}, ${at})
        on conflict (grant_id) do update set iv = excluded.iv, ciphertext = excluded.ciphertext,
          auth_tag = excluded.auth_tag, key_id = excluded.key_id, updated_at = excluded.updated_at`.execute(db);
    },
    async accessTokenOf(grantId) {
      const { rows } = await sql<{ iv: Buffer; ciphertext: Buffer; auth_tag: Buffer; key_id: string }>`
        select iv, ciphertext, auth_tag, key_id from grant_secrets where grant_id = ${grantId}`.execute(db);
      const row = rows[0];
      if (!row) return null;
      try {
        return cipher.open(
          { iv: Buffer.from(row.iv), ciphertext: Buffer.from(row.ciphertext), authTag: Buffer.from(row.auth_tag), keyId: row.key_id },
          grantId,
        );
      } catch (error) {
        if (error instanceof SecretOpenError) throw new GrantSecretUnreadable(grantId, error.message);
        throw error;
      }
    },
  };
}

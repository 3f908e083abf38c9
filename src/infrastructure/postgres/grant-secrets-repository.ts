import { type GrantSecrets, GrantSecretUnreadable } from '../../application/ports/grant-secrets';
import { SecretOpenError, type TokenCipher } from '../secrets/token-cipher';
import type { WriteSideDb } from './tables';

/** Access tokens in the write-side table `grant_secrets`, sealed with AES-256-GCM; plaintext never reaches the database. */
export function createGrantSecretsRepository(db: WriteSideDb, cipher: TokenCipher): GrantSecrets {
  return {
    async save(grantId, accessToken, at) {
      const sealed = cipher.seal(accessToken, grantId);
      await db
        .insertInto('grant_secrets')
        .values({ grant_id: grantId, iv: sealed.iv, ciphertext: sealed.ciphertext, auth_tag: sealed.authTag, key_id: sealed.keyId, created_at: at, updated_at: at })
        .onConflict((oc) =>
          oc.column('grant_id').doUpdateSet((eb) => ({
            iv: eb.ref('excluded.iv'),
            ciphertext: eb.ref('excluded.ciphertext'),
            auth_tag: eb.ref('excluded.auth_tag'),
            key_id: eb.ref('excluded.key_id'),
            updated_at: eb.ref('excluded.updated_at'),
          })),
        )
        .execute();
    },
    async accessTokenOf(grantId) {
      const row = await db.selectFrom('grant_secrets').select(['iv', 'ciphertext', 'auth_tag', 'key_id']).where('grant_id', '=', grantId).executeTakeFirst();
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

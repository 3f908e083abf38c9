import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';

/** A secret sealed by the cipher, as stored. */
export interface SealedSecret {
  readonly iv: Buffer;
  readonly ciphertext: Buffer;
  readonly authTag: Buffer;
  /** Which key sealed it (a fingerprint, not the key): a rotated key is named as such rather than reported as tampering. */
  readonly keyId: string;
}

export interface TokenCipher {
  readonly keyId: string;
  seal(plaintext: string, associatedData: string): SealedSecret;
  /** Throws SecretOpenError when the key, the data or the associated data is not the one sealed. */
  open(sealed: SealedSecret, associatedData: string): string;
}

export class SecretOpenError extends Error {
  override readonly name = 'SecretOpenError';
}

const ALGORITHM = 'aes-256-gcm';
const IV_BYTES = 12;
const TAG_BYTES = 16;

/**
 * AES-256-GCM for secrets at rest (Cas access tokens). A fresh random 12-byte IV per seal; the 16-byte tag makes any
 * change to IV, ciphertext, tag or associated data fail to open. The associated data binds a sealed token to its
 * grant, so a row copied onto another grant does not open either.
 */
export function createTokenCipher(keyHex: string): TokenCipher {
  if (!/^[0-9a-fA-F]{64}$/.test(keyHex)) throw new Error('the secrets key must be 64 hex characters (32 bytes)');
  const key = Buffer.from(keyHex, 'hex');
  const keyId = createHash('sha256').update('balance-ledger:secrets-key-id:').update(key).digest('hex').slice(0, 16);
  return {
    keyId,
    seal(plaintext, associatedData) {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv(ALGORITHM, key, iv, { authTagLength: TAG_BYTES });
      cipher.setAAD(Buffer.from(associatedData, 'utf8'));
      const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
      return { iv, ciphertext, authTag: cipher.getAuthTag(), keyId };
    },
    open(sealed, associatedData) {
      if (sealed.keyId !== keyId) throw new SecretOpenError('sealed with another SECRETS_KEY');
      if (sealed.iv.length !== IV_BYTES || sealed.authTag.length !== TAG_BYTES) throw new SecretOpenError('malformed');
      try {
        const decipher = createDecipheriv(ALGORITHM, key, sealed.iv, { authTagLength: TAG_BYTES });
        decipher.setAAD(Buffer.from(associatedData, 'utf8'));
        decipher.setAuthTag(sealed.authTag);
        return Buffer.concat([decipher.update(sealed.ciphertext), decipher.final()]).toString('utf8');
      } catch {
        // The only cause GCM reports is a failed tag: altered data, or a key whose fingerprint collides.
        throw new SecretOpenError('authentication failed (altered, or another key)');
      }
    },
  };
}

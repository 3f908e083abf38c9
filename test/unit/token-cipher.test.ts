import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createTokenCipher, SecretOpenError, type SealedSecret } from '../../src/infrastructure/secrets/token-cipher';

const KEY = randomBytes(32).toString('hex');
const TOKEN = 'access-5f0c2a9e1b7d4c3a8e6f0b1d2c3a4e5f60718293';
const GRANT = '4c657924-13f3-11ee-a4bb-42010a40001b';

const flip = (buffer: Buffer, index = 0): Buffer => {
  const copy = Buffer.from(buffer);
  copy[index] = (copy[index] ?? 0) ^ 0x01;
  return copy;
};

describe('access tokens at rest (AES-256-GCM)', () => {
  const cipher = createTokenCipher(KEY);

  it('opens what it sealed, and never stores the token in the clear', () => {
    const sealed = cipher.seal(TOKEN, GRANT);
    expect(cipher.open(sealed, GRANT)).toBe(TOKEN);
    expect(sealed.iv).toHaveLength(12);
    expect(sealed.authTag).toHaveLength(16);
    expect(sealed.ciphertext.toString('utf8')).not.toContain(TOKEN);
    expect(Buffer.concat([sealed.iv, sealed.ciphertext, sealed.authTag]).toString('latin1')).not.toContain(TOKEN);
  });

  it('uses a fresh IV every time: the same token seals to different bytes', () => {
    const a = cipher.seal(TOKEN, GRANT);
    const b = cipher.seal(TOKEN, GRANT);
    expect(a.iv.equals(b.iv)).toBe(false);
    expect(a.ciphertext.equals(b.ciphertext)).toBe(false);
  });

  it.each<[string, (s: SealedSecret) => SealedSecret]>([
    ['a flipped ciphertext bit', (s) => ({ ...s, ciphertext: flip(s.ciphertext, 3) })],
    ['a flipped tag bit', (s) => ({ ...s, authTag: flip(s.authTag, 15) })],
    ['a flipped IV bit', (s) => ({ ...s, iv: flip(s.iv, 11) })],
    ['a truncated tag', (s) => ({ ...s, authTag: s.authTag.subarray(0, 12) })],
  ])('refuses %s', (_what, tamper) => {
    const sealed = cipher.seal(TOKEN, GRANT);
    expect(() => cipher.open(tamper(sealed), GRANT)).toThrow(SecretOpenError);
  });

  it("refuses a token copied onto another grant's row", () => {
    const sealed = cipher.seal(TOKEN, GRANT);
    expect(() => cipher.open(sealed, 'another-grant')).toThrow(SecretOpenError);
  });

  it('refuses another key, by its fingerprint and, were the fingerprint forged, by the tag', () => {
    const sealed = cipher.seal(TOKEN, GRANT);
    const other = createTokenCipher(randomBytes(32).toString('hex'));
    expect(other.keyId).not.toBe(cipher.keyId);
    expect(() => other.open(sealed, GRANT)).toThrow(/another SECRETS_KEY/);
    expect(() => other.open({ ...sealed, keyId: other.keyId }, GRANT)).toThrow(/authentication failed/);
  });

  it('names no secret in its errors', () => {
    const sealed = cipher.seal(TOKEN, GRANT);
    const error = (() => {
      try {
        cipher.open({ ...sealed, ciphertext: flip(sealed.ciphertext) }, GRANT);
      } catch (e) {
        return e as Error;
      }
    })();
    expect(error?.message).toBeTruthy();
    expect(error?.message).not.toContain(TOKEN);
    expect(error?.message).not.toContain(KEY);
  });

  it('accepts only a 32-byte hex key', () => {
    expect(() => createTokenCipher('00'.repeat(16))).toThrow(/64 hex/);
    expect(() => createTokenCipher('zz'.repeat(32))).toThrow(/64 hex/);
  });
});

import type { Logger } from 'pino';
import { API_KEY_PATTERN, apiKeySha256, isRole, type Role } from '../../application/access';
import type { ApiKeyRecord, ApiKeys } from '../../application/ports/api-keys';
import { tokenMatcher } from './webhook-auth';

/** Who is calling: a key (by id and name, never the key), the bootstrap API_TOKEN, or anyone while nothing is set up. */
export interface Principal {
  /** null for API_TOKEN and for anonymous callers. */
  readonly keyId: string | null;
  readonly name: string;
  readonly role: Role;
}

export type Authentication =
  | { readonly kind: 'principal'; readonly principal: Principal }
  /** No API_TOKEN and no key was ever made: every route answers anyone (loopback, or ALLOW_INSECURE). */
  | { readonly kind: 'open' }
  | { readonly kind: 'refused'; readonly reason: 'missing' | 'unknown' };

export interface Authenticator {
  authenticate(authorization: string | undefined): Promise<Authentication>;
}

export const API_TOKEN_PRINCIPAL: Principal = Object.freeze({ keyId: null, name: 'API_TOKEN', role: 'admin' });
export const ANONYMOUS_PRINCIPAL: Principal = Object.freeze({ keyId: null, name: 'anonymous', role: 'admin' });

/** How long a process believes what it read about a key: a revoke reaches every process within this. */
export const KEY_CACHE_MS = 500;
/** last_used_at is written at most this often per key and process, never on every request. */
export const TOUCH_EVERY_MS = 60_000;
const CACHE_LIMIT = 10_000;

export interface AuthenticatorOptions {
  readonly keys: ApiKeys;
  readonly apiToken: string | undefined;
  readonly logger: Logger;
  readonly now?: () => number;
}

/** `Authorization: Bearer <key>`, the scheme in any case (RFC 9110 §11.1). */
export function bearerOf(authorization: string | undefined): string | undefined {
  const match = authorization === undefined ? null : /^\s*bearer\s+(\S+)\s*$/i.exec(authorization);
  return match?.[1];
}

/**
 * Keys are looked up by their SHA-256 and what was read is kept for KEY_CACHE_MS (one lookup per key and process
 * in that time, whatever the traffic); unknown keys are remembered as briefly, and only texts shaped like a key
 * reach the database.
 */
export function createAuthenticator(options: AuthenticatorOptions): Authenticator {
  const { keys, logger } = options;
  const now = options.now ?? Date.now;
  const apiTokenOk = options.apiToken === undefined ? null : tokenMatcher(options.apiToken);
  const cache = new Map<string, { readonly until: number; readonly record: Promise<ApiKeyRecord | null> }>();
  const touched = new Map<string, number>();
  // Keys are never deleted, only revoked: once one exists the service stays closed.
  let keysExist: { until: number; value: Promise<boolean> } | null = null;

  const anyKeyEverMade = (): Promise<boolean> => {
    const at = now();
    if (keysExist && (keysExist.until > at)) return keysExist.value;
    const value = keys.count().then((c) => c.total > 0);
    keysExist = { until: at + KEY_CACHE_MS, value };
    value.then(
      (exists) => {
        if (exists && keysExist?.value === value) keysExist = { until: Number.POSITIVE_INFINITY, value };
      },
      () => {
        if (keysExist?.value === value) keysExist = null;
      },
    );
    return value;
  };

  const lookup = (hash: string): Promise<ApiKeyRecord | null> => {
    const at = now();
    const cached = cache.get(hash);
    if (cached && cached.until > at) return cached.record;
    if (cache.size >= CACHE_LIMIT) {
      for (const [k, v] of cache) if (v.until <= at) cache.delete(k);
      if (cache.size >= CACHE_LIMIT) cache.clear();
    }
    const record = keys.findByHash(hash);
    cache.set(hash, { until: at + KEY_CACHE_MS, record });
    record.catch(() => cache.get(hash)?.record === record && cache.delete(hash));
    return record;
  };

  const touch = (id: string) => {
    const at = now();
    if (at - (touched.get(id) ?? Number.NEGATIVE_INFINITY) < TOUCH_EVERY_MS) return;
    touched.set(id, at);
    keys.touch(id, new Date(at)).catch((error: unknown) => logger.warn({ err: error, keyId: id }, 'could not record the use of an API key'));
  };

  return {
    async authenticate(authorization) {
      const presented = bearerOf(authorization);
      if (apiTokenOk === null && !(await anyKeyEverMade())) return { kind: 'open' };
      if (presented === undefined) return { kind: 'refused', reason: 'missing' };
      if (apiTokenOk?.(presented)) return { kind: 'principal', principal: API_TOKEN_PRINCIPAL };
      if (!API_KEY_PATTERN.test(presented)) return { kind: 'refused', reason: 'unknown' };
      const record = await lookup(apiKeySha256(presented));
      // A revoked key, or a role this version does not know, grants nothing.
      if (!record || record.revokedAt !== null || !isRole(record.role)) return { kind: 'refused', reason: 'unknown' };
      touch(record.id);
      return { kind: 'principal', principal: { keyId: record.id, name: record.name, role: record.role } };
    },
  };
}

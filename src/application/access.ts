import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { err, ok, type Result } from '../domain/result';
import type { ApiKeyRecord, ApiKeys } from './ports/api-keys';

/**
 * Who may do what: the one table of roles. A route names the role it needs (src/infrastructure/http/route-access.ts);
 * a key's role allows what it names and what the roles it includes allow. `admin` includes every role, also those
 * added later.
 */
export const ROLES = {
  accountant: { includes: [], description: 'accounts, balances, statements (JSON and CSV), breaks, anomalies' },
  auditor: { includes: ['accountant'], description: "what an accountant reads, plus every /audit/* route and the export" },
  operator: { includes: [], description: 'grants, linking, backfill, quarantine and parked events, projection status, alerts' },
  metrics: { includes: [], description: 'GET /metrics (Prometheus): a scraper needs nothing else' },
  admin: { includes: 'every role', description: 'everything' },
} as const satisfies Record<string, { includes: readonly string[] | 'every role'; description: string }>;

export type Role = keyof typeof ROLES;
export const ROLE_NAMES = Object.keys(ROLES) as Role[];
export const isRole = (value: unknown): value is Role => typeof value === 'string' && Object.hasOwn(ROLES, value);

/** The role and every role it includes, transitively, in table order. */
export function rolesOf(role: Role): Role[] {
  const seen = new Set<Role>();
  const visit = (r: Role) => {
    if (seen.has(r)) return;
    seen.add(r);
    const includes: readonly string[] | 'every role' = ROLES[r].includes;
    for (const next of includes === 'every role' ? ROLE_NAMES : includes) if (isRole(next)) visit(next);
  };
  visit(role);
  return ROLE_NAMES.filter((r) => seen.has(r));
}

/** Whether a key of `role` may use what `needed` may use. */
export const mayAct = (role: Role, needed: Role): boolean => rolesOf(role).includes(needed);

/** Every role that may use what `needed` may use (for 403 answers and the OpenAPI document). */
export const rolesAllowed = (needed: Role): Role[] => ROLE_NAMES.filter((r) => mayAct(r, needed));

/**
 * A key is 32 random bytes (256 bits) after a recognisable prefix. Guessing one is hopeless, so a single fast
 * SHA-256 is the right hash: a slow password hash protects guessable secrets and would cost every request.
 */
export const API_KEY_PATTERN = /^bl_[A-Za-z0-9_-]{43}$/;
export const newApiKey = (): string => `bl_${randomBytes(32).toString('base64url')}`;
export const apiKeySha256 = (key: string): string => createHash('sha256').update(key, 'utf8').digest('hex');

export const KEY_NAME_PATTERN = /^[\w.@:-]{1,100}$/;

export type CreateKeyError = 'invalid_role' | 'invalid_name' | 'name_taken';

/** Makes a key; the key itself is returned once and stored only as its hash. */
export async function createApiKey(
  keys: ApiKeys,
  input: { readonly name: string; readonly role: string; readonly now: Date },
): Promise<Result<{ readonly key: string; readonly record: ApiKeyRecord }, CreateKeyError>> {
  if (!isRole(input.role)) return err('invalid_role');
  if (!KEY_NAME_PATTERN.test(input.name) || API_KEY_PATTERN.test(input.name) || UUID.test(input.name)) return err('invalid_name');
  const key = newApiKey();
  const record = { id: randomUUID(), name: input.name, role: input.role, createdAt: input.now };
  const inserted = await keys.insert({ ...record, keySha256: apiKeySha256(key) });
  if (inserted === 'name_taken') return err('name_taken');
  return ok({ key, record: { ...record, lastUsedAt: null, revokedAt: null } });
}

export type RevokeOutcome =
  | { readonly status: 'revoked'; readonly key: ApiKeyRecord }
  | { readonly status: 'already_revoked'; readonly keys: readonly ApiKeyRecord[] }
  | { readonly status: 'not_found' };

/** Revokes the live key with this id or name. Other live keys of the role keep working: that is how keys rotate. */
export async function revokeApiKey(keys: ApiKeys, idOrName: string, now: Date): Promise<RevokeOutcome> {
  const revoked = await keys.revoke(idOrName, now);
  if (revoked) return { status: 'revoked', key: revoked };
  const known = await keys.find(idOrName);
  return known.length > 0 ? { status: 'already_revoked', keys: known } : { status: 'not_found' };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const isUuid = (value: string): boolean => UUID.test(value);

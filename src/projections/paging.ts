import { type RawBuilder, sql } from 'kysely';

/**
 * Keyset paging: a page is the rows after the last row of the page before it in a fixed, total order, so a page
 * costs the same wherever it lies in the list (never OFFSET). The cursor handed to clients is opaque: base64url of a
 * JSON array, the listing's tag first, then the last row's sort key as text.
 */
export interface Page<T> {
  readonly items: T[];
  /** The sort key of the last item, when more items follow. */
  readonly next: readonly string[] | null;
}

/** Each part of a key is checked before it reaches SQL, so that a forged cursor is a 400, never a cast error. */
export type KeyPart = 'text' | 'uuid' | 'micros' | 'position' | 'digits';

const CHECKS: Record<KeyPart, (value: string) => boolean> = {
  text: (v) => !v.includes('\u0000'),
  uuid: (v) => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(v),
  // Instants travel as whole microseconds since the epoch (exact, and any such number is a valid instant bound).
  micros: (v) => /^-?(0|[1-9]\d{0,16})$/.test(v),
  position: (v) => /^[0-9a-f]{16}-[0-9a-f]{16}$/.test(v),
  digits: (v) => /^(0|[1-9]\d{0,17})$/.test(v),
};

export function encodeKeyset(tag: string, key: readonly string[]): string {
  return Buffer.from(JSON.stringify([tag, ...key]), 'utf8').toString('base64url');
}

/** The key a cursor carries, or null when it is not a cursor of this listing. */
export function decodeKeyset(tag: string, text: string, parts: readonly KeyPart[]): string[] | null {
  if (text.length > 2048 || !/^[A-Za-z0-9_-]+$/.test(text)) return null;
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
  } catch {
    return null;
  }
  if (!Array.isArray(value) || value.length !== parts.length + 1 || value[0] !== tag) return null;
  const key = value.slice(1);
  if (!key.every((v, i): v is string => typeof v === 'string' && CHECKS[parts[i]!](v))) return null;
  return key as string[];
}

/** `limit + 1` rows were asked for: the extra one only says that another page follows. */
export function pageOf<R, T>(rows: readonly R[], limit: number, item: (row: R) => T, key: (row: R) => readonly string[]): Page<T> {
  const items = rows.slice(0, limit);
  const last = items[items.length - 1];
  return { items: items.map(item), next: rows.length > limit && last !== undefined ? key(last) : null };
}

/**
 * An instant as whole microseconds since the epoch: exact in a cursor (`micros`, as text), in arithmetic on instants
 * (`microsOf`, a bigint), and back to timestamptz without a parse (`fromMicros`: a cursor's text or a bigint expression).
 */
export const microsOf = (column: RawBuilder<unknown>) => sql<string>`(extract(epoch from ${column}) * 1000000)::bigint`;
export const micros = (column: RawBuilder<unknown>) => sql<string>`${microsOf(column)}::text`;
export const fromMicros = (value: string | RawBuilder<unknown>) =>
  sql<Date>`(timestamptz 'epoch' + ${typeof value === 'string' ? sql`${value}::bigint` : sql`(${value})`} * interval '1 microsecond')`;

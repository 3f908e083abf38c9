/** An API key as stored: never the key itself, only the SHA-256 of it (see src/application/access.ts). */
export interface ApiKeyRecord {
  readonly id: string;
  readonly name: string;
  /** A role of ROLES; a stored role this version does not know grants nothing. */
  readonly role: string;
  readonly createdAt: Date;
  readonly lastUsedAt: Date | null;
  readonly revokedAt: Date | null;
}

export interface NewApiKey {
  readonly id: string;
  readonly name: string;
  readonly role: string;
  readonly keySha256: string;
  readonly createdAt: Date;
}

/** Where API keys live: a write-side table, outside the event log (a key must be revocable and erasable). */
export interface ApiKeys {
  /** 'name_taken' when a live key already carries the name. */
  insert(key: NewApiKey): Promise<'inserted' | 'name_taken'>;
  /** The key whose hash this is, revoked or not; null when there is none. */
  findByHash(keySha256: string): Promise<ApiKeyRecord | null>;
  /** Every key, oldest first. */
  list(): Promise<ApiKeyRecord[]>;
  /** Revokes the live key with this id or name; returns it, or null when no live key matches. */
  revoke(idOrName: string, at: Date): Promise<ApiKeyRecord | null>;
  /** The keys with this id or name, live or revoked. */
  find(idOrName: string): Promise<ApiKeyRecord[]>;
  /** Records a use; callers do it at most about once a minute per key. */
  touch(id: string, at: Date): Promise<void>;
  /** How many keys exist, live and in all (revoked ones included). */
  count(): Promise<{ readonly live: number; readonly total: number }>;
}

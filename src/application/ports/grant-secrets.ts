/**
 * Where Cas access tokens live: outside the event log (events are forever and replicated; a token must be
 * replaceable and erasable), encrypted at rest by the adapter. Nothing that implements this logs a token.
 */
export interface GrantSecrets {
  /** Keeps the grant's access token, replacing an earlier one of the same grant. */
  save(grantId: string, accessToken: string, at: Date): Promise<void>;
  /** null when no token is kept for the grant (linked elsewhere, or never). */
  accessTokenOf(grantId: string): Promise<string | null>;
}

/** A stored token that cannot be decrypted: another SECRETS_KEY, or the row was altered. Never carries the token. */
export class GrantSecretUnreadable extends Error {
  override readonly name = 'GrantSecretUnreadable';
  constructor(readonly grantId: string, reason: string) {
    super(`the access token of grant ${grantId} cannot be decrypted: ${reason}`);
  }
}

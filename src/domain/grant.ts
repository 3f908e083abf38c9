/**
 * The state of a Cas grant (a customer's link to their bank), as the GRANT webhooks tell it. Pure: the read model
 * of grants folds GrantLinked and GrantWebhookReceived events through these functions.
 */
export const GRANT_STATUSES = ['active', 'login_required', 'paused', 'revoked', 'error'] as const;
export type GrantStatus = (typeof GRANT_STATUSES)[number];

export interface GrantError {
  readonly errorCode: string | null;
  readonly errorMessage: string | null;
}

export interface GrantState {
  readonly status: GrantStatus;
  readonly lastError: GrantError | null;
}

/** Error codes after which only the customer can help, by logging in to the bank again through Cas Link. */
const LOGIN_CODES = new Set(['GRANT_LOGIN_REQUIRED', 'OTP_REQUIRED']);

/**
 * The state after a GRANT webhook. A revoked grant stays revoked (Cas deletes it; a new link makes a new grant);
 * a code this version does not know leaves the status as it was, and any error it carries is still remembered.
 */
export function grantStateAfterWebhook(
  current: GrantState,
  webhookCode: string,
  error: { readonly errorCode: string | null; readonly errorMessage: string | null } | null,
): GrantState {
  if (current.status === 'revoked') return current;
  const lastError = error && (error.errorCode || error.errorMessage) ? { errorCode: error.errorCode, errorMessage: error.errorMessage } : null;
  switch (webhookCode) {
    case 'USER_PERMISSION_REVOKED':
    case 'GRANT_DELETED':
      return { status: 'revoked', lastError: lastError ?? current.lastError };
    case 'GRANT_PAUSED':
      return { status: 'paused', lastError: lastError ?? current.lastError };
    case 'ERROR':
      return {
        status: lastError?.errorCode && LOGIN_CODES.has(lastError.errorCode) ? 'login_required' : 'error',
        lastError: lastError ?? current.lastError,
      };
    case 'DEFAULT_UPDATE':
      // Cas reports the grant working again: the error it had is history.
      return { status: 'active', lastError: null };
    default:
      return { status: current.status, lastError: lastError ?? current.lastError };
  }
}

/** A link (or a re-link of the same grant) makes the grant active again, unless Cas already revoked it. */
export function grantStateAfterLink(current: GrantState | null): GrantState {
  if (current?.status === 'revoked') return current;
  return { status: 'active', lastError: null };
}

/** A grant first seen through a webhook (linked before this ledger or elsewhere) starts from here. */
export const UNKNOWN_GRANT_STATE: GrantState = { status: 'active', lastError: null };

/**
 * The BankHub port: the four Cas calls the ledger needs to link a customer's accounts and to pull back transactions
 * that the webhook channel lost. One adapter talks HTTP (src/infrastructure/bankhub); tests may hand in doubles.
 *
 * Access tokens are secrets: no implementation logs them or puts them into an error message.
 */

export interface CreateGrantTokenInput {
  /** Must be registered in the Cas console and carry no query string. */
  readonly redirectUri: string;
  readonly language?: string;
  /** Overrides the configured scopes; a list is sent comma-separated. */
  readonly scopes?: string | readonly string[];
  /** Opens Cas Link straight on one bank connector. */
  readonly fiServiceId?: string;
}

export interface GrantToken {
  /** Single-use; the user opens Cas Link with it. */
  readonly grantToken: string;
  readonly expiresAt: Date;
}

export interface ExchangedGrant {
  /** A secret: encrypt at rest, never log, never return. */
  readonly accessToken: string;
  /** The only link from a webhook to the customer: persist it. */
  readonly grantId: string;
  readonly requestId: string | null;
}

export interface IdentityAccount {
  /** Always a string: Vietnamese account numbers can start with 0 even when Cas sends a JSON number. */
  readonly accountNumber: string;
  readonly accountName: string | null;
  readonly currency: string | null;
  /** Whole minor units, exact; null when Cas sends none or something that is not a whole amount. */
  readonly balance: bigint | null;
  /** The bank, when Cas names it (no public schema promises it). */
  readonly fiId?: string | null;
}

export interface Identity {
  readonly accounts: readonly IdentityAccount[];
  readonly requestId: string | null;
}

export interface TransactionsAccountCursor {
  readonly accountNumber: string;
  /** '' reads the account from the start of the date window. */
  readonly fromReference: string;
}

export interface TransactionsQuery {
  /** YYYY-MM-DD, bank-local. */
  readonly fromDate: string;
  /** YYYY-MM-DD, bank-local, inclusive. */
  readonly toDate: string;
  readonly accounts?: readonly TransactionsAccountCursor[];
}

export interface TransactionsPage {
  /**
   * Cas transaction objects as parsed from the body, unvalidated: the ingest path validates them like a webhook's.
   * Numbers in them keep their exact digits (the adapter never turns an amount into a float).
   */
  readonly transactions: readonly unknown[];
  /** The response body as received, for audit and for re-parsing. */
  readonly rawBody: string;
  readonly requestId: string | null;
}

export interface BankHubClient {
  createGrantToken(input: CreateGrantTokenInput): Promise<GrantToken>;
  exchangePublicToken(publicToken: string): Promise<ExchangedGrant>;
  getIdentity(accessToken: string): Promise<Identity>;
  getTransactions(accessToken: string, query: TransactionsQuery): Promise<TransactionsPage>;
}

/** Error codes Cas is known to send (the metrics' labels). Cas may send others: `BankHubError.errorCode` stays a plain string. */
export const CAS_ERROR_CODES = ['GRANT_LOGIN_REQUIRED', 'GRANT_TOKEN_EXPIRED', 'GRANT_NOT_FOUND', 'FI_NOT_FOUND', 'RATE_LIMIT', 'INVALID_PARAM'] as const;

/** Codes the adapter itself raises when Cas gave no error body to read. */
export const TRANSPORT_ERROR_CODES = ['TIMEOUT', 'NETWORK_ERROR', 'UNEXPECTED_RESPONSE'] as const;

export interface BankHubErrorFields {
  /** Cas's own code (CAS_ERROR_CODES, or another Cas sends), or the adapter's (TRANSPORT_ERROR_CODES). */
  readonly errorCode: string;
  readonly errorType: string | null;
  readonly errorMessage: string | null;
  readonly requestId: string | null;
  /** null when no HTTP response arrived (timeout, network failure). */
  readonly httpStatus: number | null;
  /** Trying the same call again later may succeed (rate limit, 5xx, timeout, network). */
  readonly retryable: boolean;
  /** How long Cas asked us to wait (Retry-After), when it said. */
  readonly retryAfterMs?: number | null;
  /** e.g. `GET /identity`; never carries a query string or a token. */
  readonly operation?: string;
  readonly cause?: unknown;
}

/** A failed Cas call, after the adapter's own retries. */
export class BankHubError extends Error {
  override readonly name = 'BankHubError';
  readonly errorCode: string;
  readonly errorType: string | null;
  readonly errorMessage: string | null;
  readonly requestId: string | null;
  readonly httpStatus: number | null;
  readonly retryable: boolean;
  readonly retryAfterMs: number | null;
  readonly operation: string | null;

  constructor(fields: BankHubErrorFields) {
    super(describe(fields), fields.cause === undefined ? undefined : { cause: fields.cause });
    this.errorCode = fields.errorCode;
    this.errorType = fields.errorType;
    this.errorMessage = fields.errorMessage;
    this.requestId = fields.requestId;
    this.httpStatus = fields.httpStatus;
    this.retryable = fields.retryable;
    this.retryAfterMs = fields.retryAfterMs ?? null;
    this.operation = fields.operation ?? null;
  }
}

function describe(fields: BankHubErrorFields): string {
  const status = fields.httpStatus === null ? '' : ` (HTTP ${fields.httpStatus})`;
  const detail = fields.errorMessage ? `: ${fields.errorMessage}` : '';
  const request = fields.requestId ? ` [requestId ${fields.requestId}]` : '';
  return `BankHub ${fields.operation ?? 'call'} failed: ${fields.errorCode}${status}${detail}${request}`;
}

import type { CasTransaction, CasWebhookError, SimAccount, SimBank, SimBankOptions } from './bank';

// The simulator's public shapes: its options, what it records, and what a test can ask of it.

export type SimEndpoint = '/grant/token' | '/grant/exchange' | '/identity' | '/transactions';

export interface SimShapes {
  /** The sandbox answers /grant/token with expiredAt; the docs say expiration. */
  readonly expirationField?: 'expiredAt' | 'expiration';
  readonly expirationFormat?: 'iso' | 'epoch-seconds' | 'epoch-ms';
  /** Wrap /identity and /transactions payloads in `data`. */
  readonly dataEnvelope?: boolean;
  readonly transactionsOrder?: 'asc' | 'desc';
}

export interface WebhookDeliveryOptions {
  readonly targetUrl?: string;
  /** Never delivered; still visible in GET /transactions. */
  readonly dropRate?: number;
  /** Delivered twice (the copy a little later). */
  readonly duplicateRate?: number;
  /** Chance that a webhook is moved up to `reorderWindow` places later. */
  readonly reorderRate?: number;
  readonly reorderWindow?: number;
  /** Waits before each retry; Cas's is Fibonacci in minutes, the default is the same in tens of milliseconds. */
  readonly retryScheduleMs?: readonly number[];
  /** An attempt without an answer in this time counts as failed. */
  readonly timeoutMs?: number;
  /** Attempts in flight at once. */
  readonly concurrency?: number;
}

export interface CasSimulatorOptions {
  readonly port?: number;
  readonly host?: string;
  readonly clientId: string;
  readonly secretKey: string;
  readonly apiVersion?: string;
  readonly seed: number | string;
  readonly accounts?: number;
  readonly transactionsPerAccount?: number;
  readonly bankOptions?: Omit<SimBankOptions, 'seed' | 'accounts' | 'transactionsPerAccount'>;
  /** Use this bank instead of generating one. */
  readonly bank?: SimBank;
  /** Registered redirect URIs; when given, /grant/token refuses others. */
  readonly redirectUris?: readonly string[];
  readonly grantTokenTtlMs?: number;
  readonly publicTokenTtlMs?: number;
  /** GET /transactions calls allowed per grant per window (Cas: about one a minute). */
  readonly rateLimitWindowMs?: number;
  readonly rateLimitCalls?: number;
  /** Cas does not document Retry-After; send it only when a test wants it. */
  readonly retryAfterHeader?: boolean;
  readonly shapes?: SimShapes;
  /** Epoch milliseconds; lets a test move time for token expiry and the rate limit. */
  readonly now?: () => number;
  readonly webhooks?: WebhookDeliveryOptions;
}

export type SimGrantStatus = 'active' | 'login_required' | 'revoked';

export interface SimGrant {
  readonly grantId: string;
  readonly accessToken: string;
  readonly fiId: string;
  readonly fiServiceId: string;
  readonly accountKeys: readonly string[];
  readonly scopes: string;
  readonly linkedAt: Date;
  status: SimGrantStatus;
}

export interface SimFailure {
  readonly endpoint?: SimEndpoint | '*';
  /** How many matching requests fail; default: all until cleared. */
  readonly times?: number;
  /** Answer only after this long (a client with a shorter timeout sees a timeout). */
  readonly delayMs?: number;
  readonly status?: number;
  readonly errorCode?: string;
  readonly errorType?: string;
  readonly errorMessage?: string;
  /** Send this body verbatim (e.g. an HTML 502 page) instead of a Cas error. */
  readonly rawBody?: string;
}

export interface SimRequestRecord {
  readonly method: string;
  readonly path: string;
  readonly status: number;
  readonly errorCode: string | null;
  readonly at: number;
}

export interface DeliveredWebhook {
  readonly transactionId: string;
  readonly fiId: string;
  readonly accountNumber: string;
  readonly grantId: string | null;
  /** 0 for the first copy, 1 for a duplicate. */
  readonly copy: number;
  readonly attempts: number;
}

export interface DeliveryReport {
  readonly delivered: readonly DeliveredWebhook[];
  readonly dropped: readonly string[];
  readonly duplicated: readonly string[];
  /** Copies still failing when the retry schedule ran out: lost to the push channel, as after Cas's 24 h. */
  readonly gaveUp: readonly { transactionId: string; copy: number; attempts: number; lastStatus: number | null }[];
  /** The order the copies were first sent in. */
  readonly sent: readonly { transactionId: string; copy: number }[];
  readonly attempts: number;
}

export interface DeliverWebhooksOptions extends WebhookDeliveryOptions {
  /** Default: the accounts of active grants. Any account may be named; one without a grant gets grantId null. */
  readonly accounts?: readonly SimAccount[];
  /** Deliver exactly these (again, if already sent); default: those of `accounts` not yet handed to the deliverer. */
  readonly transactions?: readonly CasTransaction[];
}

export interface CasSimulator {
  readonly url: string;
  readonly bank: SimBank;
  readonly grants: ReadonlyMap<string, SimGrant>;
  readonly requestLog: readonly SimRequestRecord[];
  close(): Promise<void>;
  setFailure(failure: SimFailure | null): void;
  /** What Cas Link does after the user logs in to a bank: a single-use public token for the grant token. */
  mintPublicToken(grantToken: string, choice?: { fiId?: string; fiServiceId?: string }): string;
  /** The browser URL of the simulated Cas Link. */
  linkUrl(grantToken: string, redirectUri: string): string;
  setGrantStatus(grantId: string, status: SimGrantStatus): void;
  deliverWebhooks(options?: DeliverWebhooksOptions): Promise<DeliveryReport>;
  /** A GRANT webhook (e.g. ERROR / GRANT_LOGIN_REQUIRED), sent with the same retries. */
  deliverGrantWebhook(
    grantId: string,
    webhookCode: string,
    error?: CasWebhookError | null,
    options?: WebhookDeliveryOptions,
  ): Promise<{ delivered: boolean; attempts: number }>;
  /** Transactions of every account that the deliverer has not yet sent, dropped or given up on. */
  pendingTransactions(accounts?: readonly SimAccount[]): CasTransaction[];
}

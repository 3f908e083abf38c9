import type { BankTransaction, JsonValue, TransactionSource } from './bank-transaction';

/** A bank transaction booked for the first time. Immutable: its stream holds nothing else but conflicts. */
export interface BalanceChanged {
  readonly type: 'BalanceChanged';
  readonly data: {
    readonly transaction: BankTransaction;
    readonly source: TransactionSource;
    readonly grantId: string | null;
  };
}

/** The same transaction id arrived again with other content. The first version stays authoritative. */
export interface ConflictingDuplicateReceived {
  readonly type: 'ConflictingDuplicateReceived';
  readonly data: {
    readonly transaction: BankTransaction;
    readonly source: TransactionSource;
    readonly grantId: string | null;
    /** The BalanceChanged event this repeat contradicts. */
    readonly originalEventId: string;
  };
}

export interface CasError {
  readonly errorType: string | null;
  readonly errorCode: string | null;
  readonly errorMessage: string | null;
}

/** A GRANT webhook: the link's state changed (login required, paused, revoked, deleted…). */
export interface GrantWebhookReceived {
  readonly type: 'GrantWebhookReceived';
  readonly data: {
    readonly grantId: string | null;
    readonly webhookCode: string;
    readonly environment: string | null;
    readonly error: CasError | null;
  };
}

/** Any other well-formed webhook (INVOICE, AUTO_DEBIT, an unknown TRANSACTIONS code…): kept, never booked. */
export interface WebhookReceived {
  readonly type: 'WebhookReceived';
  readonly data: {
    readonly webhookType: string;
    readonly webhookCode: string;
    readonly grantId: string | null;
    readonly environment: string | null;
    readonly body: JsonValue;
  };
}

/**
 * The ledger asked Cas (GET /transactions) for the window of an open break, because the push channel seemed to
 * have lost what fills it. The transactions it recovered are BalanceChanged events of their own (source backfill).
 */
export interface GapHealAttempted {
  readonly type: 'GapHealAttempted';
  readonly data: {
    readonly breakId: string;
    readonly accountId: string;
    readonly grantId: string | null;
    readonly fromDate: string;
    readonly toDate: string;
    /** closed: the break is resolved now; not_closed: Cas has nothing that fills it; failed: Cas could not be asked. */
    readonly outcome: 'closed' | 'not_closed' | 'failed';
    readonly detail: string | null;
    readonly fetched: number;
    readonly accepted: number;
  };
}

/** An account owned by a grant, as Cas's /identity described it when the grant was linked. */
export interface LinkedAccount {
  readonly accountNumber: string;
  readonly accountName: string | null;
  readonly currency: string | null;
  /** The bank, when Cas said; an account is (fiId, accountNumber). */
  readonly fiId: string | null;
}

/**
 * A customer linked accounts through Cas Link and the public token was exchanged for a grant. The access token is
 * a secret kept encrypted outside the log: it never appears in an event.
 */
export interface GrantLinked {
  readonly type: 'GrantLinked';
  readonly data: {
    readonly grantId: string;
    readonly fiId: string | null;
    readonly accounts: readonly LinkedAccount[];
    readonly linkedAt: string;
    /** Cas's requestId of /grant/exchange, for a support ticket. */
    readonly requestId: string | null;
  };
}

/** What one grant gave the daily sweep. */
export interface GrantSweep {
  readonly grantId: string;
  readonly fiId: string | null;
  /** swept: Cas answered; failed: it could not be asked or refused (`errorCode`). */
  readonly outcome: 'swept' | 'failed';
  readonly errorCode: string | null;
  readonly fetched: number;
  readonly accepted: number;
  readonly duplicates: number;
  readonly conflicts: number;
  readonly invalid: number;
}

/** A transaction Cas held that the ledger did not: the push channel lost it, the sweep booked it. */
export interface RecoveredTransaction {
  readonly transactionId: string;
  readonly fiId: string;
  readonly accountNumber: string;
  readonly transactionDate: string;
}

/**
 * The daily sweep asked Cas (GET /transactions) for yesterday and today of every active grant, so that a lost last or
 * first transaction of an account, which no break reveals, is booked within a day. One per bank-local day, in
 * `sweep-<date>`: appended with expected revision no_stream, so a day is swept once across all instances.
 */
export interface SweepCompleted {
  readonly type: 'SweepCompleted';
  readonly data: {
    /** The bank-local day of the sweep (UTC+7). */
    readonly date: string;
    readonly fromDate: string;
    readonly toDate: string;
    readonly startedAt: string;
    readonly completedAt: string;
    readonly grants: readonly GrantSweep[];
    readonly totals: {
      readonly fetched: number;
      readonly accepted: number;
      readonly duplicates: number;
      readonly conflicts: number;
      readonly invalid: number;
    };
    readonly recovered: readonly RecoveredTransaction[];
  };
}

export type LedgerEvent =
  | BalanceChanged
  | ConflictingDuplicateReceived
  | GrantWebhookReceived
  | WebhookReceived
  | GapHealAttempted
  | GrantLinked
  | SweepCompleted;

export const transactionStreamId = (transactionId: string): string => `bankTx-${transactionId}`;
export const grantStreamId = (grantId: string | null): string => `grant-${grantId ?? 'none'}`;
export const webhookStreamId = (webhookType: string): string => `webhook-${webhookType.toLowerCase()}`;
export const healStreamId = (breakId: string): string => `heal-${breakId}`;
export const sweepStreamId = (date: string): string => `sweep-${date}`;

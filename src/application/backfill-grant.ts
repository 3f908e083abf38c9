import { stringify } from 'lossless-json';
import { isCalendarDate } from '../domain/calendar';
import type { RecoveredTransaction } from '../domain/events';
import { err, ok, type Result } from '../domain/result';
import { type FieldProblem, parseCasTransaction } from './cas-webhook';
import type { GrantCallQueue } from './grant-call-queue';
import { sha256 } from './digest';
import { type IngestOutcome, recordTransaction, storeRefusal } from './ingest-webhook';
import type { BankHubClient } from './ports/bankhub';
import { EventRejected, type EventStore } from './ports/event-store';
import type { GrantSecrets } from './ports/grant-secrets';
import type { Quarantine } from './ports/quarantine';

/**
 * Pulls a grant's transactions back from Cas (GET /transactions) and books each through `recordTransaction`, the
 * path webhooks take: a transaction the push channel already delivered is a duplicate, one it lost is accepted.
 */
export interface BackfillDeps {
  readonly bankHub: Pick<BankHubClient, 'getTransactions'>;
  readonly secrets: GrantSecrets;
  /** One lane per grant: Cas's rate limit is waited out, never returned to the caller. */
  readonly queue: GrantCallQueue;
  readonly eventStore: EventStore;
  readonly quarantine: Quarantine;
  readonly now: () => Date;
}

export interface BackfillRequest {
  readonly grantId: string;
  /** YYYY-MM-DD, bank-local, inclusive. */
  readonly from: string;
  readonly to: string;
  /** Only these accounts of the grant; all of them when absent. */
  readonly accountNumbers?: readonly string[];
  /** Our own request id (HTTP), null for the healer. */
  readonly requestId?: string | null;
}

export interface BackfillReport {
  readonly fetched: number;
  readonly accepted: number;
  readonly duplicates: number;
  readonly conflicts: number;
  /** Items that failed validation: quarantined with source `backfill`, never dropped. */
  readonly invalid: number;
  readonly casRequestId: string | null;
  /** The transactions booked now for the first time: the push channel had lost them. */
  readonly recovered: readonly RecoveredTransaction[];
}

export type BackfillRejection = 'unknown_grant' | 'invalid_window';

const utf8 = new TextEncoder();

export async function backfillGrant(
  deps: BackfillDeps,
  request: BackfillRequest,
): Promise<Result<BackfillReport, BackfillRejection>> {
  if (!isCalendarDate(request.from) || !isCalendarDate(request.to) || request.from > request.to) return err('invalid_window');
  const accessToken = await deps.secrets.accessTokenOf(request.grantId);
  if (accessToken === null) return err('unknown_grant');

  const page = await deps.queue.run(request.grantId, () =>
    deps.bankHub.getTransactions(accessToken, {
      fromDate: request.from,
      toDate: request.to,
      ...(request.accountNumbers?.length
        ? { accounts: request.accountNumbers.map((accountNumber) => ({ accountNumber, fromReference: '' })) }
        : {}),
    }),
  );
  const receivedAt = deps.now();
  const responseSha256 = sha256(page.rawBody);
  const counts = { fetched: page.transactions.length, accepted: 0, duplicates: 0, conflicts: 0, invalid: 0 };
  const recovered: RecoveredTransaction[] = [];

  for (const item of page.transactions) {
    // The item's own JSON text, numbers digit for digit: what the auditor gets back for this transaction.
    const text = stringify(item) ?? 'null';
    const itemSha256 = sha256(text);
    const quarantine = async (problems: FieldProblem[]) => {
      await deps.quarantine.put({
        rawBody: utf8.encode(text),
        bodySha256: itemSha256,
        contentType: 'application/json',
        problems,
        source: 'backfill',
        requestId: page.requestId,
        remoteAddress: null,
        receivedAt,
      });
      counts.invalid += 1;
    };
    const parsed = parseCasTransaction(text);
    if (!parsed.ok) {
      await quarantine(parsed.error);
      continue;
    }
    let outcome: IngestOutcome;
    try {
      outcome = await recordTransaction(deps.eventStore, {
        transaction: parsed.value,
        source: 'backfill',
        grantId: request.grantId,
        attachment: text,
        metadata: {
          rawSha256: itemSha256,
          receivedAt: receivedAt.toISOString(),
          source: 'backfill',
          requestId: request.requestId ?? null,
          casRequestId: page.requestId,
          responseSha256,
        },
      });
    } catch (error) {
      if (!(error instanceof EventRejected)) throw error;
      await quarantine([storeRefusal(error)]);
      continue;
    }
    if (outcome.status === 'accepted') {
      counts.accepted += 1;
      const tx = parsed.value;
      recovered.push({ transactionId: tx.id, fiId: tx.fiId, accountNumber: tx.accountNumber, transactionDate: tx.transactionDate });
    } else if (outcome.status === 'duplicate') counts.duplicates += 1;
    else if (outcome.status === 'conflict') counts.conflicts += 1;
  }
  return ok({ ...counts, casRequestId: page.requestId, recovered });
}

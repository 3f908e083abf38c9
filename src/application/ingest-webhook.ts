import { type BankTransaction, canonicalTransaction, type TransactionSource } from '../domain/bank-transaction';
import {
  grantStreamId,
  type LedgerEvent,
  transactionStreamId,
  webhookStreamId,
} from '../domain/events';
import { assertNever, err, ok, type Result } from '../domain/result';
import { type CasWebhook, type FieldProblem, readCasWebhook } from './cas-webhook';
import { sha256 } from './digest';
import { eventIdFor } from './event-ids';
import { encodeEvent } from '../domain/event-codec';
import { EventRejected, type EventStore, WrongExpectedVersion } from './ports/event-store';
import type { Quarantine } from './ports/quarantine';

/** The same Cas transaction id always gives the same event id. */
export const transactionEventId = (transactionId: string): string => eventIdFor(`transaction:${transactionId}`);

export type IngestOutcome =
  | { readonly status: 'ping' }
  | { readonly status: 'accepted'; readonly eventId: string }
  | { readonly status: 'duplicate'; readonly eventId: string }
  | { readonly status: 'conflict'; readonly eventId: string }
  | { readonly status: 'recorded'; readonly eventId: string };

export interface IngestRejection {
  readonly problems: readonly FieldProblem[];
  readonly quarantineId: string;
}

export interface IngestDeps {
  readonly eventStore: EventStore;
  readonly quarantine: Quarantine;
}

export interface Delivery {
  readonly body: Uint8Array;
  readonly contentType: string | null;
  readonly receivedAt: Date;
  readonly requestId: string | null;
  readonly remoteAddress: string | null;
}

/**
 * One webhook delivery → at most one new event. Resolves only after the event store has committed; a body that
 * cannot be booked is quarantined before the rejection is returned, so nothing Cas sent is lost either way.
 */
export async function ingestWebhook(deps: IngestDeps, delivery: Delivery): Promise<Result<IngestOutcome, IngestRejection>> {
  const parsed = readCasWebhook(delivery.body);
  const rawSha256 = sha256(delivery.body);
  if (!parsed.ok) return err(await quarantineDelivery(deps, delivery, parsed.error, rawSha256));
  const raw = { text: parsed.value.text, sha256: rawSha256 };
  try {
    return ok(await recordWebhook(deps.eventStore, parsed.value.webhook, raw, delivery));
  } catch (error) {
    // The parser lets nothing through that the store is known to refuse; should the store still refuse the event,
    // the body is the cause: it is kept in the quarantine and Cas is told, rather than retrying it for 24 h.
    if (!(error instanceof EventRejected)) throw error;
    return err(await quarantineDelivery(deps, delivery, [storeRefusal(error)], rawSha256));
  }
}

/** Keeps a delivery that will not be booked, with the reasons, so that an operator can inspect and re-ingest it. */
export async function quarantineDelivery(
  deps: IngestDeps,
  delivery: Delivery,
  problems: readonly FieldProblem[],
  bodySha256: string = sha256(delivery.body),
): Promise<IngestRejection> {
  const quarantineId = await deps.quarantine.put({
    rawBody: delivery.body,
    bodySha256,
    contentType: delivery.contentType,
    problems,
    source: 'webhook',
    requestId: delivery.requestId,
    remoteAddress: delivery.remoteAddress,
    receivedAt: delivery.receivedAt,
  });
  return { problems, quarantineId };
}

/** The problem reported for a body whose event the store refused to hold. */
export const storeRefusal = (error: EventRejected): FieldProblem => ({
  field: '(body)',
  message: `the event store cannot hold it: ${error.reason}`,
});

async function recordWebhook(
  store: EventStore,
  webhook: CasWebhook,
  raw: { text: string; sha256: string },
  delivery: Delivery,
): Promise<IngestOutcome> {
  // The body itself is the event's attachment; what is known about it goes in the metadata.
  const metadata = {
    rawSha256: raw.sha256,
    contentType: delivery.contentType,
    receivedAt: delivery.receivedAt.toISOString(),
    source: 'webhook',
    requestId: delivery.requestId,
  };
  switch (webhook.kind) {
    case 'ping':
      return { status: 'ping' };
    case 'transaction':
      return recordTransaction(store, {
        transaction: webhook.transaction,
        source: 'webhook',
        grantId: webhook.envelope.grantId,
        metadata,
        attachment: raw.text,
      });
    case 'grant':
      return recordOnce(store, grantStreamId(webhook.envelope.grantId), raw, { ...metadata, grantId: webhook.envelope.grantId }, {
        type: 'GrantWebhookReceived',
        data: {
          grantId: webhook.envelope.grantId,
          webhookCode: webhook.envelope.webhookCode,
          environment: webhook.envelope.environment,
          error: webhook.error,
        },
      });
    case 'other':
      return recordOnce(store, webhookStreamId(webhook.envelope.webhookType), raw, { ...metadata, grantId: webhook.envelope.grantId }, {
        type: 'WebhookReceived',
        data: { ...webhook.envelope, body: webhook.body },
      });
    default:
      return assertNever(webhook);
  }
}

/** A webhook that books nothing is kept once per body: Cas's retries of it are the same event. */
async function recordOnce(
  store: EventStore,
  streamId: string,
  raw: { text: string; sha256: string },
  metadata: Record<string, string | null>,
  event: LedgerEvent,
): Promise<IngestOutcome> {
  const eventId = eventIdFor(`body:${raw.sha256}`);
  await store.appendToStream(streamId, [{ eventId, ...encodeEvent(event), metadata, attachment: raw.text }], 'any');
  return { status: 'recorded', eventId };
}

export interface TransactionToRecord {
  readonly transaction: BankTransaction;
  readonly source: TransactionSource;
  readonly grantId: string | null;
  /** What the auditor gets back about the delivery: the raw body's hash, when and how it arrived. */
  readonly metadata: Record<string, string | null>;
  /** The body exactly as received (for backfill: the item's own JSON text), kept with the event. */
  readonly attachment: string | null;
}

/**
 * Books a transaction once. The stream `bankTx-<id>` must not exist yet; when it does, the first version is
 * compared by content: the same content is a duplicate, other content is kept as a conflict for the auditor.
 * Shared by webhooks and backfill, so both paths decide duplicates the same way.
 */
export async function recordTransaction(store: EventStore, input: TransactionToRecord): Promise<IngestOutcome> {
  const { transaction } = input;
  const streamId = transactionStreamId(transaction.id);
  const eventId = transactionEventId(transaction.id);
  const contentSha256 = sha256(canonicalTransaction(transaction));
  const metadata = { ...input.metadata, grantId: input.grantId, contentSha256 };
  const booked: LedgerEvent = {
    type: 'BalanceChanged',
    data: { transaction, source: input.source, grantId: input.grantId },
  };
  const attachment = input.attachment === null ? {} : { attachment: input.attachment };
  try {
    const result = await store.appendToStream(streamId, [{ eventId, ...encodeEvent(booked), metadata, ...attachment }], 'no_stream');
    if (result.status === 'appended') return { status: 'accepted', eventId };
  } catch (error) {
    if (!(error instanceof WrongExpectedVersion)) throw error;
  }
  const [original] = await store.readStream(streamId, { maxCount: 1 });
  if (!original) throw new Error(`stream ${streamId} reported as existing but reads empty`);
  if (original.metadata.contentSha256 === contentSha256) return { status: 'duplicate', eventId: original.eventId };
  const conflictId = eventIdFor(`conflict:${transaction.id}:${contentSha256}`);
  const conflict: LedgerEvent = {
    type: 'ConflictingDuplicateReceived',
    data: { transaction, source: input.source, grantId: input.grantId, originalEventId: original.eventId },
  };
  await store.appendToStream(streamId, [{ eventId: conflictId, ...encodeEvent(conflict), metadata, ...attachment }], 'any');
  return { status: 'conflict', eventId: conflictId };
}

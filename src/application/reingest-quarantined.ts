import { parseCasTransaction } from './cas-webhook';
import { type IngestDeps, type IngestOutcome, ingestWebhook, recordTransaction, storeRefusal } from './ingest-webhook';
import { EventRejected } from './ports/event-store';
import type { QuarantinedBody } from './ports/quarantine';

export type ReingestResult =
  | { readonly status: 'not_found' }
  | { readonly status: 'already_reingested'; readonly outcome: unknown }
  | { readonly status: 'still_invalid'; readonly problems: readonly { field: string; message: string }[] }
  | { readonly status: 'ingested'; readonly outcome: IngestOutcome };

/**
 * Runs a quarantined body through the same ingest path again (after a fix, or after Cas's shape was understood).
 * The original receive time is kept, so the books say when Cas really sent it.
 */
export async function reingestQuarantined(deps: IngestDeps, id: string, now: Date): Promise<ReingestResult> {
  const entry = await deps.quarantine.get(id);
  if (!entry) return { status: 'not_found' };
  if (entry.reingestedAt) return { status: 'already_reingested', outcome: entry.reingestOutcome };
  if (entry.source === 'backfill') return reingestBackfilled(deps, entry, now);
  const result = await ingestWebhook(deps, {
    body: entry.rawBody,
    contentType: entry.contentType,
    receivedAt: entry.firstReceivedAt,
    requestId: entry.requestId,
    remoteAddress: entry.remoteAddress,
  });
  if (!result.ok) return { status: 'still_invalid', problems: result.error.problems };
  await deps.quarantine.markReingested(id, result.value, now);
  return { status: 'ingested', outcome: result.value };
}

/** A backfill item is one Cas transaction object, not a webhook: it is validated and booked as backfill was. */
async function reingestBackfilled(deps: IngestDeps, entry: QuarantinedBody, now: Date): Promise<ReingestResult> {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(entry.rawBody);
  } catch {
    return { status: 'still_invalid', problems: [{ field: '(body)', message: 'the body is not valid UTF-8' }] };
  }
  const parsed = parseCasTransaction(text);
  if (!parsed.ok) return { status: 'still_invalid', problems: parsed.error };
  let outcome: IngestOutcome;
  try {
    outcome = await recordTransaction(deps.eventStore, {
      transaction: parsed.value,
      source: 'backfill',
      grantId: null,
      attachment: text,
      metadata: {
        rawSha256: entry.bodySha256,
        receivedAt: entry.firstReceivedAt.toISOString(),
        source: 'backfill',
        casRequestId: entry.requestId,
        reingestedFrom: entry.id,
      },
    });
  } catch (error) {
    if (!(error instanceof EventRejected)) throw error;
    return { status: 'still_invalid', problems: [storeRefusal(error)] };
  }
  await deps.quarantine.markReingested(entry.id, outcome, now);
  return { status: 'ingested', outcome };
}

import { type IngestDeps, type IngestOutcome, ingestWebhook } from './ingest-webhook';

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

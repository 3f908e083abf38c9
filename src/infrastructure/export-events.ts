import type { EventStore, RecordedEvent } from '../application/ports/event-store';
import type { JsonObject } from '../domain/bank-transaction';
import { accountEventRefs } from '../projections/audit.queries';
import type { ReadModel } from '../projections/read-model';

export interface ExportOptions {
  readonly eventStore: EventStore;
  readonly readModels: ReadModel;
  /** One account's events (transactions dated in the period), or the whole log (events recorded in the period). */
  readonly accountId?: string;
  readonly from?: string;
  readonly to?: string;
  readonly pageSize?: number;
}

/** The events of an export, streamed page by page in log order: memory stays flat however long the log. */
export async function* exportEvents(options: ExportOptions): AsyncGenerator<RecordedEvent> {
  const pageSize = options.pageSize ?? 1000;
  if (options.accountId) {
    let after: string | null = null;
    for (;;) {
      const refs = await accountEventRefs(options.readModels, options.accountId, {
        after,
        limit: pageSize,
        ...(options.from && options.to ? { from: options.from, to: options.to } : {}),
      });
      for (const event of await options.eventStore.readEvents(refs.map((r) => r.eventId), { withAttachments: true })) yield event;
      if (refs.length < pageSize) return;
      after = refs[refs.length - 1]!.position;
    }
  }
  const from = options.from ? Date.parse(`${options.from}T00:00:00Z`) : -Infinity;
  const to = options.to ? Date.parse(`${options.to}T00:00:00Z`) + 86_400_000 : Infinity;
  let after: string | null = null;
  for (;;) {
    const page = await options.eventStore.readAll({ after, maxCount: pageSize, withAttachments: true });
    for (const event of page.events) {
      const at = event.recordedAt.getTime();
      if (at >= from && at < to) yield event;
    }
    if (page.isEnd) return;
    after = page.lastPosition;
  }
}

/**
 * An event as auditors get it (GET /audit/events and the export alike): the log's envelope, with the attachment
 * (the body as Cas sent it) shown as `metadata.rawBody`, where it always was in this API.
 */
export function auditEventOf(event: RecordedEvent) {
  const metadata: JsonObject = event.attachment === undefined ? event.metadata : { ...event.metadata, rawBody: event.attachment };
  return {
    position: event.position,
    streamId: event.streamId,
    revision: event.revision.toString(),
    eventId: event.eventId,
    type: event.type,
    recordedAt: event.recordedAt.toISOString(),
    data: event.data,
    metadata,
  };
}

/** One NDJSON line per event, in the shape GET /audit/events returns. */
export const toNdjsonLine = (event: RecordedEvent): string => `${JSON.stringify(auditEventOf(event))}\n`;

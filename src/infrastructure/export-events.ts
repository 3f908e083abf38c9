import type { Kysely } from 'kysely';
import type { EventStore, RecordedEvent } from '../application/ports/event-store';
import { accountEventRefs } from '../projections/audit.queries';

export interface ExportOptions {
  readonly eventStore: EventStore;
  readonly readModels: { readonly db: Kysely<any>; readonly schema: string };
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
      const refs = await accountEventRefs(options.readModels.db, options.readModels.schema, options.accountId, {
        after,
        limit: pageSize,
        ...(options.from && options.to ? { from: options.from, to: options.to } : {}),
      });
      for (const event of await options.eventStore.readEvents(refs.map((r) => r.eventId))) yield event;
      if (refs.length < pageSize) return;
      after = refs[refs.length - 1]!.position;
    }
  }
  const from = options.from ? Date.parse(`${options.from}T00:00:00Z`) : -Infinity;
  const to = options.to ? Date.parse(`${options.to}T00:00:00Z`) + 86_400_000 : Infinity;
  let after: string | null = null;
  for (;;) {
    const page = await options.eventStore.readAll({ after, maxCount: pageSize });
    for (const event of page.events) {
      const at = event.recordedAt.getTime();
      if (at >= from && at < to) yield event;
    }
    if (page.isEnd) return;
    after = page.lastPosition;
  }
}

/** One NDJSON line per event, in the shape GET /audit/events returns. */
export function toNdjsonLine(event: RecordedEvent): string {
  return `${JSON.stringify({
    position: event.position,
    streamId: event.streamId,
    revision: event.revision.toString(),
    eventId: event.eventId,
    type: event.type,
    recordedAt: event.recordedAt.toISOString(),
    data: event.data,
    metadata: event.metadata,
  })}\n`;
}

import type { ReadAllPage, RecordedEvent, SubscribeOptions, Subscription } from '../../application/ports/event-store';

export interface FollowLogParts {
  readonly options: SubscribeOptions;
  readonly read: (after: string | null, maxCount: number) => Promise<ReadAllPage>;
  /** Resolves when new events may exist (or a poll interval passed, or the signal aborted). */
  readonly waitForNews: (signal: AbortSignal) => Promise<void>;
}

/**
 * Catch up, then follow: read pages after the last position handed to the handler; when at the end, wait for
 * news. A failing read or handler is reported and retried from the same position with backoff, so an outage
 * delays events but never drops or repeats one that the handler completed.
 */
export function followLog({ options, read, waitForNews }: FollowLogParts): Subscription {
  const stop = new AbortController();
  const maxBatch = options.maxBatch ?? 500;
  const done = (async () => {
    let position = options.after;
    let failures = 0;
    // The next page is read while the handler works on this one: reading and projecting overlap.
    let ahead: { after: string | null; page: Promise<ReadAllPage> } | null = null;
    while (!stop.signal.aborted) {
      try {
        const page: ReadAllPage = await (ahead?.after === position ? ahead.page : read(position, maxBatch));
        ahead = null;
        if (stop.signal.aborted) break;
        const events: readonly RecordedEvent[] = page.events;
        if (!page.isEnd && page.lastPosition) {
          const next = read(page.lastPosition, maxBatch);
          next.catch(() => {}); // a failed read-ahead is retried by the loop
          ahead = { after: page.lastPosition, page: next };
        }
        if (events.length > 0 && page.lastPosition) await options.onEvents(events, page.lastPosition);
        else if (page.lastPosition && page.lastPosition !== position) await options.onCheckpoint?.(page.lastPosition);
        position = page.lastPosition ?? position;
        failures = 0;
        if (page.isEnd) await waitForNews(stop.signal);
      } catch (error) {
        ahead = null;
        options.onError?.(error);
        failures += 1;
        await delay(Math.min(5_000, 100 * 2 ** Math.min(failures, 6)), stop.signal);
      }
    }
  })();
  return {
    async stop() {
      stop.abort();
      await done;
    },
  };
}

function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const onAbort = () => (clearTimeout(timer), resolve());
    const timer = setTimeout(() => (signal.removeEventListener('abort', onAbort), resolve()), ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

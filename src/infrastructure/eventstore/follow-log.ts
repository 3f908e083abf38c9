import type { ReadAllPage, RecordedEvent, SubscribeOptions, Subscription } from '../../application/ports/event-store';

export interface FollowLogParts {
  readonly options: SubscribeOptions;
  readonly read: (after: string | null, maxCount: number) => Promise<ReadAllPage>;
  /** Resolves when new events may exist (or a poll interval passed, or the signal aborted). */
  readonly waitForNews: (signal: AbortSignal) => Promise<void>;
  /** How many appends this process has committed so far: appends by other processes are found by the poll. */
  readonly appendsSeen: () => number;
  /**
   * Least time between two reads at the log's end while this process keeps appending (more than one commit since
   * the read before): what commits meanwhile is read as one batch. After a quiet spell an append is read at once.
   */
  readonly settleMs: number;
}

/**
 * Catch up, then follow: read pages after the last position handed to the handler; when at the end, wait for
 * news. A failing read or handler is reported and retried from the same position with backoff, so an outage
 * delays events but never drops or repeats one that the handler completed. Under a steady stream of local appends
 * (every group commit is news) the end is read at most once a `settleMs`, so the handler gets fewer, larger
 * batches; an append after a quiet spell is read at once.
 */
export function followLog({ options, read: readPage, waitForNews, appendsSeen, settleMs }: FollowLogParts): Subscription {
  const stop = new AbortController();
  const maxBatch = options.maxBatch ?? 500;
  const done = (async () => {
    let position = options.after;
    let failures = 0;
    // The next page is read while the handler works on this one: reading and projecting overlap.
    let ahead: { after: string | null; page: Promise<ReadAllPage>; seen: number } | null = null;
    let seenBefore = appendsSeen();
    // The appends seen when the page was asked for: any since then may be past the page's end.
    const read = (after: string | null) => ({ after, seen: appendsSeen(), page: readPage(after, maxBatch) });
    while (!stop.signal.aborted) {
      try {
        const asked = ahead?.after === position ? ahead : read(position);
        const page: ReadAllPage = await asked.page;
        const readAt = performance.now();
        // Commits counted before the page came back may be in it already (its snapshot can follow the count taken
        // when it was asked for), so "busy" counts only those after: two single commits read one after the other
        // are not a stream, and the append after them is read at once.
        const seenAtPage = appendsSeen();
        ahead = null;
        if (stop.signal.aborted) break;
        const events: readonly RecordedEvent[] = page.events;
        if (!page.isEnd && page.lastPosition) {
          ahead = read(page.lastPosition);
          ahead.page.catch(() => {}); // a failed read-ahead is retried by the loop
        }
        if (events.length > 0 && page.lastPosition) await options.onEvents(events, page.lastPosition);
        else if (page.lastPosition && page.lastPosition !== position) await options.onCheckpoint?.(page.lastPosition);
        position = page.lastPosition ?? position;
        failures = 0;
        if (page.isEnd) {
          // A stream of local commits (one per group) is read once a window, not once a commit.
          const busy = appendsSeen() - seenBefore > 1;
          const rest = readAt + settleMs - performance.now();
          if (busy && rest > 0) await delay(rest, stop.signal);
          if (appendsSeen() === asked.seen) await waitForNews(stop.signal);
        }
        seenBefore = seenAtPage;
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
    if (signal.aborted) return resolve();
    const onAbort = () => (clearTimeout(timer), resolve());
    const timer = setTimeout(() => (signal.removeEventListener('abort', onAbort), resolve()), ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

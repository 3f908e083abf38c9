import { describe, expect, it } from 'vitest';
import type { ReadAllPage, RecordedEvent } from '../../src/application/ports/event-store';
import { followLog } from '../../src/infrastructure/eventstore/follow-log';

/** A page of one event at position `at`, at the log's end. */
const pageOf = (at: number): ReadAllPage => ({
  events: [{ position: String(at), streamId: `s-${at}` } as unknown as RecordedEvent],
  lastPosition: String(at),
  isEnd: true,
});

/**
 * followLog over scripted parts: each read waits until the test answers it, the commit count is the test's, and no
 * poll ever fires (news comes only from `commit`), so nothing but the follower's own decisions can deliver.
 */
function scripted(settleMs: number) {
  let commits = 0;
  const reads: { after: string | null; answer: (page: ReadAllPage) => void }[] = [];
  const wakers = new Set<() => void>();
  const delivered: string[] = [];
  const subscription = followLog({
    options: { after: null, onEvents: async (events) => void delivered.push(...events.map((e) => e.streamId)) },
    read: (after) => new Promise<ReadAllPage>((answer) => reads.push({ after, answer })),
    waitForNews: (signal) =>
      new Promise<void>((resolve) => {
        wakers.add(resolve);
        signal.addEventListener('abort', () => resolve(), { once: true });
      }),
    appendsSeen: () => commits,
    settleMs,
  });
  const commit = () => {
    commits += 1;
    for (const wake of wakers) wake();
    wakers.clear();
  };
  const turns = () => new Promise((r) => setTimeout(r, 5));
  /** `commits` commits land, then read `n` comes back with `page`. */
  const answerAfter = async (n: number, commits: number, page: ReadAllPage) => {
    for (let i = 0; i < commits; i++) commit();
    reads[n]!.answer(page);
    await turns();
  };
  return { reads, delivered, commit, turns, answerAfter, subscription };
}

describe('following the log beside its own appends', () => {
  it('reads an append after a quiet spell at once, even when each commit before it landed inside the read that found it', async () => {
    const f = scripted(600_000);
    try {
      await f.turns();
      // Commit 1 lands after the first read was asked for but before its snapshot: that read finds it.
      await f.answerAfter(0, 1, pageOf(1));
      // The follower reads again (a commit came after it asked); commit 2 lands inside that read the same way.
      expect(f.reads).toHaveLength(2);
      await f.answerAfter(1, 1, pageOf(2));
      // Two commits, each read as soon as it landed, are no stream: the follower must not wait out the window.
      expect(f.reads).toHaveLength(3);
      await f.answerAfter(2, 0, { events: [], lastPosition: '2', isEnd: true });
      f.commit(); // after a quiet spell
      await f.turns();
      expect(f.reads).toHaveLength(4);
      await f.answerAfter(3, 0, pageOf(3));
      expect(f.delivered).toEqual(['s-1', 's-2', 's-3']);
    } finally {
      const stopped = f.subscription.stop();
      for (const r of f.reads.slice(4)) r.answer({ events: [], lastPosition: null, isEnd: true });
      await stopped;
    }
  });

  it('waits out the window when more than one commit landed after the page before came back', async () => {
    const f = scripted(600_000);
    try {
      await f.turns();
      await f.answerAfter(0, 1, pageOf(1));
      await f.answerAfter(1, 2, pageOf(2)); // two commits after the first page came back: a stream
      f.commit();
      await f.turns();
      expect(f.reads).toHaveLength(2); // reading once a window, not once a commit
    } finally {
      await f.subscription.stop();
    }
  });
});

import { describe, expect, it } from 'vitest';
import { encodePosition, type ReadAllPage } from '../../src/application/ports/event-store';
import type { RecordedEvent } from '../../src/domain/recorded-event';
import { followLog } from '../../src/infrastructure/eventstore/follow-log';

/** An in-memory log of `n` events that the test can append to, read the way the PostgreSQL store pages it. */
function memoryLog(n: number) {
  const events: RecordedEvent[] = [];
  const append = (count: number) => {
    for (let i = 0; i < count; i++) {
      const seq = BigInt(events.length + 1);
      events.push({
        position: encodePosition(seq, seq),
        streamId: 's',
        revision: seq - 1n,
        eventId: `e${seq}`,
        type: 'T',
        data: {},
        metadata: {},
        recordedAt: new Date(0),
      });
    }
  };
  append(n);
  const reads: number[] = [];
  const read = async (after: string | null, maxCount: number): Promise<ReadAllPage> => {
    reads.push(maxCount);
    const from = after === null ? 0 : events.findIndex((e) => e.position === after) + 1;
    const page = events.slice(from, from + maxCount);
    return { events: page, lastPosition: page.at(-1)?.position ?? after, isEnd: page.length < maxCount };
  };
  return { events, append, reads, read };
}

/** Follows the log until `until(seen)` holds, and returns the sizes of the batches handed over. */
async function follow(log: ReturnType<typeof memoryLog>, options: { maxBatch: number; catchUpBatch?: number }, onIdle: () => boolean) {
  const batches: number[] = [];
  const seen: string[] = [];
  let finish: () => void = () => {};
  const finished = new Promise<void>((resolve) => (finish = resolve));
  const subscription = followLog({
    options: {
      after: null,
      ...options,
      onEvents: async (events) => {
        batches.push(events.length);
        seen.push(...events.map((e) => e.eventId));
      },
    },
    read: log.read,
    waitForNews: async () => {
      if (!onIdle()) finish();
      await new Promise((resolve) => setTimeout(resolve, 1));
    },
  });
  await finished;
  await subscription.stop();
  return { batches, seen };
}

describe('followLog', () => {
  it('reads bigger batches while behind and small ones again once at the end', async () => {
    const log = memoryLog(47);
    let appended = false;
    const { batches, seen } = await follow(log, { maxBatch: 5, catchUpBatch: 20 }, () => {
      if (appended) return false;
      appended = true;
      log.append(7);
      return true;
    });
    // Behind: the first page is maxBatch; every page read after a full one is catchUpBatch. Live: maxBatch again.
    expect(batches).toEqual([5, 20, 20, 2, 5, 2]);
    expect(seen).toEqual(log.events.map((e) => e.eventId));
  });

  it('without catchUpBatch reads every page at maxBatch', async () => {
    const log = memoryLog(12);
    const { batches, seen } = await follow(log, { maxBatch: 5 }, () => false);
    expect(batches).toEqual([5, 5, 2]);
    expect(seen).toEqual(log.events.map((e) => e.eventId));
  });
});

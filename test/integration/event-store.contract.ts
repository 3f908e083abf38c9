import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DuplicateEventId,
  EventRejected,
  type EventStore,
  type EventToAppend,
  type RecordedEvent,
  WrongExpectedVersion,
} from '../../src/application/ports/event-store';

/**
 * The event-store port's contract. Every adapter runs this suite unchanged; `setup` gives a store over an empty
 * log (or a log no other test writes to streams of this run's prefix), and `poison` makes an event that this store
 * refuses to hold (each store refuses different things).
 */
export function describeEventStoreContract(
  name: string,
  setup: () => Promise<{ store: EventStore; cleanup: () => Promise<void>; poison: () => EventToAppend }>,
): void {
  describe(`event store contract: ${name}`, () => {
    let store: EventStore;
    let cleanup: () => Promise<void>;
    let poison: () => EventToAppend;
    const run = randomUUID().slice(0, 8);
    const stream = (label: string) => `contract${run}-${label}`;
    const event = (type = 'Tested', data: Record<string, string> = { amount: '12345678901234567890' }): EventToAppend => ({
      eventId: randomUUID(),
      type,
      data,
      metadata: { rawSha256: 'not checked by the store', note: 'x' },
      attachment: ' {"a": "Chuyển khoản"} ',
    });

    beforeAll(async () => {
      ({ store, cleanup, poison } = await setup());
    });
    afterAll(async () => {
      await cleanup?.();
    });

    it('appends to a new stream and reads it back exactly', async () => {
      const first = event();
      const result = await store.appendToStream(stream('new'), [first], 'no_stream');
      expect(result.status).toBe('appended');
      const read = await store.readStream(stream('new'));
      expect(read).toHaveLength(1);
      expect(read[0]).toMatchObject({
        streamId: stream('new'),
        revision: 0n,
        eventId: first.eventId,
        type: 'Tested',
        data: first.data,
        metadata: first.metadata,
      });
      expect(read[0]!.recordedAt).toBeInstanceOf(Date);
      expect(read[0]).not.toHaveProperty('attachment');
    });

    it('gives an event the same recordedAt through every read', async () => {
      const first = event('Timed');
      await store.appendToStream(stream('timed'), [first], 'no_stream');
      const [byStream] = await store.readStream(stream('timed'));
      const byId = await store.readEvent(first.eventId);
      const page = await store.readAll({ after: null, maxCount: 10_000, filter: { eventTypes: ['Timed'] } });
      const inLog = page.events.find((e) => e.eventId === first.eventId);
      expect(inLog?.recordedAt).toBeInstanceOf(Date);
      expect(inLog?.recordedAt.getTime()).toBe(byStream!.recordedAt.getTime());
      expect(byId?.recordedAt.getTime()).toBe(byStream!.recordedAt.getTime());
    });

    it('reads the metadata keys a reader asks for exactly as stored, and no key the event lacks', async () => {
      const type = `Metadata${run}`;
      const metadata = { receivedAt: '2026-06-01T01:02:03.456Z', amount: 12.5, flag: null, nested: { a: ['Chuyển', 1] }, rest: 'x' };
      await store.appendToStream(stream('metadata'), [{ ...event(type), metadata }], 'no_stream');
      const asked = ['receivedAt', 'flag', 'nested', 'amount', 'absent', 'receivedAt'];
      const [read] = (await store.readAll({ after: null, maxCount: 10_000, filter: { eventTypes: [type] }, metadataKeys: asked })).events;
      const received: RecordedEvent[] = [];
      const subscription = store.subscribe({ after: null, filter: { eventTypes: [type] }, metadataKeys: ['flag'], onEvents: async (events) => void received.push(...events) });
      await waitFor(() => received.length >= 1).finally(() => subscription.stop());
      // The keys asked are there as stored; a store may leave the others out, but never changes or invents one.
      for (const [got, keys] of [[read, asked], [received[0], ['flag']]] as const) {
        for (const key of keys) if (key !== 'absent') expect(got!.metadata[key]).toEqual(metadata[key as keyof typeof metadata]);
        expect(got!.metadata).not.toHaveProperty('absent');
        expect(metadata).toMatchObject(got!.metadata);
        expect(got!.metadata).toHaveProperty('flag', null);
      }
      const [none] = (await store.readAll({ after: null, maxCount: 10_000, filter: { eventTypes: [type] }, metadataKeys: [] })).events;
      expect(metadata).toMatchObject(none!.metadata);
      const [whole] = (await store.readAll({ after: null, maxCount: 10_000, filter: { eventTypes: [type] } })).events;
      expect(whole!.metadata).toEqual(metadata);
    });

    it('keeps an attachment beside its event, exactly, and hands it only to a read that asks', async () => {
      const body = '{"description":"Chuyển khoản \\u0041 ₫","amount":  10000 }\r\n';
      const withBody = { ...event('Attached'), attachment: body };
      const without = event('Attached');
      const { attachment: _none, ...bare } = without;
      await store.appendToStream(stream('attached'), [withBody], 'no_stream');
      await store.appendToStream(stream('bare'), [bare], 'no_stream');
      const received: RecordedEvent[] = [];
      const subscription = store.subscribe({
        after: null,
        filter: { eventTypes: ['Attached'] },
        onEvents: async (events) => {
          received.push(...events);
        },
      });
      try {
        const asked = { withAttachments: true } as const;
        expect((await store.readStream(stream('attached'), asked))[0]).toMatchObject({ attachment: body, metadata: withBody.metadata });
        expect((await store.readStream(stream('attached')))[0]).not.toHaveProperty('attachment');
        expect((await store.readStream(stream('attached')))[0]!.metadata).toEqual(withBody.metadata);
        expect(await store.readEvent(withBody.eventId, asked)).toMatchObject({ attachment: body });
        expect(await store.readEvent(withBody.eventId)).not.toHaveProperty('attachment');
        const many = await store.readEvents([withBody.eventId, bare.eventId], asked);
        expect(many.map((e) => e.attachment)).toEqual([body, undefined]);
        expect((await store.readEvents([withBody.eventId]))[0]).not.toHaveProperty('attachment');
        const all = await readEverything(store, { eventTypes: ['Attached'] }, asked);
        expect(all.find((e) => e.eventId === withBody.eventId)?.attachment).toBe(body);
        expect((await readEverything(store, { eventTypes: ['Attached'] })).some((e) => 'attachment' in e)).toBe(false);
        await waitFor(() => received.length >= 2);
        expect(received.some((e) => 'attachment' in e)).toBe(false);
      } finally {
        await subscription.stop();
      }
    });

    it('reads one event by its id, wherever it is stored', async () => {
      const e = event('ById');
      await store.appendToStream(stream('by-id'), [event(), e], 'no_stream');
      expect(await store.readEvent(e.eventId)).toMatchObject({ eventId: e.eventId, streamId: stream('by-id'), revision: 1n, data: e.data });
      expect(await store.readEvent(randomUUID())).toBeNull();
    });

    it('reads many events by id at once: those found, each once, in the order asked', async () => {
      const [a, b, c] = [event('Many'), event('Many'), event('Many')];
      await store.appendToStream(stream('many-1'), [a, b], 'no_stream');
      await store.appendToStream(stream('many-2'), [c], 'no_stream');
      const found = await store.readEvents([c.eventId, randomUUID(), a.eventId, 'not-an-id', b.eventId, a.eventId]);
      expect(found.map((e) => e.eventId)).toEqual([c.eventId, a.eventId, b.eventId]);
      expect(found[0]).toMatchObject({ streamId: stream('many-2'), revision: 0n, type: 'Many', data: c.data, metadata: c.metadata });
      expect(found[2]).toMatchObject({ streamId: stream('many-1'), revision: 1n });
      expect(await store.readEvents([])).toEqual([]);
    });

    it('reads a missing stream as empty', async () => {
      expect(await store.readStream(stream('missing'))).toEqual([]);
    });

    it('numbers revisions per stream and honours an exact expected revision', async () => {
      const s = stream('revisions');
      await store.appendToStream(s, [event(), event()], 'no_stream');
      const third = await store.appendToStream(s, [event()], 1n);
      expect(third).toMatchObject({ status: 'appended', nextRevision: 2n });
      await expect(store.appendToStream(s, [event()], 1n)).rejects.toBeInstanceOf(WrongExpectedVersion);
      await expect(store.appendToStream(s, [event()], 'no_stream')).rejects.toBeInstanceOf(WrongExpectedVersion);
      await expect(store.appendToStream(stream('absent'), [event()], 'stream_exists')).rejects.toBeInstanceOf(
        WrongExpectedVersion,
      );
      const any = await store.appendToStream(s, [event()], 'any');
      expect(any).toMatchObject({ status: 'appended', nextRevision: 3n });
      expect((await store.readStream(s)).map((e) => e.revision)).toEqual([0n, 1n, 2n, 3n]);
      expect((await store.readStream(s, { fromRevision: 2n, maxCount: 1 })).map((e) => e.revision)).toEqual([2n]);
    });

    it('treats a repeated event id as already stored, durably, under every expected revision', async () => {
      const s = stream('idempotent');
      const once = event();
      await store.appendToStream(s, [once], 'no_stream');
      expect(await store.appendToStream(s, [once], 'no_stream')).toMatchObject({ status: 'already_stored' });
      expect(await store.appendToStream(s, [once], 'any')).toMatchObject({ status: 'already_stored' });
      expect(await store.readStream(s)).toHaveLength(1);
      const other = await store.appendToStream(s, [event()], 'no_stream').catch((e: unknown) => e);
      expect(other).toBeInstanceOf(WrongExpectedVersion);
      expect((other as WrongExpectedVersion).actual).toBe(0n);
    });

    it('refuses an event id that lives in another stream', async () => {
      const shared = event();
      await store.appendToStream(stream('owner'), [shared], 'no_stream');
      await expect(store.appendToStream(stream('thief'), [shared], 'any')).rejects.toBeInstanceOf(DuplicateEventId);
    });

    it('stores exactly one of many concurrent appends of the same event', async () => {
      const s = stream('race');
      const same = event();
      const results = await Promise.all(Array.from({ length: 50 }, () => store.appendToStream(s, [same], 'no_stream')));
      expect(results.filter((r) => r.status === 'appended')).toHaveLength(1);
      expect(results.filter((r) => r.status === 'already_stored')).toHaveLength(49);
      expect(await store.readStream(s)).toHaveLength(1);
    });

    it('refuses an event it cannot hold with EventRejected, alone: appends beside it, at the same moment, are stored', async () => {
      const good = Array.from({ length: 40 }, () => event());
      const bad = poison();
      const appends = good.map((e, i) => store.appendToStream(stream(`beside-${i}`), [e], 'no_stream'));
      // In the middle of the burst, so that it is grouped with good appends where the store groups them.
      appends.splice(20, 0, store.appendToStream(stream('poison'), [bad], 'no_stream'));
      const outcomes = await Promise.allSettled(appends);
      const refused = outcomes.splice(20, 1)[0]!;
      expect(refused.status).toBe('rejected');
      expect((refused as PromiseRejectedResult).reason).toBeInstanceOf(EventRejected);
      expect((refused as PromiseRejectedResult).reason).toMatchObject({ eventId: bad.eventId });
      expect(outcomes.map((o) => o.status === 'fulfilled' && o.value.status)).toEqual(good.map(() => 'appended'));
      for (const [i, e] of good.entries()) expect((await store.readStream(stream(`beside-${i}`)))[0]?.eventId).toBe(e.eventId);
      expect(await store.readStream(stream('poison'))).toEqual([]);
      // Refused, not broken: the same event is refused again, and the stream takes a good one.
      await expect(store.appendToStream(stream('poison'), [bad], 'any')).rejects.toBeInstanceOf(EventRejected);
      expect((await store.appendToStream(stream('poison'), [event()], 'no_stream')).status).toBe('appended');
    });

    it('lets exactly one of two different first events win a new stream', async () => {
      const s = stream('contest');
      const outcomes = await Promise.allSettled([
        store.appendToStream(s, [event()], 'no_stream'),
        store.appendToStream(s, [event()], 'no_stream'),
      ]);
      expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
      const rejected = outcomes.find((o) => o.status === 'rejected') as PromiseRejectedResult;
      expect(rejected.reason).toBeInstanceOf(WrongExpectedVersion);
    });

    it('pages through the whole log in one global order, each event once', async () => {
      const mine = new Set<string>();
      for (let i = 0; i < 7; i++) {
        const e = event('Paged');
        mine.add(e.eventId);
        await store.appendToStream(stream(`page-${i}`), [e], 'no_stream');
      }
      const seen: RecordedEvent[] = [];
      let after: string | null = null;
      for (let pages = 0; pages < 10_000; pages++) {
        const page = await store.readAll({ after, maxCount: 3 });
        seen.push(...page.events);
        after = page.lastPosition;
        if (page.isEnd) break;
      }
      const positions = seen.map((e) => e.position);
      expect([...positions].sort()).toEqual(positions);
      expect(new Set(positions).size).toBe(positions.length);
      expect(seen.filter((e) => mine.has(e.eventId))).toHaveLength(7);
    });

    it('filters the log by event type and by stream prefix', async () => {
      const marker = `Filtered${run}`;
      await store.appendToStream(stream('filter-a'), [event(marker)], 'no_stream');
      await store.appendToStream(stream('filter-b'), [event('Other')], 'no_stream');
      const byType = await readEverything(store, { eventTypes: [marker] });
      expect(byType.map((e) => e.streamId)).toEqual([stream('filter-a')]);
      const byPrefix = await readEverything(store, { streamPrefixes: [stream('filter-')] });
      expect(byPrefix.map((e) => e.streamId).sort()).toEqual([stream('filter-a'), stream('filter-b')]);
    });

    it('reads several event types interleaved in log order, each once, page by page', async () => {
      const [a, b, c] = [`MixedA${run}`, `MixedB${run}`, `MixedC${run}`];
      const types = [a, b, a, c, a, b, b, a, c];
      for (const [i, type] of types.entries()) await store.appendToStream(stream(`mixed-${i}`), [event(type)], 'no_stream');
      const seen: RecordedEvent[] = [];
      let after: string | null = null;
      for (;;) {
        const page = await store.readAll({ after, maxCount: 2, filter: { eventTypes: [b, a, a] } });
        seen.push(...page.events);
        after = page.lastPosition;
        if (page.isEnd) break;
      }
      const expected = types.flatMap((type, i) => (type === c ? [] : [stream(`mixed-${i}`)]));
      expect(seen.map((e) => e.streamId)).toEqual(expected);
    });

    it('delivers to a subscriber what was there and what comes later, in order, once', async () => {
      const type = `Followed${run}`;
      await store.appendToStream(stream('follow-0'), [event(type)], 'no_stream');
      const received: RecordedEvent[] = [];
      const subscription = store.subscribe({
        after: null,
        filter: { eventTypes: [type] },
        onEvents: async (events) => {
          received.push(...events);
        },
      });
      try {
        for (let i = 1; i < 5; i++) await store.appendToStream(stream(`follow-${i}`), [event(type)], 'no_stream');
        await waitFor(() => received.length >= 5);
        expect(received.map((e) => e.streamId)).toEqual([0, 1, 2, 3, 4].map((i) => stream(`follow-${i}`)));
      } finally {
        await subscription.stop();
      }
    });

    it('answers a ping', async () => {
      await expect(store.ping()).resolves.toBeUndefined();
    });
  });
}

async function readEverything(store: EventStore, filter: { eventTypes?: string[]; streamPrefixes?: string[] }, options: { withAttachments?: boolean } = {}) {
  const all: RecordedEvent[] = [];
  let after: string | null = null;
  for (;;) {
    const page = await store.readAll({ after, maxCount: 100, filter, ...options });
    all.push(...page.events);
    after = page.lastPosition;
    if (page.isEnd) return all;
  }
}

async function waitFor(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met before the deadline');
    await new Promise((r) => setTimeout(r, 10));
  }
}

import { randomUUID } from 'node:crypto';
import { PassThrough } from 'node:stream';
import {
  type AllStreamResolvedEvent,
  type AppendResult as VendorAppendResult,
  type EventData,
  type Position,
  type ResolvedEvent,
  type SubscribeToAllOptions,
  StreamNotFoundError,
  UnavailableError,
  WrongExpectedVersionError,
} from '@eventstore/db-client';
import { describe, expect, it } from 'vitest';
import {
  DuplicateEventId,
  EventStoreUnavailable,
  type EventToAppend,
  type RecordedEvent,
  WrongExpectedVersion,
} from '../../src/application/ports/event-store';
import { CLAIM_STREAM_PREFIX } from '../../src/infrastructure/eventstore/eventstoredb-appends';
import { encodeVendorPosition, type VendorEvent } from '../../src/infrastructure/eventstore/eventstoredb-codec';
import { type EventStoreDbClient, createEventStoreDbEventStoreWithClient } from '../../src/infrastructure/eventstore/eventstoredb-event-store';

/**
 * An in-memory double of the client that answers appends the way the server does: an exact expected revision
 * equal to the current one appends even ids the stream already holds; a lower one whose following events carry
 * the same ids is acknowledged as a success (or, on some paths, refused); `ANY` is the cache-less worst case.
 */
function fakeServer(options: { repeats?: 'acknowledged' | 'refused' } = {}) {
  const log: VendorEvent[] = [];
  const streams = new Map<string, VendorEvent[]>();
  const appends: { streamName: string; expectedRevision: unknown }[] = [];
  const subscriptions: { options: SubscribeToAllOptions; stream: PassThrough }[] = [];
  const hooks = { beforeAppend: null as ((streamName: string) => Promise<void> | void) | null };
  let next = 1_000n;

  function write(streamName: string, events: readonly EventData[]): VendorAppendResult {
    const stream = streams.get(streamName) ?? [];
    streams.set(streamName, stream);
    for (const event of events) {
      const recorded: VendorEvent = {
        streamId: streamName,
        id: event.id,
        revision: BigInt(stream.length),
        type: event.type,
        created: new Date(),
        isJson: event.contentType === 'application/json',
        data: JSON.parse(JSON.stringify(event.data)),
        metadata: event.metadata === undefined ? undefined : JSON.parse(JSON.stringify(event.metadata)),
        position: { commit: next, prepare: next },
      };
      next += 64n;
      stream.push(recorded);
      log.push(recorded);
    }
    const last = stream[stream.length - 1]!;
    return { success: true, nextExpectedRevision: last.revision, position: last.position };
  }

  const resolved = (event: VendorEvent) => ({ event }) as unknown as ResolvedEvent & AllStreamResolvedEvent;
  const after = (a: Position, b: Position) => a.commit > b.commit || (a.commit === b.commit && a.prepare >= b.prepare);

  const client: EventStoreDbClient = {
    async appendToStream(streamName, events, { expectedRevision = 'any' }) {
      appends.push({ streamName, expectedRevision });
      await hooks.beforeAppend?.(streamName);
      const stream = streams.get(streamName) ?? [];
      const current = stream.length === 0 ? 'no_stream' : BigInt(stream.length - 1);
      const refuse = () => new WrongExpectedVersionError(undefined, { streamName, expected: expectedRevision, current });
      if (expectedRevision === 'any') return write(streamName, events);
      if (expectedRevision === 'stream_exists') {
        if (current === 'no_stream') throw refuse();
        return write(streamName, events);
      }
      const expectedNumber = expectedRevision === 'no_stream' ? -1n : expectedRevision;
      const currentNumber = current === 'no_stream' ? -1n : current;
      if (expectedNumber === currentNumber) return write(streamName, events);
      if (expectedNumber < currentNumber && options.repeats !== 'refused') {
        const following = stream.slice(Number(expectedNumber + 1n), Number(expectedNumber + 1n) + events.length);
        if (following.length === events.length && following.every((e, i) => e.id === events[i]!.id)) {
          const last = following[following.length - 1]!;
          return { success: true, nextExpectedRevision: last.revision, position: last.position };
        }
      }
      throw refuse();
    },
    readStream(streamName, { fromRevision = 'start', maxCount = Number.MAX_SAFE_INTEGER } = {}) {
      return (async function* () {
        const stream = streams.get(streamName);
        if (!stream) throw new StreamNotFoundError(undefined, streamName);
        const from = fromRevision === 'start' ? 0 : fromRevision === 'end' ? stream.length : Number(fromRevision);
        for (const event of stream.slice(from, from + Number(maxCount))) yield resolved(event);
      })();
    },
    readAll({ fromPosition = 'start', maxCount = Number.MAX_SAFE_INTEGER, direction = 'forwards' } = {}) {
      return (async function* () {
        if (direction === 'backwards') {
          for (const event of [...log].reverse().slice(0, Number(maxCount))) yield resolved(event);
          return;
        }
        const from = fromPosition === 'start' ? 0 : fromPosition === 'end' ? log.length : log.findIndex((e) => after(e.position!, fromPosition));
        for (const event of log.slice(from < 0 ? log.length : from, (from < 0 ? log.length : from) + Number(maxCount))) {
          yield resolved(event);
        }
      })();
    },
    subscribeToAll(options) {
      const stream = Object.assign(new PassThrough({ objectMode: true }), {
        unsubscribe: async () => {
          stream.end();
        },
      });
      subscriptions.push({ options, stream });
      return stream;
    },
    dispose: async () => {},
  };

  return { client, log, streams, appends, subscriptions, hooks, write };
}

const event = (type = 'BalanceChanged'): EventToAppend => ({
  eventId: randomUUID(),
  type,
  data: { amount: '-12345678901234567890' },
  metadata: { receivedAt: '2026-11-26T06:00:00Z' },
});

/** Events of the port's streams only, as a reader sees them (claims live in system streams). */
const userStreams = (server: ReturnType<typeof fakeServer>) =>
  [...server.streams.keys()].filter((name) => !name.startsWith(CLAIM_STREAM_PREFIX));

describe('EventStoreDB adapter: appends', () => {
  it('appends to a new stream with NO_STREAM and reports the position readers will see', async () => {
    const server = fakeServer();
    const store = createEventStoreDbEventStoreWithClient(server.client);
    const first = event();
    const result = await store.appendToStream('bankTx-1', [first], 'no_stream');
    const [stored] = await store.readStream('bankTx-1');
    expect(result).toEqual({ status: 'appended', nextRevision: 0n, position: stored!.position });
    expect(stored).toMatchObject({ eventId: first.eventId, data: first.data, metadata: first.metadata, revision: 0n });
  });

  it('writes the attachment in the same append as its event, and reads it back by every read that asks, only those', async () => {
    const server = fakeServer();
    const store = createEventStoreDbEventStoreWithClient(server.client);
    const withBody = { ...event(), attachment: '{"amount": 10000, "description": "Chuyển khoản"}' };
    await store.appendToStream('bankTx-1', [withBody], 'no_stream');
    expect(server.appends.filter((a) => a.streamName === 'bankTx-1')).toHaveLength(1);
    const asked = { withAttachments: true };
    expect((await store.readStream('bankTx-1', asked))[0]).toMatchObject({ attachment: withBody.attachment, metadata: withBody.metadata });
    expect((await store.readStream('bankTx-1'))[0]).not.toHaveProperty('attachment');
    expect((await store.readStream('bankTx-1'))[0]!.metadata).toEqual(withBody.metadata);
    expect(await store.readEvent(withBody.eventId, asked)).toMatchObject({ attachment: withBody.attachment });
    expect(await store.readEvents([withBody.eventId])).toEqual([expect.not.objectContaining({ attachment: expect.anything() })]);
    expect((await store.readAll({ after: null, maxCount: 10, withAttachments: true })).events[0]).toMatchObject({ attachment: withBody.attachment });
    expect((await store.readAll({ after: null, maxCount: 10 })).events[0]).not.toHaveProperty('attachment');
  });

  it.each(['acknowledged', 'refused'] as const)(
    'reports a repeated NO_STREAM append as already stored when the server %s it, and writes nothing',
    async (repeats) => {
      const server = fakeServer({ repeats });
      const store = createEventStoreDbEventStoreWithClient(server.client);
      const once = event();
      await store.appendToStream('bankTx-1', [once], 'no_stream');
      expect(await store.appendToStream('bankTx-1', [once], 'no_stream')).toEqual({
        status: 'already_stored',
        nextRevision: 0n,
      });
      expect(server.streams.get('bankTx-1')).toHaveLength(1);
    },
  );

  it('decides a repeat under ANY from the stream itself, never sending ANY to the server', async () => {
    const server = fakeServer();
    const store = createEventStoreDbEventStoreWithClient(server.client);
    const once = event();
    await store.appendToStream('grant-1', [event(), once], 'no_stream');
    expect(await store.appendToStream('grant-1', [once], 'any')).toEqual({ status: 'already_stored', nextRevision: 1n });
    expect(await store.appendToStream('grant-1', [once], 1n)).toEqual({ status: 'already_stored', nextRevision: 1n });
    expect(await store.appendToStream('grant-1', [once], 'stream_exists')).toMatchObject({ status: 'already_stored' });
    expect(server.streams.get('grant-1')).toHaveLength(2);
    expect(await store.appendToStream('grant-1', [event()], 'any')).toMatchObject({ status: 'appended', nextRevision: 2n });
    expect(server.appends.map((a) => a.expectedRevision)).not.toContain('any');
    expect(server.appends.filter((a) => a.streamName === 'grant-1').map((a) => a.expectedRevision)).toEqual([
      'no_stream',
      1n,
    ]);
  });

  it('refuses another first event for an existing stream with the actual revision', async () => {
    const server = fakeServer();
    const store = createEventStoreDbEventStoreWithClient(server.client);
    await store.appendToStream('bankTx-1', [event()], 'no_stream');
    const refused = await store.appendToStream('bankTx-1', [event()], 'no_stream').catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(WrongExpectedVersion);
    expect(refused).toMatchObject({ streamId: 'bankTx-1', expected: 'no_stream', actual: 0n });
  });

  it('refuses a wrong exact revision and a missing stream under stream_exists', async () => {
    const server = fakeServer();
    const store = createEventStoreDbEventStoreWithClient(server.client);
    await store.appendToStream('s', [event(), event()], 'no_stream');
    await expect(store.appendToStream('s', [event()], 0n)).rejects.toMatchObject({ actual: 1n, expected: 0n });
    await expect(store.appendToStream('absent', [event()], 'stream_exists')).rejects.toMatchObject({
      name: 'WrongExpectedVersion',
      actual: 'no_stream',
    });
    expect(server.streams.get('s')).toHaveLength(2);
    expect(userStreams(server)).toEqual(['s']);
  });

  it('refuses an event id already stored in another stream, writing nothing there', async () => {
    const server = fakeServer();
    const store = createEventStoreDbEventStoreWithClient(server.client);
    const shared = event();
    await store.appendToStream('bankTx-1', [shared], 'no_stream');
    await expect(store.appendToStream('bankTx-2', [shared], 'any')).rejects.toBeInstanceOf(DuplicateEventId);
    await expect(store.appendToStream('bankTx-2', [shared], 'no_stream')).rejects.toBeInstanceOf(DuplicateEventId);
    expect(userStreams(server)).toEqual(['bankTx-1']);
  });

  it('refuses a batch of which only part is stored as a duplicate id, not a repeat', async () => {
    const server = fakeServer();
    const store = createEventStoreDbEventStoreWithClient(server.client);
    const stored = event();
    await store.appendToStream('s', [stored], 'no_stream');
    await expect(store.appendToStream('s', [stored, event()], 'any')).rejects.toBeInstanceOf(DuplicateEventId);
    await expect(store.appendToStream('s', [stored, event()], 'no_stream')).rejects.toBeInstanceOf(DuplicateEventId);
    expect(server.streams.get('s')).toHaveLength(1);
  });

  it('tells exactly one of many concurrent identical appends that it wrote the event', async () => {
    const server = fakeServer();
    const store = createEventStoreDbEventStoreWithClient(server.client);
    const same = event();
    const results = await Promise.all(
      Array.from({ length: 20 }, () => store.appendToStream('bankTx-race', [same], 'no_stream')),
    );
    expect(results.filter((r) => r.status === 'appended')).toHaveLength(1);
    expect(results.filter((r) => r.status === 'already_stored')).toHaveLength(19);
    expect(server.streams.get('bankTx-race')).toHaveLength(1);
  });

  it('reports a write whose acknowledgement was another writer`s identical event as already stored', async () => {
    const server = fakeServer();
    const store = createEventStoreDbEventStoreWithClient(server.client);
    const same = event();
    // Another process's append of the same event lands between our claim and our append.
    server.hooks.beforeAppend = (streamName) => {
      if (streamName !== 'bankTx-1') return;
      server.hooks.beforeAppend = null;
      server.write('bankTx-1', [{ id: same.eventId, contentType: 'application/json', type: same.type, data: same.data, metadata: {} }]);
    };
    expect(await store.appendToStream('bankTx-1', [same], 'no_stream')).toEqual({
      status: 'already_stored',
      nextRevision: 0n,
    });
    expect(server.streams.get('bankTx-1')).toHaveLength(1);
  });

  it('under ANY, appends at the revision it finds after a concurrent writer moved the stream', async () => {
    const server = fakeServer();
    const store = createEventStoreDbEventStoreWithClient(server.client);
    await store.appendToStream('grant-1', [event()], 'no_stream');
    let interfered = false;
    server.hooks.beforeAppend = (streamName) => {
      if (streamName !== 'grant-1' || interfered) return;
      interfered = true;
      server.write('grant-1', [{ id: randomUUID(), contentType: 'application/json', type: 'Other', data: {}, metadata: {} }]);
    };
    const mine = event();
    expect(await store.appendToStream('grant-1', [mine], 'any')).toMatchObject({ status: 'appended', nextRevision: 2n });
    expect((await store.readStream('grant-1')).map((e) => e.eventId).at(-1)).toBe(mine.eventId);
    expect(server.appends.filter((a) => a.streamName === 'grant-1').map((a) => a.expectedRevision)).toEqual([
      'no_stream',
      0n,
      1n,
    ]);
  });

  it('gives up with WrongExpectedVersion when the stream keeps moving under ANY', async () => {
    const server = fakeServer();
    const store = createEventStoreDbEventStoreWithClient(server.client);
    await store.appendToStream('busy', [event()], 'no_stream');
    server.hooks.beforeAppend = (streamName) => {
      if (streamName === 'busy') {
        server.write('busy', [{ id: randomUUID(), contentType: 'application/json', type: 'Other', data: {}, metadata: {} }]);
      }
    };
    await expect(store.appendToStream('busy', [event()], 'any')).rejects.toBeInstanceOf(WrongExpectedVersion);
  });

  it('reads a stream from a revision, at most maxCount events, and a missing stream as empty', async () => {
    const server = fakeServer();
    const store = createEventStoreDbEventStoreWithClient(server.client);
    await store.appendToStream('s', [event(), event(), event(), event()], 'no_stream');
    expect((await store.readStream('s', { fromRevision: 1n, maxCount: 2 })).map((e) => e.revision)).toEqual([1n, 2n]);
    expect(await store.readStream('missing')).toEqual([]);
  });

  it('finds an event by id through the claim that names its stream', async () => {
    const server = fakeServer();
    const store = createEventStoreDbEventStoreWithClient(server.client);
    const second = event('Second');
    await store.appendToStream('owner', [event(), second], 'no_stream');
    expect(await store.readEvent(second.eventId)).toMatchObject({ streamId: 'owner', revision: 1n, type: 'Second' });
    expect(await store.readEvent(randomUUID())).toBeNull();
  });

  it('reads many events by id in the order asked, a bounded number of reads in flight', async () => {
    const server = fakeServer();
    const store = createEventStoreDbEventStoreWithClient(server.client);
    const events = Array.from({ length: 30 }, () => event());
    for (const [i, e] of events.entries()) await store.appendToStream(`bankTx-${i}`, [e], 'no_stream');
    const readStream = server.client.readStream.bind(server.client);
    let inFlight = 0;
    let most = 0;
    server.client.readStream = (streamName, options) =>
      (async function* () {
        inFlight += 1;
        most = Math.max(most, inFlight);
        try {
          await new Promise((r) => setTimeout(r, 2));
          yield* readStream(streamName, options);
        } finally {
          inFlight -= 1;
        }
      })() as ReturnType<typeof readStream>;
    const asked = [events[29]!.eventId, randomUUID(), ...events.slice(0, 29).map((e) => e.eventId), events[3]!.eventId.toUpperCase()];
    const found = await store.readEvents(asked);
    expect(found.map((e) => e.eventId)).toEqual([events[29]!.eventId, ...events.slice(0, 29).map((e) => e.eventId)]);
    expect(most).toBeGreaterThan(1);
    expect(most).toBeLessThanOrEqual(8);
    expect(await store.readEvents([])).toEqual([]);
  });
});

describe('EventStoreDB adapter: reading $all', () => {
  async function seeded() {
    const server = fakeServer();
    const store = createEventStoreDbEventStoreWithClient(server.client);
    server.write('$stats-node', [{ id: randomUUID(), contentType: 'application/json', type: '$statsCollected', data: {}, metadata: {} }]);
    for (let i = 0; i < 5; i++) await store.appendToStream(`bankTx-${i}`, [event()], 'no_stream');
    await store.appendToStream('grant-1', [event('GrantWebhookReceived')], 'no_stream');
    return { server, store };
  }

  async function pages(store: ReturnType<typeof createEventStoreDbEventStoreWithClient>, maxCount: number, filter?: object) {
    const seen: RecordedEvent[] = [];
    const sizes: number[] = [];
    let after: string | null = null;
    for (let i = 0; i < 100; i++) {
      const page = await store.readAll({ after, maxCount, filter });
      seen.push(...page.events);
      sizes.push(page.events.length);
      if (page.events.length > 0) expect(page.lastPosition! >= page.events.at(-1)!.position).toBe(true);
      after = page.lastPosition;
      if (page.isEnd) return { seen, sizes };
    }
    throw new Error('readAll never reached the end');
  }

  it('pages through every user event once, in global order, leaving system events and id claims out', async () => {
    const { server, store } = await seeded();
    const { seen, sizes } = await pages(store, 2);
    expect(seen.map((e) => e.streamId)).toEqual(['bankTx-0', 'bankTx-1', 'bankTx-2', 'bankTx-3', 'bankTx-4', 'grant-1']);
    expect(sizes.slice(0, 3)).toEqual([2, 2, 2]);
    expect(server.log.length).toBeGreaterThan(seen.length * 2); // claims and $stats were skipped, not returned
  });

  it('filters by event type and stream prefix, moving the position past what it skipped', async () => {
    const { server, store } = await seeded();
    const grants = await pages(store, 10, { eventTypes: ['GrantWebhookReceived'] });
    expect(grants.seen.map((e) => e.streamId)).toEqual(['grant-1']);
    const bank = await pages(store, 10, { streamPrefixes: ['bankTx-'] });
    expect(bank.seen.map((e) => e.streamId)).toEqual(['bankTx-0', 'bankTx-1', 'bankTx-2', 'bankTx-3', 'bankTx-4']);
    const last = await store.readAll({ after: null, maxCount: 10, filter: { eventTypes: ['Nothing'] } });
    expect(last).toEqual({ events: [], lastPosition: encodeVendorPosition(server.log.at(-1)!.position!), isEnd: true });
  });

  it('reads after a position exclusively and answers isEnd only when the page is short', async () => {
    const { store } = await seeded();
    const all = (await pages(store, 100)).seen;
    const rest = await store.readAll({ after: all[3]!.position, maxCount: 2 });
    expect(rest.events.map((e) => e.eventId)).toEqual([all[4]!.eventId, all[5]!.eventId]);
    expect(rest.isEnd).toBe(false);
    const end = await store.readAll({ after: rest.lastPosition, maxCount: 2 });
    expect(end).toMatchObject({ events: [], isEnd: true });
  });
});

describe('EventStoreDB adapter: subscriptions', () => {
  const vendorEvent = (streamId: string, type: string, commit: bigint): AllStreamResolvedEvent =>
    ({
      event: {
        streamId,
        id: randomUUID(),
        revision: 0n,
        type,
        created: new Date(),
        isJson: true,
        data: { n: String(commit) },
        metadata: {},
        position: { commit, prepare: commit },
      },
    }) as unknown as AllStreamResolvedEvent;

  async function until(condition: () => boolean, timeoutMs = 2_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!condition()) {
      if (Date.now() > deadline) throw new Error('condition not met before the deadline');
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
  }

  function gate() {
    let open = () => {};
    const opened = new Promise<void>((resolve) => {
      open = resolve;
    });
    return { opened, open };
  }

  it('does not report a checkpoint before the events that came before it are handled', async () => {
    const server = fakeServer();
    const store = createEventStoreDbEventStoreWithClient(server.client);
    const calls: string[] = [];
    const slow = gate();
    const subscription = store.subscribe({
      after: null,
      onEvents: async (events) => {
        calls.push(`events ${events.map((e) => e.data.n).join(',')}`);
        await slow.opened;
        calls.push('events handled');
      },
      onCheckpoint: async (position) => {
        calls.push(`checkpoint ${position}`);
      },
    });
    await until(() => server.subscriptions.length === 1);
    const { options, stream } = server.subscriptions[0]!;
    stream.write(vendorEvent('bankTx-1', 'BalanceChanged', 100n));
    stream.write(vendorEvent('bankTx-2', 'BalanceChanged', 200n));
    // The client awaits this hook before passing on anything read after it.
    const checkpointDone = options.filter!.checkpointReached!(stream as never, { commit: 300n, prepare: 300n });
    await until(() => calls.length > 0);
    slow.open();
    await checkpointDone;
    expect(calls).toEqual([
      'events 100,200',
      'events handled',
      `checkpoint ${encodeVendorPosition({ commit: 300n, prepare: 300n })}`,
    ]);
    await subscription.stop();
  });

  it('subscribes again from the last delivered position after a drop, reporting the error, without repeats', async () => {
    const server = fakeServer();
    const store = createEventStoreDbEventStoreWithClient(server.client, { resubscribeDelayMs: { initial: 1, max: 5 } });
    const received: RecordedEvent[] = [];
    const errors: unknown[] = [];
    const subscription = store.subscribe({
      after: null,
      filter: { eventTypes: ['BalanceChanged'] },
      onEvents: async (events) => {
        received.push(...events);
      },
      onError: (error) => errors.push(error),
    });
    await until(() => server.subscriptions.length === 1);
    const first = server.subscriptions[0]!;
    expect(first.options.fromPosition).toBe('start');
    first.stream.write(vendorEvent('bankTx-1', 'BalanceChanged', 100n));
    first.stream.write(vendorEvent('grant-1', 'GrantWebhookReceived', 200n)); // filtered out here, still read
    await until(() => received.length === 1);
    first.stream.emit('error', new UnavailableError(undefined, 'connection reset'));
    await until(() => server.subscriptions.length === 2);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(EventStoreUnavailable);
    const second = server.subscriptions[1]!;
    expect(second.options.fromPosition).toEqual({ commit: 200n, prepare: 200n });
    second.stream.write(vendorEvent('bankTx-1', 'BalanceChanged', 100n)); // a server repeating itself
    second.stream.write(vendorEvent('bankTx-2', 'BalanceChanged', 300n));
    await until(() => received.length >= 2);
    await subscription.stop();
    expect(received.map((e) => e.data.n)).toEqual(['100', '300']);
  });

  it('retries a batch whose handler failed, and reports the handler`s own error', async () => {
    const server = fakeServer();
    const store = createEventStoreDbEventStoreWithClient(server.client, { resubscribeDelayMs: { initial: 1, max: 5 } });
    const failure = new Error('projection down');
    const attempts: string[][] = [];
    const errors: unknown[] = [];
    const subscription = store.subscribe({
      after: null,
      onEvents: async (events) => {
        attempts.push(events.map((e) => e.data.n as string));
        if (attempts.length === 1) throw failure;
      },
      onError: (error) => errors.push(error),
    });
    await until(() => server.subscriptions.length === 1);
    server.subscriptions[0]!.stream.write(vendorEvent('bankTx-1', 'BalanceChanged', 100n));
    await until(() => server.subscriptions.length === 2);
    expect(server.subscriptions[1]!.options.fromPosition).toBe('start');
    server.subscriptions[1]!.stream.write(vendorEvent('bankTx-1', 'BalanceChanged', 100n));
    await until(() => attempts.length === 2);
    await subscription.stop();
    expect(errors).toEqual([failure]);
    expect(attempts).toEqual([['100'], ['100']]);
  });

  it('stops only after the running handler is done, and runs no handler afterwards', async () => {
    const server = fakeServer();
    const store = createEventStoreDbEventStoreWithClient(server.client);
    const slow = gate();
    let running = false;
    let calls = 0;
    const subscription = store.subscribe({
      after: null,
      onEvents: async () => {
        calls += 1;
        running = true;
        await slow.opened;
        running = false;
      },
    });
    await until(() => server.subscriptions.length === 1);
    const { stream } = server.subscriptions[0]!;
    stream.write(vendorEvent('bankTx-1', 'BalanceChanged', 100n));
    await until(() => running);
    let stopped = false;
    const stopping = subscription.stop().then(() => {
      stopped = true;
    });
    for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
    expect(stopped).toBe(false);
    slow.open();
    await stopping;
    expect(running).toBe(false);
    stream.write(vendorEvent('bankTx-2', 'BalanceChanged', 200n));
    for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
    expect(calls).toBe(1);
  });
});

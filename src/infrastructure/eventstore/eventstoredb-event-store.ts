import {
  BACKWARDS,
  END,
  EventStoreDBClient,
  FORWARDS,
  START,
  type AllStreamResolvedEvent,
  type ReadAllOptions as VendorReadAllOptions,
} from '@eventstore/db-client';
import {
  type EventStore,
  EventStoreUnavailable,
  type ReadAllOptions,
  type ReadAllPage,
  type RecordedEvent,
  type Subscription,
} from '../../application/ports/event-store';
import { appendIdempotently, readVendorStream, type StreamClient, streamOfEventId } from './eventstoredb-appends';
import { isVisible, positionOf, toRecordedEvent, toVendorPosition, translateError, type VendorEvent } from './eventstoredb-codec';
import { followAll, type SubscriptionClient } from './eventstoredb-subscription';

export interface EventStoreDbLogger {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

/** The part of `EventStoreDBClient` the adapter uses; tests pass a double. */
export interface EventStoreDbClient extends StreamClient, SubscriptionClient {
  readAll(options: VendorReadAllOptions): AsyncIterable<AllStreamResolvedEvent>;
  dispose(): Promise<void>;
}

export interface EventStoreDbEventStoreOptions {
  readonly logger?: EventStoreDbLogger;
  /** First and longest wait before a dropped subscription is opened again (doubling in between). */
  readonly resubscribeDelayMs?: { readonly initial: number; readonly max: number };
  readonly pingTimeoutMs?: number;
}

const MAX_READ_ALL_PAGES = 10;
const DEFAULT_READ_STREAM_COUNT = 10_000;
/** Reads by id in flight at once for readEvents. */
const READ_EVENTS_CONCURRENCY = 8;
const silent: EventStoreDbLogger = { warn: () => {}, info: () => {} };

export function createEventStoreDbEventStore(options: { connectionString: string } & EventStoreDbEventStoreOptions): EventStore {
  return createEventStoreDbEventStoreWithClient(EventStoreDBClient.connectionString(options.connectionString), options);
}

/**
 * The event store on EventStoreDB, in four rooms: the codec (eventstoredb-codec.ts: events, positions, filters,
 * errors), id claims and append decisions (eventstoredb-appends.ts), the subscription loop
 * (eventstoredb-subscription.ts), and the reads here.
 */
export function createEventStoreDbEventStoreWithClient(client: EventStoreDbClient, options: EventStoreDbEventStoreOptions = {}): EventStore {
  const logger = options.logger ?? silent;
  const delays = options.resubscribeDelayMs ?? { initial: 100, max: 5_000 };
  const subscriptions = new Set<Subscription>();

  /** The claim stream written before every append says which stream holds an event id. */
  async function readById(eventId: string, withAttachments: boolean): Promise<RecordedEvent | null> {
    const streamId = await streamOfEventId(client, eventId);
    if (!streamId) return null;
    const events = await readVendorStream(client, streamId, { fromRevision: 0n, maxCount: DEFAULT_READ_STREAM_COUNT });
    const found = events.find((event) => event.id.toLowerCase() === eventId.toLowerCase());
    return found ? toRecordedEvent(found, withAttachments) : null;
  }

  return {
    appendToStream: (streamId, events, expectedRevision) =>
      translated(() => appendIdempotently(client, streamId, events, expectedRevision, logger), events[0]?.eventId),

    readStream: (streamId, { fromRevision = 0n, maxCount = DEFAULT_READ_STREAM_COUNT, withAttachments = false } = {}) =>
      translated(async () => {
        if (maxCount <= 0) return [];
        const events = await readVendorStream(client, streamId, { fromRevision, maxCount });
        return events.map((event) => toRecordedEvent(event, withAttachments));
      }),

    readAll: (readOptions) => translated(() => readAll(client, readOptions)),

    readEvent: (eventId, { withAttachments = false } = {}) => translated(() => readById(eventId, withAttachments)),

    // Two reads per id (claim, stream), so a page of ids goes out a bounded number at a time, never all at once.
    readEvents: (eventIds, { withAttachments = false } = {}) =>
      translated(async () => {
        const ids = [...new Map(eventIds.map((id) => [id.toLowerCase(), id])).values()];
        const found: (RecordedEvent | null)[] = new Array(ids.length).fill(null);
        let next = 0;
        const worker = async () => {
          while (next < ids.length) {
            const i = next++;
            found[i] = await readById(ids[i]!, withAttachments);
          }
        };
        await Promise.all(Array.from({ length: Math.min(READ_EVENTS_CONCURRENCY, ids.length) }, worker));
        return found.filter((event): event is RecordedEvent => event !== null);
      }),

    subscribe(subscribeOptions) {
      const subscription = followAll(client, subscribeOptions, { logger, delays });
      subscriptions.add(subscription);
      return {
        async stop() {
          await subscription.stop();
          subscriptions.delete(subscription);
        },
      };
    },

    ping: () => translated(() => ping(client, options.pingTimeoutMs ?? 5_000)),

    close: async () => {
      await Promise.all([...subscriptions].map((subscription) => subscription.stop()));
      await client.dispose();
    },
  };
}

async function translated<T>(work: () => Promise<T>, eventId?: string): Promise<T> {
  try {
    return await work();
  } catch (error) {
    throw translateError(error, eventId);
  }
}

/**
 * The client reads $all without server-side filters in v6: read raw pages (a bounded number per call), drop `$`
 * events and apply the filter here. `lastPosition` may move past filtered events.
 */
async function readAll(client: EventStoreDbClient, { after, maxCount, filter, withAttachments = false }: ReadAllOptions): Promise<ReadAllPage> {
  const events: RecordedEvent[] = [];
  let lastPosition = after;
  let reachedEnd = false;
  if (maxCount <= 0) return { events, lastPosition, isEnd: false };
  for (let page = 0; page < MAX_READ_ALL_PAGES && events.length < maxCount && !reachedEnd; page++) {
    const want = maxCount - events.length;
    const request = lastPosition === null ? want : want + 1; // the server's start is inclusive, ours exclusive
    const raw: VendorEvent[] = [];
    for await (const resolved of client.readAll({
      direction: FORWARDS,
      fromPosition: lastPosition === null ? START : toVendorPosition(lastPosition),
      maxCount: request,
    })) {
      if (resolved.event) raw.push(resolved.event);
    }
    reachedEnd = raw.length < request;
    const cursor = lastPosition;
    const fresh = raw.filter((event) => cursor === null || positionOf(event) > cursor).slice(0, want);
    for (const event of fresh) {
      lastPosition = positionOf(event);
      if (isVisible(event, filter)) events.push(toRecordedEvent(event, withAttachments));
    }
  }
  return { events, lastPosition, isEnd: reachedEnd && events.length < maxCount };
}

/** Reading one event from the end proves the connection; a server that does not answer in time is unavailable. */
async function ping(client: EventStoreDbClient, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new EventStoreUnavailable(`EventStoreDB did not answer within ${timeoutMs} ms`)), timeoutMs);
  });
  const read = (async () => {
    for await (const _ of client.readAll({ direction: BACKWARDS, fromPosition: END, maxCount: 1 })) {
      // reading one event proves the connection
    }
  })();
  try {
    await Promise.race([read, timeout]);
  } finally {
    clearTimeout(timer);
    read.catch(() => {});
  }
}

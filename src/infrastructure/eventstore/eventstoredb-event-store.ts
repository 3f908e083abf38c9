import { createHash, randomUUID } from 'node:crypto';
import {
  BACKWARDS,
  CancelledError,
  DeadlineExceededError,
  END,
  EventStoreDBClient,
  MaxAppendSizeExceededError,
  FORWARDS,
  NO_STREAM,
  NotLeaderError,
  START,
  StreamNotFoundError,
  TimeoutError,
  UnavailableError,
  WrongExpectedVersionError,
  convertToCommandError,
  eventTypeFilter,
  jsonEvent,
  streamNameFilter,
  type AllStreamResolvedEvent,
  type AppendResult as VendorAppendResult,
  type AppendToStreamOptions,
  type EventData,
  type Filter,
  type Position,
  type ReadAllOptions as VendorReadAllOptions,
  type ReadStreamOptions,
  type ResolvedEvent,
  type SubscribeToAllOptions,
} from '@eventstore/db-client';
import type { JsonObject, JsonValue } from '../../domain/bank-transaction';
import {
  type AppendResult,
  DuplicateEventId,
  type EventFilter,
  EventRejected,
  type EventStore,
  EventStoreUnavailable,
  type EventToAppend,
  type ExpectedRevision,
  type ReadAllOptions,
  type ReadAllPage,
  type RecordedEvent,
  type SubscribeOptions,
  type Subscription,
  WrongExpectedVersion,
  decodePosition,
  encodePosition,
} from '../../application/ports/event-store';

export interface EventStoreDbLogger {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

export interface EventStoreDbSubscription {
  read(): AllStreamResolvedEvent | null;
  on(event: 'readable' | 'end' | 'close' | 'caughtUp', listener: () => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
  unsubscribe(): Promise<void>;
  destroy(): unknown;
}

/** The part of `EventStoreDBClient` the adapter uses; tests pass a double. */
export interface EventStoreDbClient {
  appendToStream(streamName: string, events: EventData[], options: AppendToStreamOptions): Promise<VendorAppendResult>;
  readStream(streamName: string, options: ReadStreamOptions): AsyncIterable<ResolvedEvent>;
  readAll(options: VendorReadAllOptions): AsyncIterable<AllStreamResolvedEvent>;
  subscribeToAll(options: SubscribeToAllOptions): EventStoreDbSubscription;
  dispose(): Promise<void>;
}

export interface EventStoreDbEventStoreOptions {
  readonly logger?: EventStoreDbLogger;
  /** First and longest wait before a dropped subscription is opened again (doubling in between). */
  readonly resubscribeDelayMs?: { readonly initial: number; readonly max: number };
  readonly pingTimeoutMs?: number;
}

export interface VendorEvent {
  readonly streamId: string;
  readonly id: string;
  readonly revision: bigint;
  readonly type: string;
  readonly created: Date;
  readonly isJson: boolean;
  readonly data: unknown;
  readonly metadata?: unknown;
  readonly position?: Position;
}

export interface StreamSnapshot {
  readonly revision: bigint | 'no_stream';
  readonly eventIds: ReadonlySet<string>;
}

/**
 * Written into each event's metadata and removed again on read: the one way to tell our own write from the
 * server acknowledging a repeat of events it already holds (it answers both with the same success).
 */
export const APPEND_ID_KEY = '$ledgerAppendId';

/**
 * EventStoreDB only knows event ids per stream. Each id is first claimed for its stream in a system stream of
 * its own (`$`-prefixed, so every read of the log leaves it out); an id claimed for another stream is a
 * DuplicateEventId, as the PostgreSQL adapter's unique index reports it.
 */
export const CLAIM_STREAM_PREFIX = '$ledger-event-id-';
const CLAIM_EVENT_TYPE = '$ledger-event-id-claimed';

const MAX_APPEND_ATTEMPTS = 5;
const MAX_READ_ALL_PAGES = 10;
const DEFAULT_READ_STREAM_COUNT = 10_000;
/** Reads by id in flight at once for readEvents. */
const READ_EVENTS_CONCURRENCY = 8;
const NOTHING = '(?!)';
const silent: EventStoreDbLogger = { warn: () => {}, info: () => {} };

export function createEventStoreDbEventStore(
  options: { connectionString: string } & EventStoreDbEventStoreOptions,
): EventStore {
  return createEventStoreDbEventStoreWithClient(EventStoreDBClient.connectionString(options.connectionString), options);
}

/**
 * Idempotency comes from what the server durably holds, never from `ANY` (whose de-duplication is an in-memory
 * cache of recent ids): only NO_STREAM or an exact revision just read is sent.
 */
export function createEventStoreDbEventStoreWithClient(
  client: EventStoreDbClient,
  options: EventStoreDbEventStoreOptions = {},
): EventStore {
  const logger = options.logger ?? silent;
  const delays = options.resubscribeDelayMs ?? { initial: 100, max: 5_000 };
  const pingTimeoutMs = options.pingTimeoutMs ?? 5_000;
  const subscriptions = new Set<Subscription>();

  async function translated<T>(work: () => Promise<T>, eventId?: string): Promise<T> {
    try {
      return await work();
    } catch (error) {
      throw translateError(error, eventId);
    }
  }

  async function readEvents(streamId: string, options: ReadStreamOptions): Promise<VendorEvent[]> {
    const events: VendorEvent[] = [];
    try {
      for await (const resolved of client.readStream(streamId, { direction: FORWARDS, ...options })) {
        if (resolved.event) events.push(resolved.event);
      }
    } catch (error) {
      if (asVendorError(error) instanceof StreamNotFoundError) return [];
      throw error;
    }
    return events;
  }

  async function readSnapshot(streamId: string): Promise<StreamSnapshot> {
    const events = await readEvents(streamId, { fromRevision: START });
    const last = events[events.length - 1];
    return {
      revision: last ? last.revision : 'no_stream',
      eventIds: new Set(events.map((event) => event.id.toLowerCase())),
    };
  }

  async function append(
    streamId: string,
    events: readonly EventToAppend[],
    expected: ExpectedRevision,
  ): Promise<AppendResult> {
    if (events.length === 0) throw new Error('appendToStream needs at least one event');
    const appendId = randomUUID();
    const proposed = events.map((event) => toEventData(event, appendId));
    await Promise.all(events.map((event) => claimEventId(streamId, event.eventId)));
    // NO_STREAM needs no read first: the server refuses or de-duplicates it from its index, never from a cache.
    let wire: 'no_stream' | bigint | null = expected === 'no_stream' ? 'no_stream' : null;
    let actual: bigint | 'no_stream' = 'no_stream';
    for (let attempt = 1; attempt <= MAX_APPEND_ATTEMPTS; attempt++) {
      if (wire === null) {
        const stream = await readSnapshot(streamId);
        actual = stream.revision;
        const decision = decideAppend(streamId, events, expected, stream);
        if (decision.status === 'already_stored') return decision;
        wire = decision.expectedRevision;
      }
      let result: VendorAppendResult | null = null;
      try {
        result = await client.appendToStream(streamId, proposed, { expectedRevision: wire });
      } catch (error) {
        const vendor = asVendorError(error);
        if (!(vendor instanceof WrongExpectedVersionError)) throw error;
        actual = vendor.actualVersion;
      }
      if (result?.success) return confirmAppend(streamId, result, appendId);
      wire = null; // someone else wrote in between: read the stream and decide again
    }
    throw new WrongExpectedVersion(streamId, expected, actual);
  }

  async function claimEventId(streamId: string, eventId: string): Promise<void> {
    const claimStream = claimStreamOf(eventId);
    for (let attempt = 1; attempt <= MAX_APPEND_ATTEMPTS; attempt++) {
      try {
        // The claim's own id is derived from (stream, event id): repeating the same claim is a server-side no-op.
        const result = await client.appendToStream(claimStream, [claimEvent(streamId, eventId)], {
          expectedRevision: NO_STREAM,
        });
        if (result.success) return;
      } catch (error) {
        if (!(asVendorError(error) instanceof WrongExpectedVersionError)) throw error;
      }
      const [claim] = await readEvents(claimStream, { fromRevision: 0n, maxCount: 1 });
      const owner = claim ? claimedStreamOf(claim) : undefined;
      if (owner === streamId) return;
      if (owner !== undefined) throw new DuplicateEventId(eventId);
    }
    throw new Error(`could not claim event id ${eventId} for ${streamId}`);
  }

  async function confirmAppend(streamId: string, result: VendorAppendResult, appendId: string): Promise<AppendResult> {
    const nextRevision = result.nextExpectedRevision;
    let written: VendorEvent | undefined;
    try {
      [written] = await readEvents(streamId, { fromRevision: nextRevision, maxCount: 1 });
    } catch (error) {
      if (!result.position) throw error;
      logger.warn({ streamId, err: error }, 'could not read an append back; reporting it as appended');
      return { status: 'appended', nextRevision, position: encodeVendorPosition(result.position) };
    }
    if (written && appendIdOf(written) !== appendId) return { status: 'already_stored', nextRevision };
    const position = written?.position ?? result.position;
    if (!position) throw new Error(`EventStoreDB returned no position for ${streamId}@${nextRevision}`);
    return { status: 'appended', nextRevision, position: encodeVendorPosition(position) };
  }

  /** The claim stream written before every append says which stream holds an event id. */
  async function readById(eventId: string): Promise<RecordedEvent | null> {
    const [claim] = await readEvents(claimStreamOf(eventId), { fromRevision: 0n, maxCount: 1 });
    const streamId = claim ? claimedStreamOf(claim) : undefined;
    if (!streamId) return null;
    const events = await readEvents(streamId, { fromRevision: 0n, maxCount: DEFAULT_READ_STREAM_COUNT });
    const found = events.find((event) => event.id.toLowerCase() === eventId.toLowerCase());
    return found ? toRecordedEvent(found) : null;
  }

  async function readAll({ after, maxCount, filter }: ReadAllOptions): Promise<ReadAllPage> {
    const events: RecordedEvent[] = [];
    let lastPosition = after;
    let reachedEnd = false;
    if (maxCount <= 0) return { events, lastPosition, isEnd: false };
    // The client reads $all without server-side filters: read raw pages and filter here, a bounded number of them.
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
        if (isVisible(event, filter)) events.push(toRecordedEvent(event));
      }
    }
    return { events, lastPosition, isEnd: reachedEnd && events.length < maxCount };
  }

  return {
    appendToStream: (streamId, events, expectedRevision) =>
      translated(() => append(streamId, events, expectedRevision), events[0]?.eventId),

    readStream: (streamId, { fromRevision = 0n, maxCount = DEFAULT_READ_STREAM_COUNT } = {}) =>
      translated(async () => {
        if (maxCount <= 0) return [];
        const events = await readEvents(streamId, { fromRevision, maxCount });
        return events.map(toRecordedEvent);
      }),

    readAll: (options) => translated(() => readAll(options)),

    readEvent: (eventId) => translated(() => readById(eventId)),

    // Two reads per id (claim, stream), so a page of ids goes out a bounded number at a time, never all at once.
    readEvents: (eventIds) =>
      translated(async () => {
        const ids = [...new Map(eventIds.map((id) => [id.toLowerCase(), id])).values()];
        const found: (RecordedEvent | null)[] = new Array(ids.length).fill(null);
        let next = 0;
        const worker = async () => {
          while (next < ids.length) {
            const i = next++;
            found[i] = await readById(ids[i]!);
          }
        };
        await Promise.all(Array.from({ length: Math.min(READ_EVENTS_CONCURRENCY, ids.length) }, worker));
        return found.filter((event): event is RecordedEvent => event !== null);
      }),

    subscribe(options) {
      const subscription = followAll(client, options, { logger, delays });
      subscriptions.add(subscription);
      return {
        async stop() {
          await subscription.stop();
          subscriptions.delete(subscription);
        },
      };
    },

    ping: () =>
      translated(async () => {
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new EventStoreUnavailable(`EventStoreDB did not answer within ${pingTimeoutMs} ms`)),
            pingTimeoutMs,
          );
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
      }),

    close: async () => {
      await Promise.all([...subscriptions].map((subscription) => subscription.stop()));
      await client.dispose();
    },
  };
}

/**
 * A catch-up subscription to $all that survives drops. The client emits events as a Node stream and does not
 * resubscribe, so this loop reads it batch by batch and opens a new one from the last handled position.
 */
function followAll(
  client: EventStoreDbClient,
  options: SubscribeOptions,
  settings: { readonly logger: EventStoreDbLogger; readonly delays: { initial: number; max: number } },
): Subscription {
  const { logger, delays } = settings;
  const maxBatch = Math.max(1, options.maxBatch ?? 100);
  let stopped = false;
  let cursor = options.after;
  let failures = 0;
  let poke = () => {};
  let interruptSleep = () => {};
  const handler = { failure: null as { error: unknown } | null };

  async function handled(work: () => Promise<void>): Promise<void> {
    try {
      await work();
    } catch (error) {
      handler.failure = { error };
      throw error;
    }
  }

  async function follow(): Promise<void> {
    const state = {
      failure: null as unknown,
      ended: false,
      checkpoint: null as { position: string; release: () => void } | null,
    };
    const wake = () => poke();
    const subscription = client.subscribeToAll({
      fromPosition: cursor === null ? START : toVendorPosition(cursor),
      // The client awaits this hook before it hands over anything read after the checkpoint, so holding it
      // until every earlier event is handled keeps the checkpoint from overtaking them.
      filter: serverFilter(options.filter, (_, position) => {
        return new Promise<void>((release) => {
          state.checkpoint?.release();
          state.checkpoint = { position: encodeVendorPosition(position), release };
          wake();
        });
      }),
    });
    subscription.on('readable', wake);
    subscription.on('end', () => {
      state.ended = true;
      wake();
    });
    subscription.on('close', () => {
      state.ended = true;
      wake();
    });
    subscription.on('error', (error) => {
      state.failure ??= error;
      wake();
    });
    subscription.on('caughtUp', () => {
      failures = 0;
    });
    try {
      while (!stopped) {
        if (state.failure !== null) throw state.failure;
        const batch: RecordedEvent[] = [];
        let seen: string | null = null;
        while (batch.length < maxBatch) {
          const resolved = subscription.read();
          if (resolved === null) break;
          const event = resolved.event;
          if (!event) continue;
          const position = positionOf(event);
          if (cursor !== null && position <= cursor) continue;
          seen = position;
          if (isVisible(event, options.filter)) batch.push(toRecordedEvent(event));
        }
        if (seen !== null) {
          if (batch.length > 0) await handled(() => options.onEvents(batch, seen));
          cursor = seen;
          failures = 0;
          continue;
        }
        const checkpoint = state.checkpoint;
        if (checkpoint) {
          state.checkpoint = null;
          try {
            if (cursor === null || checkpoint.position > cursor) {
              await handled(async () => options.onCheckpoint?.(checkpoint.position));
              cursor = checkpoint.position;
            }
          } finally {
            checkpoint.release();
          }
          continue;
        }
        if (state.ended) return;
        await new Promise<void>((resolve) => {
          poke = resolve;
        });
      }
    } finally {
      poke = () => {};
      state.checkpoint?.release();
      await subscription.unsubscribe().catch(() => {});
      subscription.destroy();
    }
  }

  const done = (async () => {
    while (!stopped) {
      try {
        await follow();
        if (!stopped) throw new EventStoreUnavailable('EventStoreDB ended the subscription');
      } catch (error) {
        if (stopped) break;
        failures += 1;
        const delayMs = Math.min(delays.max, delays.initial * 2 ** (failures - 1));
        const reported = handler.failure?.error === error ? error : translateError(error);
        handler.failure = null;
        logger.warn({ err: reported, after: cursor, delayMs }, 'EventStoreDB subscription dropped; subscribing again');
        try {
          options.onError?.(reported);
        } catch {
          // a failing error callback must not end the subscription
        }
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, delayMs);
          interruptSleep = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
    }
  })();

  return {
    async stop() {
      stopped = true;
      poke();
      interruptSleep();
      await done;
    },
  };
}

/**
 * What an append must do given what the stream durably holds. Mirrors the PostgreSQL adapter: event ids are
 * looked at before the expected revision, a repeat of a whole append is `already_stored`, a half-stored batch
 * is a duplicate id.
 */
export function decideAppend(
  streamId: string,
  events: readonly EventToAppend[],
  expected: ExpectedRevision,
  stream: StreamSnapshot,
): Extract<AppendResult, { status: 'already_stored' }> | { readonly status: 'append'; readonly expectedRevision: 'no_stream' | bigint } {
  const stored = events.filter((event) => stream.eventIds.has(event.eventId.toLowerCase()));
  if (stored.length > 0 && stored.length === events.length && stream.revision !== 'no_stream') {
    return { status: 'already_stored', nextRevision: stream.revision };
  }
  if (stored.length > 0) throw new DuplicateEventId(stored[0]!.eventId);
  const holds =
    expected === 'any' ||
    (expected === 'no_stream' && stream.revision === 'no_stream') ||
    (expected === 'stream_exists' && stream.revision !== 'no_stream') ||
    (typeof expected === 'bigint' && stream.revision === expected);
  if (!holds) throw new WrongExpectedVersion(streamId, expected, stream.revision);
  return { status: 'append', expectedRevision: stream.revision };
}

export const claimStreamOf = (eventId: string): string => `${CLAIM_STREAM_PREFIX}${eventId.toLowerCase()}`;

export function claimEvent(streamId: string, eventId: string): EventData {
  const hex = createHash('sha256').update(`${streamId}\n${eventId.toLowerCase()}`).digest('hex');
  const variant = ((Number.parseInt(hex[16]!, 16) & 0x3) | 0x8).toString(16);
  // A version-8 (custom) UUID, as EventStoreDB wants UUID event ids.
  const id = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-8${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
  return jsonEvent({ id, type: CLAIM_EVENT_TYPE, data: { streamId } });
}

function claimedStreamOf(claim: VendorEvent): string | undefined {
  const data = claim.data;
  if (typeof data !== 'object' || data === null) return undefined;
  const streamId = (data as Record<string, unknown>).streamId;
  return typeof streamId === 'string' ? streamId : undefined;
}

export function toEventData(event: EventToAppend, appendId: string): EventData {
  if (Object.hasOwn(event.metadata, APPEND_ID_KEY)) {
    throw new Error(`event ${event.eventId}: metadata key ${APPEND_ID_KEY} is reserved by the event store`);
  }
  return jsonEvent({
    id: event.eventId,
    type: event.type,
    data: event.data,
    metadata: { ...event.metadata, [APPEND_ID_KEY]: appendId },
  });
}

export function toRecordedEvent(event: VendorEvent): RecordedEvent {
  if (!event.position) throw new Error(`EventStoreDB returned no position for ${event.streamId}@${event.revision}`);
  const { [APPEND_ID_KEY]: _appendId, ...metadata } = jsonObject(event.metadata ?? {}, event, 'metadata');
  return {
    position: encodeVendorPosition(event.position),
    streamId: event.streamId,
    revision: event.revision,
    eventId: event.id,
    type: event.type,
    data: jsonObject(event.data, event, 'data'),
    metadata,
    recordedAt: event.created,
  };
}

export function isVisible(
  event: Pick<VendorEvent, 'streamId' | 'type' | 'isJson'>,
  filter: EventFilter | undefined,
): boolean {
  if (event.type.startsWith('$') || event.streamId.startsWith('$') || !event.isJson) return false;
  if (filter?.eventTypes && !filter.eventTypes.includes(event.type)) return false;
  if (filter?.streamPrefixes && !filter.streamPrefixes.some((prefix) => event.streamId.startsWith(prefix))) {
    return false;
  }
  return true;
}

/**
 * The server filters on one thing only: the event types if given, else the stream prefixes; `isVisible` then
 * applies the whole filter. With no filter it still leaves system events out, which also makes it send checkpoints.
 */
export function serverFilter(
  filter: EventFilter | undefined,
  checkpointReached: NonNullable<Filter['checkpointReached']>,
): Filter {
  if (filter?.eventTypes) {
    const regex = filter.eventTypes.length === 0 ? NOTHING : `^(?:${filter.eventTypes.map(escapeRegex).join('|')})$`;
    return eventTypeFilter({ regex, checkpointReached });
  }
  if (filter?.streamPrefixes) {
    return filter.streamPrefixes.length === 0
      ? streamNameFilter({ regex: NOTHING, checkpointReached })
      : streamNameFilter({ prefixes: [...filter.streamPrefixes], checkpointReached });
  }
  return eventTypeFilter({ regex: '^[^$]', checkpointReached });
}

/** Vendor errors as port errors; `eventId` names the event an append refused for its content was about. */
export function translateError(error: unknown, eventId?: string): unknown {
  const vendor = asVendorError(error);
  if (vendor instanceof MaxAppendSizeExceededError && eventId !== undefined) {
    return new EventRejected(eventId, `larger than the server's maximum append size (${vendor.maxAppendSize} bytes)`, { cause: error });
  }
  if (vendor instanceof WrongExpectedVersionError) {
    return new WrongExpectedVersion(vendor.streamName, vendor.expectedVersion, vendor.actualVersion);
  }
  if (
    vendor instanceof UnavailableError ||
    vendor instanceof DeadlineExceededError ||
    vendor instanceof TimeoutError ||
    vendor instanceof NotLeaderError ||
    vendor instanceof CancelledError ||
    (vendor instanceof Error && /^Failed to discover after \d+ attempts/.test(vendor.message))
  ) {
    return new EventStoreUnavailable(`EventStoreDB unavailable: ${vendor.message}`, { cause: error });
  }
  return vendor;
}

export const encodeVendorPosition = (position: Position): string => encodePosition(position.commit, position.prepare);

export function toVendorPosition(position: string): Position {
  const { major, minor } = decodePosition(position);
  return { commit: major, prepare: minor };
}

function positionOf(event: VendorEvent): string {
  if (!event.position) throw new Error(`EventStoreDB returned no position for ${event.streamId}@${event.revision}`);
  return encodeVendorPosition(event.position);
}

function appendIdOf(event: VendorEvent): unknown {
  const metadata = event.metadata;
  return typeof metadata === 'object' && metadata !== null ? (metadata as Record<string, unknown>)[APPEND_ID_KEY] : undefined;
}

/** gRPC failures sometimes surface raw (e.g. from the client's capability check): give them the client's class. */
function asVendorError(error: unknown): unknown {
  return error instanceof Error ? convertToCommandError(error) : error;
}

function jsonObject(value: unknown, event: VendorEvent, part: string): JsonObject {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || value instanceof Uint8Array) {
    throw new Error(`${event.streamId}@${event.revision}: ${part} is not a JSON object`);
  }
  return value as { [key: string]: JsonValue };
}

function escapeRegex(text: string): string {
  return text.replace(/[\\^$.|?*+()[\]{}]/g, '\\$&');
}

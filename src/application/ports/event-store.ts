import type { JsonObject } from '../../domain/bank-transaction';
import type { RecordedEvent } from '../../domain/recorded-event';

export type { RecordedEvent };

/** What an append expects of its stream: none yet, whatever, some, or exactly this revision. */
export type ExpectedRevision = 'no_stream' | 'any' | 'stream_exists' | bigint;

export interface EventToAppend {
  readonly eventId: string;
  readonly type: string;
  readonly data: JsonObject;
  readonly metadata: JsonObject;
  /**
   * What the event was made from, kept beside it exactly, as text (the webhook body as Cas sent it, decoded as UTF-8
   * strictly, so its bytes round-trip): part of the event, never of its metadata, and heavy, so only an auditor's
   * read loads it. Facts about it (its SHA-256, content type) belong in the metadata.
   */
  readonly attachment?: string;
}

/** Reads leave attachments out unless asked: projections, subscriptions and duplicate checks never need them. */
export interface ReadOptions {
  readonly withAttachments?: boolean;
}

export type AppendResult =
  | { readonly status: 'appended'; readonly nextRevision: bigint; readonly position: string }
  /** Every event id was already in the stream: nothing was written. */
  | { readonly status: 'already_stored'; readonly nextRevision: bigint };

export interface ReadAllOptions extends ReadOptions {
  /** Exclusive; null reads from the start of the log. */
  readonly after: string | null;
  readonly maxCount: number;
  readonly filter?: EventFilter;
  readonly metadataKeys?: MetadataKeys;
}

/**
 * The metadata keys a reader needs (a projection declares them): a store may then hand back each event's metadata
 * with only these keys, each exactly as stored and absent where the event has none, which spares parsing the rest
 * (a projection reads one key of five). A store may also ignore it and return the whole metadata. Absent: all of it.
 */
export type MetadataKeys = readonly string[];

export interface ReadStreamOptions extends ReadOptions {
  readonly fromRevision?: bigint;
  readonly maxCount?: number;
}

export interface EventFilter {
  readonly eventTypes?: readonly string[];
  readonly streamPrefixes?: readonly string[];
}

export interface ReadAllPage {
  readonly events: readonly RecordedEvent[];
  /** The position to read after next; it may be past the last event returned (a filter skipped the rest). */
  readonly lastPosition: string | null;
  readonly isEnd: boolean;
}

export interface SubscribeOptions {
  readonly after: string | null;
  readonly filter?: EventFilter;
  readonly maxBatch?: number;
  /** As ReadAllOptions.metadataKeys. */
  readonly metadataKeys?: MetadataKeys;
  /** Called with events in global order; the next batch waits for the promise. */
  readonly onEvents: (events: readonly RecordedEvent[], lastPosition: string) => Promise<void>;
  /** Called when the subscription has read everything but found nothing for the filter. */
  readonly onCheckpoint?: (position: string) => Promise<void>;
  /** Called when reading fails; the subscription keeps retrying with backoff. */
  readonly onError?: (error: unknown) => void;
}

export interface Subscription {
  /** Resolves once no handler is running and none will run again. */
  stop(): Promise<void>;
}

/**
 * The event-store port. Two adapters implement it (PostgreSQL, EventStoreDB) and pass one contract suite
 * (test/integration/event-store.contract.ts).
 *
 * Guarantees every adapter gives:
 * - an append is atomic and durable before its promise resolves;
 * - event ids are unique: appending an event whose id the stream already holds is idempotent (`already_stored`),
 *   decided by durable state, never by a cache;
 * - `readAll` and `subscribe` follow one global order and never skip an event that a later read would show
 *   before a position already returned;
 * - an event's attachment is written with it, atomically, and read back only by a read that asks for it
 *   (`withAttachments`); `subscribe` never delivers it.
 */
export interface EventStore {
  appendToStream(
    streamId: string,
    events: readonly EventToAppend[],
    expectedRevision: ExpectedRevision,
  ): Promise<AppendResult>;
  /** The stream's events in revision order; an empty list when the stream does not exist. */
  readStream(streamId: string, options?: ReadStreamOptions): Promise<RecordedEvent[]>;
  readAll(options: ReadAllOptions): Promise<ReadAllPage>;
  /** One event by its id, wherever it is stored; null when no such event exists. */
  readEvent(eventId: string, options?: ReadOptions): Promise<RecordedEvent | null>;
  /**
   * Many events by id at once (a page of an account's history, a projection re-deriving an account): the events
   * found, each once, in the order their ids were asked; unknown ids are left out. One round trip where the store
   * can, and never more than a bounded number in flight.
   */
  readEvents(eventIds: readonly string[], options?: ReadOptions): Promise<RecordedEvent[]>;
  subscribe(options: SubscribeOptions): Subscription;
  /** How many events lie after a position (matching the filter), where the store can count them cheaply. */
  countAfter?(after: string | null, filter?: EventFilter): Promise<bigint>;
  /** Throws EventStoreUnavailable when the store cannot be reached. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** The stream is not at the revision the caller expected. */
export class WrongExpectedVersion extends Error {
  override readonly name = 'WrongExpectedVersion';
  constructor(
    readonly streamId: string,
    readonly expected: ExpectedRevision,
    readonly actual: bigint | 'no_stream',
  ) {
    super(`stream ${streamId}: expected revision ${String(expected)}, actual ${String(actual)}`);
  }
}

/** An event id that exists in another stream: ids are unique across the whole store. */
export class DuplicateEventId extends Error {
  override readonly name = 'DuplicateEventId';
  constructor(readonly eventId: string) {
    super(`event id ${eventId} is already stored in another stream`);
  }
}

/**
 * The store refused to hold this event's content (PostgreSQL: a data error such as a character jsonb cannot hold, an
 * index entry too large; EventStoreDB: an append larger than its limit). Nothing was written; the same event will be
 * refused again, so the caller must not retry it. Events appended beside it are not affected.
 */
export class EventRejected extends Error {
  override readonly name = 'EventRejected';
  constructor(
    readonly eventId: string,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`event ${eventId} was refused by the event store: ${reason}`, options);
  }
}

/** The store cannot be reached or refused the connection: nothing was written; try again later. */
export class EventStoreUnavailable extends Error {
  override readonly name = 'EventStoreUnavailable';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/**
 * Positions are two unsigned 64-bit numbers (PostgreSQL: transaction id and sequence; EventStoreDB: commit and
 * prepare). Fixed-width hex keeps string order equal to numeric order.
 */
export function encodePosition(major: bigint, minor: bigint): string {
  return `${major.toString(16).padStart(16, '0')}-${minor.toString(16).padStart(16, '0')}`;
}

export function decodePosition(position: string): { major: bigint; minor: bigint } {
  const match = /^([0-9a-f]{16})-([0-9a-f]{16})$/.exec(position);
  if (!match) throw new InvalidPosition(position);
  return { major: BigInt(`0x${match[1]}`), minor: BigInt(`0x${match[2]}`) };
}

export class InvalidPosition extends Error {
  override readonly name = 'InvalidPosition';
  constructor(readonly position: string) {
    super(`not a log position: ${position}`);
  }
}

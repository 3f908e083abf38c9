import {
  CancelledError,
  DeadlineExceededError,
  MaxAppendSizeExceededError,
  NotLeaderError,
  TimeoutError,
  UnavailableError,
  WrongExpectedVersionError,
  convertToCommandError,
  eventTypeFilter,
  jsonEvent,
  streamNameFilter,
  type EventData,
  type Filter,
  type Position,
} from '@eventstore/db-client';
import type { JsonObject, JsonValue } from '../../domain/bank-transaction';
import {
  type EventFilter,
  EventRejected,
  EventStoreUnavailable,
  type EventToAppend,
  type RecordedEvent,
  WrongExpectedVersion,
  decodePosition,
  encodePosition,
} from '../../application/ports/event-store';

/** An event as the EventStoreDB client hands it over (the part of it the adapter reads). */
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

/**
 * Written into each event's metadata and removed again on read: the one way to tell our own write from the
 * server acknowledging a repeat of events it already holds (it answers both with the same success).
 */
export const APPEND_ID_KEY = '$ledgerAppendId';

/**
 * The event's attachment, in its metadata under a key of the adapter's own, removed on every read and handed back
 * as `attachment` only when asked. In the metadata, because an EventStoreDB append is atomic per stream and per call:
 * the body is durable exactly when its event is, with no second write that could fail or be orphaned, and a
 * repeat of the append carries the same bytes. The price: the server sends the bytes with every read of the event,
 * subscriptions included, and the adapter drops them there. (A second event in the stream would shift every
 * revision the ledger reasons about; a stream of its own would be a second, non-atomic write.)
 */
export const ATTACHMENT_KEY = '$ledgerAttachment';
/** Events written before the attachment existed kept the raw body as metadata.rawBody: read as their attachment. */
const LEGACY_ATTACHMENT_KEY = 'rawBody';

const NOTHING = '(?!)';

export function toEventData(event: EventToAppend, appendId: string): EventData {
  for (const key of [APPEND_ID_KEY, ATTACHMENT_KEY]) {
    if (Object.hasOwn(event.metadata, key)) throw new Error(`event ${event.eventId}: metadata key ${key} is reserved by the event store`);
  }
  return jsonEvent({
    id: event.eventId,
    type: event.type,
    data: event.data,
    metadata: {
      ...event.metadata,
      [APPEND_ID_KEY]: appendId,
      ...(event.attachment === undefined ? {} : { [ATTACHMENT_KEY]: event.attachment }),
    },
  });
}

export function toRecordedEvent(event: VendorEvent, withAttachment = false): RecordedEvent {
  if (!event.position) throw new Error(`EventStoreDB returned no position for ${event.streamId}@${event.revision}`);
  const { [APPEND_ID_KEY]: _appendId, [ATTACHMENT_KEY]: attached, ...metadata } = jsonObject(event.metadata ?? {}, event, 'metadata');
  const legacy = attached === undefined ? metadata[LEGACY_ATTACHMENT_KEY] : undefined;
  if (typeof legacy === 'string') delete metadata[LEGACY_ATTACHMENT_KEY];
  const attachment = typeof attached === 'string' ? attached : legacy;
  const recorded: RecordedEvent = {
    position: encodeVendorPosition(event.position),
    streamId: event.streamId,
    revision: event.revision,
    eventId: event.id,
    type: event.type,
    data: jsonObject(event.data, event, 'data'),
    metadata,
    recordedAt: event.created,
  };
  return withAttachment && typeof attachment === 'string' ? { ...recorded, attachment } : recorded;
}

export function appendIdOf(event: VendorEvent): unknown {
  const metadata = event.metadata;
  return typeof metadata === 'object' && metadata !== null ? (metadata as Record<string, unknown>)[APPEND_ID_KEY] : undefined;
}

export function isVisible(event: Pick<VendorEvent, 'streamId' | 'type' | 'isJson'>, filter: EventFilter | undefined): boolean {
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
export function serverFilter(filter: EventFilter | undefined, checkpointReached: NonNullable<Filter['checkpointReached']>): Filter {
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

/** gRPC failures sometimes surface raw (e.g. from the client's capability check): give them the client's class. */
export function asVendorError(error: unknown): unknown {
  return error instanceof Error ? convertToCommandError(error) : error;
}

export const encodeVendorPosition = (position: Position): string => encodePosition(position.commit, position.prepare);

export function toVendorPosition(position: string): Position {
  const { major, minor } = decodePosition(position);
  return { commit: major, prepare: minor };
}

export function positionOf(event: VendorEvent): string {
  if (!event.position) throw new Error(`EventStoreDB returned no position for ${event.streamId}@${event.revision}`);
  return encodeVendorPosition(event.position);
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

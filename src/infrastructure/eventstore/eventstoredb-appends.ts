import { createHash, randomUUID } from 'node:crypto';
import {
  FORWARDS,
  NO_STREAM,
  START,
  StreamNotFoundError,
  WrongExpectedVersionError,
  jsonEvent,
  type AppendResult as VendorAppendResult,
  type AppendToStreamOptions,
  type EventData,
  type ReadStreamOptions,
  type ResolvedEvent,
} from '@eventstore/db-client';
import {
  type AppendResult,
  DuplicateEventId,
  type EventToAppend,
  type ExpectedRevision,
  WrongExpectedVersion,
} from '../../application/ports/event-store';
import { appendIdOf, asVendorError, encodeVendorPosition, toEventData, type VendorEvent } from './eventstoredb-codec';

/** The part of the client that appends and reads streams. */
export interface StreamClient {
  appendToStream(streamName: string, events: EventData[], options: AppendToStreamOptions): Promise<VendorAppendResult>;
  readStream(streamName: string, options: ReadStreamOptions): AsyncIterable<ResolvedEvent>;
}

export interface StreamSnapshot {
  readonly revision: bigint | 'no_stream';
  readonly eventIds: ReadonlySet<string>;
}

/**
 * EventStoreDB only knows event ids per stream. Each id is first claimed for its stream in a system stream of
 * its own (`$`-prefixed, so every read of the log leaves it out); an id claimed for another stream is a
 * DuplicateEventId, as the PostgreSQL adapter's unique index reports it.
 */
export const CLAIM_STREAM_PREFIX = '$ledger-event-id-';
const CLAIM_EVENT_TYPE = '$ledger-event-id-claimed';
const MAX_APPEND_ATTEMPTS = 5;

export const claimStreamOf = (eventId: string): string => `${CLAIM_STREAM_PREFIX}${eventId.toLowerCase()}`;

export function claimEvent(streamId: string, eventId: string): EventData {
  const hex = createHash('sha256').update(`${streamId}\n${eventId.toLowerCase()}`).digest('hex');
  const variant = ((Number.parseInt(hex[16]!, 16) & 0x3) | 0x8).toString(16);
  // A version-8 (custom) UUID, as EventStoreDB wants UUID event ids.
  const id = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-8${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
  return jsonEvent({ id, type: CLAIM_EVENT_TYPE, data: { streamId } });
}

export function claimedStreamOf(claim: VendorEvent): string | undefined {
  const data = claim.data;
  if (typeof data !== 'object' || data === null) return undefined;
  const streamId = (data as Record<string, unknown>).streamId;
  return typeof streamId === 'string' ? streamId : undefined;
}

/** A stream's events in revision order; none for a stream that does not exist. */
export async function readVendorStream(client: StreamClient, streamId: string, options: ReadStreamOptions): Promise<VendorEvent[]> {
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

/** The stream holding an event id, as its claim says; undefined when the id was never claimed. */
export async function streamOfEventId(client: StreamClient, eventId: string): Promise<string | undefined> {
  const [claim] = await readVendorStream(client, claimStreamOf(eventId), { fromRevision: 0n, maxCount: 1 });
  return claim ? claimedStreamOf(claim) : undefined;
}

/**
 * Appends with idempotency decided from what the server durably holds, never from `ANY` (whose de-duplication is
 * an in-memory cache of recent ids): claim every id, then send NO_STREAM or the exact revision just read, then read
 * the write back to tell our append from the server acknowledging an identical earlier one.
 */
export async function appendIdempotently(
  client: StreamClient,
  streamId: string,
  events: readonly EventToAppend[],
  expected: ExpectedRevision,
  logger: { warn(obj: object, msg: string): void },
): Promise<AppendResult> {
  if (events.length === 0) throw new Error('appendToStream needs at least one event');
  const appendId = randomUUID();
  const proposed = events.map((event) => toEventData(event, appendId));
  await Promise.all(events.map((event) => claimEventId(client, streamId, event.eventId)));
  // NO_STREAM needs no read first: the server refuses or de-duplicates it from its index, never from a cache.
  let wire: 'no_stream' | bigint | null = expected === 'no_stream' ? 'no_stream' : null;
  let actual: bigint | 'no_stream' = 'no_stream';
  for (let attempt = 1; attempt <= MAX_APPEND_ATTEMPTS; attempt++) {
    if (wire === null) {
      const stream = await readSnapshot(client, streamId);
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
    if (result?.success) return confirmAppend(client, streamId, result, appendId, logger);
    wire = null; // someone else wrote in between: read the stream and decide again
  }
  throw new WrongExpectedVersion(streamId, expected, actual);
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

async function readSnapshot(client: StreamClient, streamId: string): Promise<StreamSnapshot> {
  const events = await readVendorStream(client, streamId, { fromRevision: START });
  const last = events[events.length - 1];
  return { revision: last ? last.revision : 'no_stream', eventIds: new Set(events.map((event) => event.id.toLowerCase())) };
}

async function claimEventId(client: StreamClient, streamId: string, eventId: string): Promise<void> {
  const claimStream = claimStreamOf(eventId);
  for (let attempt = 1; attempt <= MAX_APPEND_ATTEMPTS; attempt++) {
    try {
      // The claim's own id is derived from (stream, event id): repeating the same claim is a server-side no-op.
      const result = await client.appendToStream(claimStream, [claimEvent(streamId, eventId)], { expectedRevision: NO_STREAM });
      if (result.success) return;
    } catch (error) {
      if (!(asVendorError(error) instanceof WrongExpectedVersionError)) throw error;
    }
    const owner = await streamOfEventId(client, eventId);
    if (owner === streamId) return;
    if (owner !== undefined) throw new DuplicateEventId(eventId);
  }
  throw new Error(`could not claim event id ${eventId} for ${streamId}`);
}

async function confirmAppend(
  client: StreamClient,
  streamId: string,
  result: VendorAppendResult,
  appendId: string,
  logger: { warn(obj: object, msg: string): void },
): Promise<AppendResult> {
  const nextRevision = result.nextExpectedRevision;
  let written: VendorEvent | undefined;
  try {
    [written] = await readVendorStream(client, streamId, { fromRevision: nextRevision, maxCount: 1 });
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

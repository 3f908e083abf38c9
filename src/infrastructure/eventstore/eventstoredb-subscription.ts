import { type AllStreamResolvedEvent, START, type SubscribeToAllOptions } from '@eventstore/db-client';
import { EventStoreUnavailable, type RecordedEvent, type SubscribeOptions, type Subscription } from '../../application/ports/event-store';
import { encodeVendorPosition, isVisible, positionOf, serverFilter, toRecordedEvent, toVendorPosition, translateError } from './eventstoredb-codec';

export interface EventStoreDbSubscription {
  read(): AllStreamResolvedEvent | null;
  on(event: 'readable' | 'end' | 'close' | 'caughtUp', listener: () => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
  unsubscribe(): Promise<void>;
  destroy(): unknown;
}

export interface SubscriptionClient {
  subscribeToAll(options: SubscribeToAllOptions): EventStoreDbSubscription;
}

export interface FollowSettings {
  readonly logger: { warn(obj: object, msg: string): void };
  /** First and longest wait before a dropped subscription is opened again (doubling in between). */
  readonly delays: { readonly initial: number; readonly max: number };
}

/** What survives from one server subscription to the next. */
interface Follower {
  stopped: boolean;
  /** The last position handed to the handler (an event or a checkpoint): a new subscription starts after it. */
  cursor: string | null;
  failures: number;
  /** Wakes the loop waiting for the stream. */
  poke: () => void;
  /** The handler's own failure, so that it is reported as it was thrown, not as a vendor error. */
  handlerFailure: { error: unknown } | null;
}

/** One server subscription and what its listeners have seen. */
interface OpenStream {
  readonly subscription: EventStoreDbSubscription;
  failure: unknown;
  ended: boolean;
  checkpoint: { position: string; release: () => void } | null;
}

/**
 * A catch-up subscription to $all that survives drops. The client emits events as a Node stream and does not
 * resubscribe, so this loop reads it batch by batch and opens a new one from the last handled position, with backoff.
 */
export function followAll(client: SubscriptionClient, options: SubscribeOptions, { logger, delays }: FollowSettings): Subscription {
  const follower: Follower = { stopped: false, cursor: options.after, failures: 0, poke: () => {}, handlerFailure: null };
  let interruptSleep = () => {};
  const done = (async () => {
    while (!follower.stopped) {
      try {
        await followOnce(client, options, follower);
        if (!follower.stopped) throw new EventStoreUnavailable('EventStoreDB ended the subscription');
      } catch (error) {
        if (follower.stopped) break;
        follower.failures += 1;
        const delayMs = Math.min(delays.max, delays.initial * 2 ** (follower.failures - 1));
        const reported = follower.handlerFailure?.error === error ? error : translateError(error);
        follower.handlerFailure = null;
        logger.warn({ err: reported, after: follower.cursor, delayMs }, 'EventStoreDB subscription dropped; subscribing again');
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
      follower.stopped = true;
      follower.poke();
      interruptSleep();
      await done;
    },
  };
}

/** Follows one server subscription until it ends, fails or the follower stops. */
async function followOnce(client: SubscriptionClient, options: SubscribeOptions, follower: Follower): Promise<void> {
  const stream = open(client, options, follower);
  try {
    while (!follower.stopped) {
      if (stream.failure !== null) throw stream.failure;
      if (await deliverEvents(stream, options, follower)) continue;
      if (await deliverCheckpoint(stream, options, follower)) continue;
      if (stream.ended) return;
      await new Promise<void>((resolve) => {
        follower.poke = resolve;
      });
    }
  } finally {
    follower.poke = () => {};
    stream.checkpoint?.release();
    await stream.subscription.unsubscribe().catch(() => {});
    stream.subscription.destroy();
  }
}

function open(client: SubscriptionClient, options: SubscribeOptions, follower: Follower): OpenStream {
  const wake = () => follower.poke();
  const stream: { -readonly [K in keyof OpenStream]: OpenStream[K] } = { subscription: null as never, failure: null, ended: false, checkpoint: null };
  stream.subscription = client.subscribeToAll({
    fromPosition: follower.cursor === null ? START : toVendorPosition(follower.cursor),
    // The client awaits this hook before it hands over anything read after the checkpoint, so holding it
    // until every earlier event is handled keeps the checkpoint from overtaking them.
    filter: serverFilter(options.filter, (_, position) => {
      return new Promise<void>((release) => {
        stream.checkpoint?.release();
        stream.checkpoint = { position: encodeVendorPosition(position), release };
        wake();
      });
    }),
  });
  const end = () => {
    stream.ended = true;
    wake();
  };
  stream.subscription.on('readable', wake);
  stream.subscription.on('end', end);
  stream.subscription.on('close', end);
  stream.subscription.on('error', (error) => {
    stream.failure ??= error;
    wake();
  });
  stream.subscription.on('caughtUp', () => {
    follower.failures = 0;
  });
  return stream;
}

/** Hands the next batch of what the stream has buffered to the handler; false when it had nothing new. */
async function deliverEvents(stream: OpenStream, options: SubscribeOptions, follower: Follower): Promise<boolean> {
  const maxBatch = Math.max(1, options.maxBatch ?? 100);
  const batch: RecordedEvent[] = [];
  let seen: string | null = null;
  while (batch.length < maxBatch) {
    const resolved = stream.subscription.read();
    if (resolved === null) break;
    const event = resolved.event;
    if (!event) continue;
    const position = positionOf(event);
    if (follower.cursor !== null && position <= follower.cursor) continue; // a repeat after resubscribing
    seen = position;
    if (isVisible(event, options.filter)) batch.push(toRecordedEvent(event));
  }
  if (seen === null) return false;
  if (batch.length > 0) await handled(follower, () => options.onEvents(batch, seen));
  follower.cursor = seen;
  follower.failures = 0;
  return true;
}

/** Reports a checkpoint the server sent, once every event before it has been handled; false when there was none. */
async function deliverCheckpoint(stream: OpenStream, options: SubscribeOptions, follower: Follower): Promise<boolean> {
  const checkpoint = stream.checkpoint;
  if (!checkpoint) return false;
  stream.checkpoint = null;
  try {
    if (follower.cursor === null || checkpoint.position > follower.cursor) {
      await handled(follower, async () => options.onCheckpoint?.(checkpoint.position));
      follower.cursor = checkpoint.position;
    }
  } finally {
    checkpoint.release();
  }
  return true;
}

async function handled(follower: Follower, work: () => Promise<void>): Promise<void> {
  try {
    await work();
  } catch (error) {
    follower.handlerFailure = { error };
    throw error;
  }
}

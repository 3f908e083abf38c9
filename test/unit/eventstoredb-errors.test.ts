import { randomUUID } from 'node:crypto';
import {
  AccessDeniedError,
  DeadlineExceededError,
  MaxAppendSizeExceededError,
  NotLeaderError,
  UnavailableError,
  WrongExpectedVersionError,
} from '@eventstore/db-client';
import { describe, expect, it } from 'vitest';
import { EventRejected, EventStoreUnavailable, WrongExpectedVersion } from '../../src/application/ports/event-store';
import { translateError } from '../../src/infrastructure/eventstore/eventstoredb-codec';
import { type EventStoreDbClient, createEventStoreDbEventStoreWithClient } from '../../src/infrastructure/eventstore/eventstoredb-event-store';

/** A gRPC failure as grpc-js raises it, before the client gives it a class. */
const grpcFailure = (code: number, details: string) => Object.assign(new Error(`${code} ${details}`), { code, details });

/** NotLeaderError can only be built from a gRPC failure that names the leader. */
const notLeader = () =>
  new NotLeaderError({
    code: 5,
    details: 'not leader',
    message: 'not leader',
    metadata: { getMap: () => ({ 'leader-endpoint-host': 'node-2', 'leader-endpoint-port': '2113' }) },
  } as unknown as ConstructorParameters<typeof NotLeaderError>[0]);

describe('EventStoreDB error translation', () => {
  it('turns a wrong expected version into the port error, with the actual revision', () => {
    const translated = translateError(
      new WrongExpectedVersionError(undefined, { streamName: 'bankTx-1', expected: 'no_stream', current: 4n }),
    );
    expect(translated).toBeInstanceOf(WrongExpectedVersion);
    expect(translated).toMatchObject({ streamId: 'bankTx-1', expected: 'no_stream', actual: 4n });
    const missing = translateError(
      new WrongExpectedVersionError(undefined, { streamName: 'bankTx-2', expected: 'stream_exists', current: 'no_stream' }),
    );
    expect(missing).toMatchObject({ streamId: 'bankTx-2', expected: 'stream_exists', actual: 'no_stream' });
  });

  it.each([
    ['unavailable', () => new UnavailableError(undefined, 'connection refused')],
    ['deadline exceeded', () => new DeadlineExceededError(undefined, 'deadline')],
    ['not the leader', notLeader],
    ['a raw gRPC UNAVAILABLE', () => grpcFailure(14, 'UNAVAILABLE: No connection established')],
    ['a raw gRPC DEADLINE_EXCEEDED', () => grpcFailure(4, 'DEADLINE_EXCEEDED')],
    ['failed cluster discovery', () => new Error('Failed to discover after 10 attempts.')],
  ])('reports %s as EventStoreUnavailable, keeping the cause', (_, make) => {
    const error = make();
    const translated = translateError(error);
    expect(translated).toBeInstanceOf(EventStoreUnavailable);
    expect((translated as EventStoreUnavailable).cause).toBe(error);
  });

  it('reports an append over the server\'s size limit as EventRejected for that event: retrying it cannot help', async () => {
    const tooLarge = new MaxAppendSizeExceededError(undefined, 1_048_576);
    const translated = translateError(tooLarge, 'b4c1e1e2-0000-4000-8000-000000000001');
    expect(translated).toBeInstanceOf(EventRejected);
    expect(translated).toMatchObject({ eventId: 'b4c1e1e2-0000-4000-8000-000000000001', cause: tooLarge });
    expect((translated as Error).message).toMatch(/1048576 bytes/);
  });

  it('lets everything else through unchanged', () => {
    const bug = new TypeError('undefined is not a function');
    expect(translateError(bug)).toBe(bug);
    const denied = new AccessDeniedError(undefined, 'access denied');
    expect(translateError(denied)).toBe(denied);
  });
});

describe('EventStoreDB adapter errors', () => {
  const failing = (error: Error): EventStoreDbClient => ({
    appendToStream: async () => {
      throw error;
    },
    readStream: () =>
      (async function* () {
        throw error;
      })(),
    readAll: () =>
      (async function* () {
        throw error;
      })(),
    subscribeToAll: () => {
      throw error;
    },
    dispose: async () => {},
  });
  const event = () => ({ eventId: randomUUID(), type: 'T', data: {}, metadata: {} });

  it('rejects appends and reads with EventStoreUnavailable when the server cannot be reached', async () => {
    const store = createEventStoreDbEventStoreWithClient(failing(grpcFailure(14, 'UNAVAILABLE')));
    await expect(store.appendToStream('bankTx-1', [event()], 'no_stream')).rejects.toBeInstanceOf(EventStoreUnavailable);
    await expect(store.appendToStream('bankTx-1', [event()], 'any')).rejects.toBeInstanceOf(EventStoreUnavailable);
    await expect(store.readStream('bankTx-1')).rejects.toBeInstanceOf(EventStoreUnavailable);
    await expect(store.readAll({ after: null, maxCount: 10 })).rejects.toBeInstanceOf(EventStoreUnavailable);
    await expect(store.ping()).rejects.toBeInstanceOf(EventStoreUnavailable);
  });

  it('rethrows failures that are not about reachability as they are', async () => {
    const denied = new AccessDeniedError(undefined, 'access denied');
    const store = createEventStoreDbEventStoreWithClient(failing(denied));
    await expect(store.readStream('bankTx-1')).rejects.toBe(denied);
    await expect(store.ping()).rejects.toBe(denied);
  });

  it('fails a ping that gets no answer within its deadline', async () => {
    const silent: EventStoreDbClient = {
      ...failing(new Error('unused')),
      readAll: () =>
        (async function* () {
          await new Promise(() => {});
        })(),
    };
    const store = createEventStoreDbEventStoreWithClient(silent, { pingTimeoutMs: 20 });
    await expect(store.ping()).rejects.toThrow(/did not answer within 20 ms/);
  });

  it('disposes the client on close', async () => {
    let disposed = false;
    const store = createEventStoreDbEventStoreWithClient({
      ...failing(new Error('unused')),
      dispose: async () => {
        disposed = true;
      },
    });
    await store.close();
    expect(disposed).toBe(true);
  });
});

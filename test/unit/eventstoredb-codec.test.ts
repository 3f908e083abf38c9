import { randomUUID } from 'node:crypto';
import type { EventData, Position } from '@eventstore/db-client';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { BankTransaction, JsonObject } from '../../src/domain/bank-transaction';
import { decodeEvent, encodeEvent } from '../../src/domain/event-codec';
import type { BalanceChanged } from '../../src/domain/events';
import { decodePosition, type EventToAppend } from '../../src/application/ports/event-store';
import { bankTx } from '../support/ledger';
import { claimEvent } from '../../src/infrastructure/eventstore/eventstoredb-appends';
import {
  APPEND_ID_KEY,
  ATTACHMENT_KEY,
  encodeVendorPosition,
  isVisible,
  serverFilter,
  toEventData,
  toRecordedEvent,
  toVendorPosition,
  type VendorEvent,
} from '../../src/infrastructure/eventstore/eventstoredb-codec';

const u64 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
const position = fc.record({ commit: u64, prepare: u64 });

const compare = (a: Position, b: Position) =>
  a.commit !== b.commit ? (a.commit < b.commit ? -1 : 1) : a.prepare === b.prepare ? 0 : a.prepare < b.prepare ? -1 : 1;

/** What the client does to an event on its way to the server and back: JSON text both ways. */
function throughTheWire(data: EventData, at: { streamId: string; revision: bigint; position: Position }): VendorEvent {
  return {
    streamId: at.streamId,
    id: data.id,
    revision: at.revision,
    type: data.type,
    created: new Date('2026-11-26T06:00:00Z'),
    isJson: data.contentType === 'application/json',
    data: JSON.parse(JSON.stringify(data.data)),
    metadata: data.metadata === undefined ? undefined : JSON.parse(JSON.stringify(data.metadata)),
    position: at.position,
  };
}

describe('EventStoreDB positions', () => {
  it('sort as strings exactly as {commit, prepare} pairs sort', () => {
    fc.assert(
      fc.property(fc.array(position, { minLength: 2, maxLength: 30 }), (positions) => {
        const byPair = [...positions].sort(compare).map(encodeVendorPosition);
        const byText = positions.map(encodeVendorPosition).sort();
        expect(byText).toEqual(byPair);
      }),
    );
  });

  it('compare as strings like the pairs they encode, including equality', () => {
    fc.assert(
      fc.property(position, position, (a, b) => {
        const [x, y] = [encodeVendorPosition(a), encodeVendorPosition(b)];
        expect(Math.sign(x < y ? -1 : x > y ? 1 : 0)).toBe(compare(a, b));
      }),
    );
  });

  it('decode back to the same commit and prepare positions', () => {
    fc.assert(
      fc.property(position, (p) => {
        expect(toVendorPosition(encodeVendorPosition(p))).toEqual(p);
        expect(decodePosition(encodeVendorPosition(p))).toEqual({ major: p.commit, minor: p.prepare });
      }),
    );
  });
});

describe('EventStoreDB event (de)serialisation', () => {
  const jsonObject = fc.dictionary(
    fc.string().filter((key) => key !== APPEND_ID_KEY && key !== '__proto__'),
    fc.jsonValue(),
  ) as fc.Arbitrary<JsonObject>;

  it('reads back what was appended, money written as decimal strings staying exact', () => {
    fc.assert(
      fc.property(fc.bigInt(), fc.option(fc.bigInt()), jsonObject, jsonObject, position, (amount, balance, rest, metadata, at) => {
        const data: JsonObject = {
          ...JSON.parse(JSON.stringify(rest)),
          amount: amount.toString(),
          runningBalance: balance === null ? null : balance.toString(),
        };
        const appended: EventToAppend = {
          eventId: randomUUID(),
          type: 'BalanceChanged',
          data,
          metadata: JSON.parse(JSON.stringify(metadata)),
        };
        const recorded = toRecordedEvent(
          throughTheWire(toEventData(appended, randomUUID()), { streamId: 'bankTx-1', revision: 0n, position: at }),
        );
        expect(recorded).toEqual({
          position: encodeVendorPosition(at),
          streamId: 'bankTx-1',
          revision: 0n,
          eventId: appended.eventId,
          type: 'BalanceChanged',
          data: appended.data,
          metadata: appended.metadata,
          recordedAt: new Date('2026-11-26T06:00:00Z'),
        });
        expect(BigInt(recorded.data.amount as string)).toBe(amount);
        expect(recorded.data.runningBalance === null ? null : BigInt(recorded.data.runningBalance as string)).toBe(balance);
      }),
    );
  });

  it('carries a booked transaction through the store with its amounts exact, beyond 2^53', () => {
    const transaction = (amount: bigint, runningBalance: bigint | null): BankTransaction =>
      bankTx({ id: 'tx-1', fiId: 'vcb', amount, runningBalance, paymentMeta: { n: '1' } });
    const huge = fc.bigInt({ min: -(10n ** 30n), max: 10n ** 30n });
    fc.assert(
      fc.property(huge, fc.option(huge), (amount, balance) => {
        const booked: BalanceChanged = {
          type: 'BalanceChanged',
          data: { transaction: transaction(amount, balance), source: 'webhook', grantId: null },
        };
        const { type, data } = encodeEvent(booked);
        const wire = toEventData({ eventId: randomUUID(), type, data, metadata: {} }, randomUUID());
        const recorded = toRecordedEvent(
          throughTheWire(wire, { streamId: 'bankTx-tx-1', revision: 0n, position: { commit: 1n, prepare: 1n } }),
        );
        expect(decodeEvent(recorded.type, recorded.data)).toEqual(booked);
      }),
    );
  });

  it('stores the append id in the metadata on the server and hides it from readers', () => {
    const appendId = randomUUID();
    const data = toEventData({ eventId: randomUUID(), type: 'T', data: {}, metadata: { note: 'x' } }, appendId);
    expect(data.contentType).toBe('application/json');
    expect(data.metadata).toEqual({ note: 'x', [APPEND_ID_KEY]: appendId });
    const recorded = toRecordedEvent(
      throughTheWire(data, { streamId: 's', revision: 3n, position: { commit: 10n, prepare: 10n } }),
    );
    expect(recorded.metadata).toEqual({ note: 'x' });
  });

  it('refuses metadata that uses a reserved key', () => {
    for (const key of [APPEND_ID_KEY, ATTACHMENT_KEY]) {
      expect(() => toEventData({ eventId: randomUUID(), type: 'T', data: {}, metadata: { [key]: 'mine' } }, randomUUID())).toThrow(/reserved/);
    }
  });

  it('writes the attachment with its event and hands it back only when asked, exactly', () => {
    const body = ' {"description": "Chuyển khoản \\u0041", "amount": 1e4}\r\n';
    const wire = throughTheWire(toEventData({ eventId: randomUUID(), type: 'T', data: {}, metadata: { note: 'x' }, attachment: body }, randomUUID()), {
      streamId: 's',
      revision: 0n,
      position: { commit: 7n, prepare: 7n },
    });
    expect(toRecordedEvent(wire, true)).toMatchObject({ attachment: body, metadata: { note: 'x' } });
    const unasked = toRecordedEvent(wire);
    expect(unasked).not.toHaveProperty('attachment');
    expect(unasked.metadata).toEqual({ note: 'x' });
  });

  it('reads the raw body of an event written before attachments existed (metadata.rawBody) as its attachment', () => {
    const legacy: VendorEvent = {
      streamId: 's',
      id: randomUUID(),
      revision: 0n,
      type: 'BalanceChanged',
      created: new Date(0),
      isJson: true,
      data: {},
      metadata: { rawBody: '{"a":1}', rawSha256: 'h' },
      position: { commit: 1n, prepare: 1n },
    };
    expect(toRecordedEvent(legacy, true)).toMatchObject({ attachment: '{"a":1}', metadata: { rawSha256: 'h' } });
    expect(toRecordedEvent(legacy, true).metadata).not.toHaveProperty('rawBody');
    expect(toRecordedEvent(legacy)).not.toHaveProperty('attachment');
  });

  it('reads an event written without metadata as empty metadata', () => {
    const recorded = toRecordedEvent({
      streamId: 's',
      id: randomUUID(),
      revision: 0n,
      type: 'T',
      created: new Date(0),
      isJson: true,
      data: { a: '1' },
      metadata: undefined,
      position: { commit: 1n, prepare: 1n },
    });
    expect(recorded.metadata).toEqual({});
  });

  it('refuses an event whose data is not a JSON object', () => {
    const event = (data: unknown): VendorEvent => ({
      streamId: 's',
      id: randomUUID(),
      revision: 0n,
      type: 'T',
      created: new Date(0),
      isJson: false,
      data,
      position: { commit: 1n, prepare: 1n },
    });
    expect(() => toRecordedEvent(event(new Uint8Array([1, 2])))).toThrow(/not a JSON object/);
    expect(() => toRecordedEvent(event(['a']))).toThrow(/not a JSON object/);
  });

  it('derives the id claim from stream and event id, so only the same claim repeats', () => {
    const eventId = randomUUID();
    expect(claimEvent('bankTx-1', eventId).id).toBe(claimEvent('bankTx-1', eventId.toUpperCase()).id);
    expect(claimEvent('bankTx-1', eventId).id).not.toBe(claimEvent('bankTx-2', eventId).id);
    expect(claimEvent('bankTx-1', eventId).id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });
});

describe('EventStoreDB filters', () => {
  const at = (streamId: string, type: string, isJson = true) => ({ streamId, type, isJson });

  it('leaves out system events and id claims, and events not written as JSON', () => {
    expect(isVisible(at('bankTx-1', 'BalanceChanged'), undefined)).toBe(true);
    expect(isVisible(at('$stats-127.0.0.1:2113', '$statsCollected'), undefined)).toBe(false);
    expect(isVisible(at('$ledger-event-id-abc', '$ledger-event-id-claimed'), undefined)).toBe(false);
    expect(isVisible(at('bankTx-1', '$>'), undefined)).toBe(false);
    expect(isVisible(at('bankTx-1', 'BalanceChanged', false), undefined)).toBe(false);
  });

  it('applies event types exactly and stream prefixes as prefixes, both when both are given', () => {
    const filter = { eventTypes: ['BalanceChanged'], streamPrefixes: ['bankTx-'] };
    expect(isVisible(at('bankTx-1', 'BalanceChanged'), filter)).toBe(true);
    expect(isVisible(at('bankTx-1', 'BalanceChangedLater'), filter)).toBe(false);
    expect(isVisible(at('grant-1', 'BalanceChanged'), filter)).toBe(false);
    expect(isVisible(at('bankTx-1', 'BalanceChanged'), { eventTypes: [] })).toBe(false);
  });

  const noop = () => {};

  it('asks the server for exact event types, escaping regex characters', () => {
    const filter = serverFilter({ eventTypes: ['Balance.Changed', 'Grant+Webhook'] }, noop);
    expect(filter).toMatchObject({ filterOn: 'eventType' });
    const regex = new RegExp((filter as { regex: string }).regex);
    expect(regex.test('Balance.Changed')).toBe(true);
    expect(regex.test('Grant+Webhook')).toBe(true);
    expect(regex.test('BalanceXChanged')).toBe(false);
    expect(regex.test('Balance.ChangedAgain')).toBe(false);
    expect(regex.test('$Balance.Changed')).toBe(false);
  });

  it('asks the server for stream prefixes, and for no system events when the port gives no filter', () => {
    expect(serverFilter({ streamPrefixes: ['bankTx-'] }, noop)).toMatchObject({
      filterOn: 'streamName',
      prefixes: ['bankTx-'],
    });
    const none = serverFilter(undefined, noop) as { filterOn: string; regex: string };
    expect(none.filterOn).toBe('eventType');
    expect(new RegExp(none.regex).test('$statsCollected')).toBe(false);
    expect(new RegExp(none.regex).test('BalanceChanged')).toBe(true);
  });

  it('passes the checkpoint hook to the server filter', () => {
    const hook = async () => {};
    expect(serverFilter({ eventTypes: ['A'] }, hook).checkpointReached).toBe(hook);
    expect(serverFilter(undefined, hook).checkpointReached).toBe(hook);
  });
});

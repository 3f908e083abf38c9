import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DuplicateEventId, EventRejected, type EventStore, type EventToAppend, WrongExpectedVersion } from '../../src/application/ports/event-store';
import { positionOf } from '../../src/infrastructure/eventstore/postgres-appends';
import { createPostgresEventStore } from '../../src/infrastructure/eventstore/postgres-event-store';
import { type Database, openDatabase } from '../../src/infrastructure/postgres/database';
import { migrateTo, migrateToLatest } from '../../src/infrastructure/postgres/migrations';
import { createTestDatabase } from '../support/postgres';

/**
 * Raw bodies live in `event_attachments`, beside the event rows (migration 0008). Auditors replay and verify them
 * byte for byte, so every way a body is written or moved must hand back the same string: both append paths, a
 * deployment migrated from the inline column, and the appends that conflict (which must leave no body behind).
 */

/**
 * Bodies a careless copy would change: line ends, spaces, escapes written as text, astral characters, a leading
 * byte-order mark, large (toasted).
 */
const BODIES = [
  '{"description":"Chuyển khoản \\u0041 ₫","amount":  10000 }\r\n',
  ' {"text":"a\\u0000b \\\\ \\ud800","bom":"\uFEFF"}\t',
  '{"emoji":"💸🏦","nbsp":"\u00a0","combining":"e\u0301"}',
  // A leading byte-order mark: ingest keeps it in the attachment (webhooks.test.ts), and PGlite's text decoding would drop it.
  '\uFEFF{"amount":10000}',
  '',
  `{"pad":"${'Nguyễn Văn A, 0123456789; '.repeat(4_000)}"}`,
];

/** The write side of each kind the service runs on, opened on a database of its own. */
async function openKind(kind: 'postgres' | 'pglite'): Promise<{ database: Database; drop: () => Promise<void> }> {
  if (kind === 'postgres') {
    const testDb = await createTestDatabase('attachments');
    const database = openDatabase({ databaseUrl: testDb.url, dataDir: '', poolSize: 4 });
    return { database, drop: async () => (await database.close(), await testDb.drop()) };
  }
  const dataDir = mkdtempSync(join(tmpdir(), 'balance-ledger-attachments-'));
  const database = openDatabase({ databaseUrl: undefined, dataDir, poolSize: 1 });
  return { database, drop: async () => (await database.close(), rmSync(dataDir, { recursive: true, force: true })) };
}

const event = (attachment?: string): EventToAppend => ({
  eventId: crypto.randomUUID(),
  type: 'Attached',
  data: { n: crypto.randomUUID() },
  metadata: { source: 'test' },
  ...(attachment === undefined ? {} : { attachment }),
});

async function orphans(database: Database): Promise<number> {
  const { rows } = await sql<{ n: number }>`
    select count(*)::int as n from event_attachments a where not exists (select 1 from events e where e.seq = a.seq)`.execute(database.db);
  return rows[0]!.n;
}

async function attachmentsOf(database: Database, streamPrefix: string): Promise<number> {
  const { rows } = await sql<{ n: number }>`
    select count(*)::int as n from event_attachments a join events e on e.seq = a.seq where e.stream_id like ${`${streamPrefix}%`}`.execute(database.db);
  return rows[0]!.n;
}

describe.each(['postgres', 'pglite'] as const)('event attachments on %s', (kind) => {
  it('migration 0008 moves the bodies of a deployment that stored them inline, byte for byte, and drops the column', async () => {
    const { database, drop } = await openKind(kind);
    try {
      const { db } = database;
      await migrateTo(db, '0007_events_lz4');
      const before = [...BODIES, null].map((body, i) => ({ eventId: crypto.randomUUID(), body, stream: `old-${i}` }));
      for (const { eventId, body, stream } of before) {
        await sql`
          insert into events (stream_id, revision, event_id, type, data, metadata, raw_body)
          values (${stream}, 0, ${eventId}::uuid, 'Attached', '{}'::json, '{}'::json, ${body})`.execute(db);
      }
      const { rows: seqs } = await sql<{ event_id: string; seq: string }>`select event_id::text, seq from events`.execute(db);

      await migrateToLatest(db);
      const store = createPostgresEventStore(db);
      for (const { eventId, body } of before) {
        const read = await store.readEvent(eventId, { withAttachments: true });
        if (body === null) expect(read).not.toHaveProperty('attachment');
        else expect(read?.attachment).toBe(body);
        expect(read?.position).toBe(positionOf(seqs.find((r) => r.event_id === eventId)!.seq));
      }
      const { events } = await store.readAll({ after: null, maxCount: 100, withAttachments: true });
      expect(events.map((e) => e.attachment)).toEqual(before.map((b) => b.body ?? undefined));
      const { rows: columns } = await sql<{ column_name: string }>`
        select column_name from information_schema.columns where table_name = 'events' and column_name = 'raw_body'`.execute(db);
      expect(columns).toEqual([]);
      const { rows: moved } = await sql<{ n: number }>`select count(*)::int as n from event_attachments`.execute(db);
      expect(moved[0]!.n).toBe(BODIES.length);

      // The migrated log takes new events on both paths, next to the moved ones.
      const single = event(BODIES[0]);
      await store.appendToStream('new-single', [single], 'no_stream');
      const batch = [event(BODIES[1]), event(BODIES[2])];
      await store.appendToStream('new-batch', batch, 'no_stream');
      expect((await store.readEvent(single.eventId, { withAttachments: true }))?.attachment).toBe(BODIES[0]);
      expect((await store.readStream('new-batch', { withAttachments: true })).map((e) => e.attachment)).toEqual([BODIES[1], BODIES[2]]);
    } finally {
      await drop();
    }
  });

  describe('appends', () => {
    let database: Database;
    let store: EventStore;
    let drop: () => Promise<void>;
    beforeAll(async () => {
      ({ database, drop } = await openKind(kind));
      await migrateToLatest(database.db);
      store = createPostgresEventStore(database.db, { pollIntervalMs: 20 });
    });
    afterAll(async () => {
      await drop?.();
    });

    it('hands back every body exactly through the group commit and the per-stream insert, by every read that asks', async () => {
      const singles = BODIES.map((body) => event(body));
      await Promise.all(singles.map((e, i) => store.appendToStream(`exact-single-${i}`, [e], 'no_stream')));
      const batch = [event(BODIES[0]), event(), ...BODIES.slice(1).map((body) => event(body))];
      await store.appendToStream('exact-batch', batch.slice(0, 3), 'no_stream');
      await store.appendToStream('exact-batch', batch.slice(3), 2n);

      for (const [i, e] of singles.entries()) {
        expect((await store.readStream(`exact-single-${i}`, { withAttachments: true }))[0]?.attachment).toBe(BODIES[i]);
        expect((await store.readEvent(e.eventId, { withAttachments: true }))?.attachment).toBe(BODIES[i]);
      }
      const streamRead = await store.readStream('exact-batch', { withAttachments: true });
      expect(streamRead.map((e) => e.eventId)).toEqual(batch.map((e) => e.eventId));
      expect(streamRead.map((e) => e.attachment)).toEqual(batch.map((e) => e.attachment));
      const byIds = await store.readEvents(batch.map((e) => e.eventId), { withAttachments: true });
      expect(byIds.map((e) => e.attachment)).toEqual(batch.map((e) => e.attachment));
      const everything = await store.readAll({ after: null, maxCount: 1_000, withAttachments: true });
      const byType = await store.readAll({ after: null, maxCount: 1_000, withAttachments: true, filter: { eventTypes: ['Attached'] } });
      for (const page of [everything, byType]) {
        const found = new Map(page.events.map((e) => [e.eventId, e.attachment]));
        for (const e of [...singles, ...batch]) expect(found.get(e.eventId)).toBe(e.attachment);
      }
      // A read that does not ask gets none, and finds the same events.
      const bare = await store.readAll({ after: null, maxCount: 1_000 });
      expect(bare.events.some((e) => 'attachment' in e)).toBe(false);
      expect(bare.events.map((e) => e.eventId)).toEqual(everything.events.map((e) => e.eventId));
      expect(await orphans(database)).toBe(0);
    });

    it('keeps the first body of an event delivered again, and stores none for appends that conflict in a group', async () => {
      const first = event('first delivery');
      await store.appendToStream('meets-0', [first], 'no_stream');
      // The first two appends go alone (two groups in flight); the rest wait and form one group, which meets the
      // stored event (a retry with other bytes, another event for its stream, its id in another stream) and one
      // event delivered twice in itself, with different bodies.
      const fresh = Array.from({ length: 6 }, (_, i) => event(`fresh ${i}`));
      const twice = event('twice: the first');
      const results = await Promise.all([
        ...fresh.map((e, i) => store.appendToStream(`meets-${i + 1}`, [e], 'no_stream')),
        store.appendToStream('meets-0', [{ ...first, attachment: 'a retry with other bytes' }], 'no_stream'),
        store.appendToStream('meets-0', [event('another event for a taken stream')], 'no_stream').catch((error: unknown) => error),
        store.appendToStream('meets-7', [{ ...first, attachment: 'its id in another stream' }], 'no_stream').catch((error: unknown) => error),
        store.appendToStream('meets-8', [twice], 'no_stream'),
        store.appendToStream('meets-8', [{ ...twice, attachment: 'twice: the second' }], 'no_stream').catch((error: unknown) => error),
      ]);
      for (const result of results.slice(0, 6)) expect(result).toMatchObject({ status: 'appended' });
      expect(results[6]).toMatchObject({ status: 'already_stored' });
      expect(results[7]).toBeInstanceOf(WrongExpectedVersion);
      expect(results[8]).toBeInstanceOf(DuplicateEventId);
      expect(results[9]).toMatchObject({ status: 'appended' });
      // A repeat inside the group it was first sent in is answered "not a new stream" (ingest reads the stream back
      // for either answer); what matters here is that the first delivery's body is the one stored.
      expect(results[10] instanceof WrongExpectedVersion || (results[10] as { status?: string }).status === 'already_stored').toBe(true);

      expect((await store.readStream('meets-0', { withAttachments: true })).map((e) => e.attachment)).toEqual(['first delivery']);
      expect((await store.readStream('meets-8', { withAttachments: true })).map((e) => e.attachment)).toEqual(['twice: the first']);
      for (const [i, e] of fresh.entries()) expect((await store.readEvent(e.eventId, { withAttachments: true }))?.attachment).toBe(`fresh ${i}`);
      expect(await store.readStream('meets-7')).toEqual([]);
      expect(await attachmentsOf(database, 'meets-')).toBe(1 + fresh.length + 1);
      expect(await orphans(database)).toBe(0);
    });

    it('stores no body for a per-stream append that conflicts, and keeps the first bodies of a batch sent again', async () => {
      const batch = [event('one'), event('two'), event('three')];
      await store.appendToStream('per-stream', batch, 'no_stream');
      const again = await store.appendToStream('per-stream', batch.map((e) => ({ ...e, attachment: 'other bytes' })), 'no_stream');
      expect(again).toMatchObject({ status: 'already_stored' });
      await expect(store.appendToStream('per-stream', [event('stale'), event('stale too')], 0n)).rejects.toBeInstanceOf(WrongExpectedVersion);
      await expect(store.appendToStream('per-stream-other', [event('new'), batch[0]!], 'any')).rejects.toBeInstanceOf(DuplicateEventId);
      expect((await store.readStream('per-stream', { withAttachments: true })).map((e) => e.attachment)).toEqual(['one', 'two', 'three']);
      expect(await store.readStream('per-stream-other')).toEqual([]);
      expect(await attachmentsOf(database, 'per-stream')).toBe(3);
      expect(await orphans(database)).toBe(0);
    });

    it('stores neither event nor body for a member whose body the database refuses, and every body of its neighbours', async () => {
      const members = Array.from({ length: 12 }, (_, i) => event(i === 7 ? 'a\u0000b' : `neighbour ${i}`));
      const outcomes = await Promise.allSettled(members.map((e, i) => store.appendToStream(`poison-${i}`, [e], 'no_stream')));
      expect(outcomes.map((o) => o.status)).toEqual(members.map((_, i) => (i === 7 ? 'rejected' : 'fulfilled')));
      expect((outcomes[7] as PromiseRejectedResult).reason).toBeInstanceOf(EventRejected);
      for (const [i, e] of members.entries()) {
        const [stored] = await store.readStream(`poison-${i}`, { withAttachments: true });
        expect(stored?.attachment).toBe(i === 7 ? undefined : e.attachment);
      }
      expect(await attachmentsOf(database, 'poison-')).toBe(11);
      expect(await orphans(database)).toBe(0);
    });
  });
});

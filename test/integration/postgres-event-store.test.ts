import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RecordedEvent } from '../../src/application/ports/event-store';
import { createPostgresEventStore } from '../../src/infrastructure/eventstore/postgres-event-store';
import { type Database, openDatabase } from '../../src/infrastructure/postgres/database';
import { migrateToLatest } from '../../src/infrastructure/postgres/migrations';
import { createTestDatabase, type TestDatabase } from '../support/postgres';
import { describeEventStoreContract } from './event-store.contract';

let testDb: TestDatabase;
let database: Database;

beforeAll(async () => {
  testDb = await createTestDatabase('eventstore');
  database = openDatabase({ databaseUrl: testDb.url, dataDir: '', poolSize: 20 });
  await migrateToLatest(database.db);
});
afterAll(async () => {
  await database?.close();
  await testDb?.drop();
});

describeEventStoreContract('PostgreSQL', async () => ({
  store: createPostgresEventStore(database.db, { pollIntervalMs: 20 }),
  cleanup: async () => {},
}));

describe('PostgreSQL event store ordering fence', () => {
  it('never lets a reader pass an event whose transaction commits after a later one', async () => {
    const store = createPostgresEventStore(database.db, { pollIntervalMs: 10 });
    const seen: RecordedEvent[] = [];
    const subscription = store.subscribe({
      after: null,
      filter: { streamPrefixes: ['fence-'] },
      onEvents: async (events) => {
        seen.push(...events);
      },
    });
    // Transaction A takes the smaller sequence number but commits last.
    const slow = new pg.Client({ connectionString: testDb.url });
    await slow.connect();
    try {
      await slow.query('begin');
      await slow.query(
        `insert into events (stream_id, revision, event_id, type, data, metadata)
         values ('fence-a', 0, gen_random_uuid(), 'Fenced', '{}', '{}')`,
      );
      await store.appendToStream('fence-b', [{ eventId: crypto.randomUUID(), type: 'Fenced', data: {}, metadata: {} }], 'no_stream');
      const seqs = await sql<{ stream_id: string; seq: string }>`
        select stream_id, seq from events where stream_id like 'fence-%' order by seq`.execute(database.db);
      expect(seqs.rows.map((r) => r.stream_id)).toEqual(['fence-b']); // A is not visible yet
      // Give the subscriber every chance to run ahead while A is open.
      await new Promise((r) => setTimeout(r, 200));
      expect(seen.map((e) => e.streamId)).toEqual([]);
      await slow.query('commit');
      const deadline = Date.now() + 5_000;
      while (seen.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      expect(seen.map((e) => e.streamId)).toEqual(['fence-a', 'fence-b']);
    } finally {
      await slow.end();
      await subscription.stop();
    }
  });
});

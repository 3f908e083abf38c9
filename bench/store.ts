import { getPostgreSQLEventStore } from '@event-driven-io/emmett-postgresql';
import pg from 'pg';
import type { EventStore, EventToAppend } from '../src/application/ports/event-store';
import type { Quarantine } from '../src/application/ports/quarantine';
import { ingestWebhook } from '../src/application/ingest-webhook';
import { openRoot } from '../src/composition-root';
import { loadConfig } from '../src/config';
import { webhookBodies } from './generate';
import { freshDatabase } from './lib';

/**
 * The peer in the same run: our PostgreSQL event store's append (through the EventStore port, as ingest calls it,
 * group commit included) against Emmett's PostgreSQL event store (`getPostgreSQLEventStore(url).appendToStream`),
 * each in a fresh database of the same server, durable (the server's fsync and synchronous_commit as they are).
 *
 * The same events: the webhook bodies of the ingest scenario go once through our ingest use case into a recording
 * port, which keeps what ingest would append: one new stream `bankTx-<id>` per transaction (the transaction id is
 * the idempotency key), one BalanceChanged event expected to start the stream, its metadata, and the raw body.
 * Emmett appends each to its own new stream too (`expectedStreamVersion: STREAM_DOES_NOT_EXIST`, its equivalent of
 * our `no_stream`), with the same type and data; Emmett has no attachment, so the raw body rides in its metadata
 * (the same bytes written). Neither side hashes or parses during the timing: only appends are timed.
 */
export interface StoreResult {
  readonly inFlight: number;
  readonly appends: number;
  readonly ours: number;
  readonly emmett: number;
}

interface Append {
  readonly streamId: string;
  readonly event: EventToAppend;
}

/** What our ingest appends for `count` distinct webhooks, captured without a database. */
export async function eventsOfIngest(count: number, accounts: number): Promise<Append[]> {
  const appends: Append[] = [];
  const recorder: Pick<EventStore, 'appendToStream'> = {
    async appendToStream(streamId, events) {
      for (const event of events) appends.push({ streamId, event });
      return { status: 'appended', nextRevision: BigInt(events.length), position: String(appends.length) };
    },
  };
  const quarantine: Pick<Quarantine, 'put'> = {
    put: () => Promise.reject(new Error('a generated webhook was refused: the bench generates only valid ones')),
  };
  const body = webhookBodies(accounts);
  for (let i = 0; i < count; i++) {
    const delivery = { body: Buffer.from(body()), contentType: 'application/json', receivedAt: new Date(), requestId: null, remoteAddress: null };
    const result = await ingestWebhook({ eventStore: recorder as EventStore, quarantine: quarantine as Quarantine }, delivery);
    if (!result.ok) throw new Error('a generated webhook was refused');
  }
  return appends;
}

/**
 * `appendOne` over `appends` with `inFlight` running at once; appends per second. The first 5 % warm up (JIT, the
 * pool's connections, the tables' first pages) and are not timed.
 */
async function drive(all: readonly Append[], inFlight: number, appendOne: (a: Append) => Promise<unknown>): Promise<number> {
  const warm = Math.floor(all.length / 20);
  await run(all.slice(0, warm), inFlight, appendOne);
  const appends = all.slice(warm);
  const started = performance.now();
  await run(appends, inFlight, appendOne);
  return Math.round(appends.length / ((performance.now() - started) / 1000));
}

export async function run(appends: readonly Append[], inFlight: number, appendOne: (a: Append) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < appends.length) await appendOne(appends[next++]!);
    }),
  );
}

async function ours(appends: readonly Append[], inFlight: number): Promise<number> {
  const db = await freshDatabase('store_ours');
  // The service's own graph and defaults (pool size, group size): the store as `npm start` opens it.
  const root = await openRoot(loadConfig({ DATABASE_URL: db.url, LOG_LEVEL: 'silent' }));
  try {
    const store = root.resolve('eventStore');
    const perSecond = await drive(appends, inFlight, (a) => store.appendToStream(a.streamId, [a.event], 'no_stream'));
    await expectRows(db.url, 'events', appends.length);
    return perSecond;
  } finally {
    await root.close();
    await db.drop();
  }
}

async function emmett(appends: readonly Append[], inFlight: number): Promise<number> {
  const db = await freshDatabase('store_emmett');
  const store = getPostgreSQLEventStore(db.url);
  try {
    await store.schema.migrate();
    const perSecond = await drive(appends, inFlight, (a) =>
      store.appendToStream(
        a.streamId,
        [{ type: a.event.type, data: a.event.data, metadata: { ...a.event.metadata, rawBody: a.event.attachment ?? null } }],
        { expectedStreamVersion: 'STREAM_DOES_NOT_EXIST' },
      ),
    );
    await expectRows(db.url, 'emt_messages', appends.length);
    return perSecond;
  } finally {
    await store.close();
    await db.drop();
  }
}

/** Every append was written: a store that dropped some would look fast. */
async function expectRows(url: string, table: string, count: number): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ n: string }>(`select count(*) as n from ${table}`);
    if (Number(rows[0]?.n) !== count) throw new Error(`${table} holds ${rows[0]?.n} events, not the ${count} appended`);
  } finally {
    await client.end();
  }
}

/** Both stores at each concurrency, each on fresh events of its own (no stream exists twice). */
export async function storeScenario(count: number, accounts: number, concurrencies: readonly number[]): Promise<StoreResult[]> {
  const results: StoreResult[] = [];
  for (const inFlight of concurrencies) {
    const ourAppends = await eventsOfIngest(count, accounts);
    const emmettAppends = await eventsOfIngest(count, accounts);
    results.push({ inFlight, appends: count, ours: await ours(ourAppends, inFlight), emmett: await emmett(emmettAppends, inFlight) });
  }
  return results;
}

import { connect, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, TEST_TOKEN, type TestApp } from '../support/app';
import { transactionWebhook } from '../support/webhook-load';

/** Bounded work, seen from a client over real HTTP: slow queries and slow or silent clients cannot hold anything. */
describe('bounds on work', () => {
  let t: TestApp;
  let port: number;
  let base: string;

  beforeAll(async () => {
    t = await createTestApp({
      DB_READ_STATEMENT_TIMEOUT_MS: '1500',
      DB_READ_POOL_SIZE: '2',
      DB_POOL_SIZE: '3',
      HTTP_HEADERS_TIMEOUT_MS: '500',
      HTTP_REQUEST_TIMEOUT_MS: '1000',
      HTTP_KEEP_ALIVE_TIMEOUT_MS: '500',
    });
    await t.app.listen({ host: '127.0.0.1', port: 0 });
    port = (t.app.server.address() as AddressInfo).port;
    base = `http://127.0.0.1:${port}`;
  });
  afterAll(async () => {
    await t?.close();
  });

  /** Holds an exclusive lock on the accounts table in an open transaction of another session, until released. */
  async function lockAccounts(): Promise<() => Promise<void>> {
    const client = new pg.Client({ connectionString: t.database.url });
    await client.connect();
    await client.query('begin');
    await client.query('lock table ledger.accounts in access exclusive mode');
    return async () => {
      await client.query('rollback');
      await client.end();
    };
  }

  it('a read query that runs past the read statement timeout is cancelled: 503 problem with Retry-After, not a hang', async () => {
    const release = await lockAccounts();
    try {
      const res = await fetch(`${base}/accounts`, { signal: AbortSignal.timeout(10_000) });
      expect(res.status).toBe(503);
      expect(res.headers.get('content-type')).toContain('application/problem+json');
      expect(res.headers.get('retry-after')).not.toBeNull();
      expect(await res.json()).toMatchObject({ status: 503, type: 'urn:balance-ledger:problem:query-timeout' });
    } finally {
      await release();
    }
    expect((await fetch(`${base}/accounts`)).status).toBe(200);
  });

  it('reads cannot starve ingest: with every read connection stuck, a webhook is booked before the reads give up', async () => {
    const release = await lockAccounts();
    try {
      const readsDone: number[] = [];
      const reads = Array.from({ length: 6 }, () =>
        fetch(`${base}/accounts`, { signal: AbortSignal.timeout(15_000) }).then(async (r) => {
          readsDone.push(Date.now());
          return r.status;
        }),
      );
      await new Promise((r) => setTimeout(r, 100));
      const res = await fetch(`${base}/webhooks/bankhub?token=${TEST_TOKEN}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: transactionWebhook(`starve-${Date.now()}`, '4242', 0),
      });
      const bookedAt = Date.now();
      expect(res.status).toBe(200);
      expect(readsDone).toEqual([]); // every read still waits on its lock when the webhook is answered
      expect(new Set(await Promise.all(reads))).toEqual(new Set([503]));
      expect(Math.min(...readsDone)).toBeGreaterThan(bookedAt);
    } finally {
      await release();
    }
  });

  /** Opens a raw connection, sends `bytes`, and resolves with what the server sent until it closed the socket. */
  function rawExchange(bytes: string, giveUpMs = 10_000): Promise<{ answer: string; closed: boolean }> {
    return new Promise((resolve) => {
      const socket: Socket = connect(port, '127.0.0.1');
      let answer = '';
      const timer = setTimeout(() => (socket.destroy(), resolve({ answer, closed: false })), giveUpMs);
      socket.on('data', (d) => (answer += d));
      socket.on('close', () => (clearTimeout(timer), resolve({ answer, closed: true })));
      socket.on('error', () => {});
      socket.write(bytes);
    });
  }

  it('a client that never finishes its headers is answered 408 and disconnected', async () => {
    const { answer, closed } = await rawExchange('GET /health HTTP/1.1\r\nHost: x\r\n');
    expect(closed).toBe(true);
    expect(answer).toMatch(/^HTTP\/1\.1 408/);
  });

  it('a client that never finishes its body is answered 408 and disconnected', async () => {
    const { answer, closed } = await rawExchange(
      `POST /webhooks/bankhub?token=${TEST_TOKEN} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"webhookType":`,
    );
    expect(closed).toBe(true);
    expect(answer).toMatch(/^HTTP\/1\.1 408/);
    // Nothing was half-booked: the quarantine holds no truncated body either.
    const { rows } = await sql<{ n: string }>`select count(*) as n from quarantine`.execute(t.stores.database.db);
    expect(rows[0]!.n).toBe('0');
  });

  it('an idle keep-alive connection is closed after the keep-alive timeout', async () => {
    const { answer, closed } = await rawExchange('GET /health HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(answer).toMatch(/^HTTP\/1\.1 200/);
    expect(answer).toMatch(/keep-alive/i);
    expect(closed).toBe(true);
  });
});

import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey, type Role } from '../../src/application/access';
import { accountIdOf } from '../../src/projections/ledger.projection';
import { createTestApp, TEST_TOKEN, type TestApp } from '../support/app';
import { ACCOUNT_NUMBER, deliverDecember2023, FI_ID, TRANSACTIONS, webhookBody } from '../support/december-2023';

const API_TOKEN = 'console-admin-token-0123456789';
const bearer = (key: string) => ({ authorization: `Bearer ${key}` });
const ACCOUNT = accountIdOf(FI_ID, ACCOUNT_NUMBER);

describe('what the console needs from the service', () => {
  let t: TestApp;
  let dir: string;
  const keys = {} as Record<Role, string>;

  beforeAll(async () => {
    // A console build of our own (not vite's): these tests are about serving, not building.
    dir = await mkdtemp(join(tmpdir(), 'console-'));
    await mkdir(join(dir, 'assets'));
    await writeFile(join(dir, 'index.html'), '<!doctype html><title>console</title><script type="module" src="/console/assets/app-1a2b3c.js"></script>');
    await writeFile(join(dir, 'assets', 'app-1a2b3c.js'), 'console.log("hello")');
    t = await createTestApp({ API_TOKEN }, { consoleDir: dir });
    for (const role of ['accountant', 'auditor', 'operator'] as const) {
      const made = await createApiKey(t.stores.apiKeys, { name: `${role}-console`, role, now: new Date() });
      if (!made.ok) throw new Error(made.error);
      keys[role] = made.value.key;
    }
    const post = async (payload: string) => {
      const res = await t.app.inject({ method: 'POST', url: `/webhooks/bankhub?token=${TEST_TOKEN}`, headers: { 'content-type': 'application/json' }, payload });
      return (res.json() as { status: string }).status;
    };
    await deliverDecember2023(post, () => t.runner.caughtUp());
  });
  afterAll(async () => {
    await t?.close();
    await rm(dir, { recursive: true, force: true });
  });

  describe('the page and its assets', () => {
    it('serves the page at / to anyone, never cached, with a CSP that keeps it to this service', async () => {
      const res = await t.app.inject({ url: '/' });
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
      expect(res.headers['cache-control']).toBe('no-cache');
      expect(res.headers['content-security-policy']).toContain("script-src 'self'");
      expect(res.headers['content-security-policy']).toContain("connect-src 'self'");
      expect(res.body).toContain('/console/assets/app-1a2b3c.js');
    });

    it('serves hashed assets for a year, immutable, and answers 404 problem+json for others', async () => {
      const res = await t.app.inject({ url: '/console/assets/app-1a2b3c.js' });
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toMatch(/javascript/);
      expect(res.headers['cache-control']).toBe('public, max-age=31536000, immutable');
      const missing = await t.app.inject({ url: '/console/assets/nothing-here.js' });
      expect(missing.statusCode).toBe(404);
      expect(missing.headers['content-type']).toMatch(/problem\+json/);
      const outside = await t.app.inject({ url: '/console/assets/..%2Findex.html' });
      expect(outside.statusCode).toBe(404);
    });

    it('answers 503 problem+json naming the command while the console is not built', async () => {
      const empty = await mkdtemp(join(tmpdir(), 'console-empty-'));
      const bare = await createTestApp({ API_TOKEN }, { consoleDir: empty });
      try {
        const res = await bare.app.inject({ url: '/' });
        expect(res.statusCode).toBe(503);
        expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
        expect(res.json()).toMatchObject({ title: 'The console is not built', detail: expect.stringContaining('npm run build:console') });
      } finally {
        await bare.close();
        await rm(empty, { recursive: true, force: true });
      }
    });

    it('leaves the API where it was: no API path answers the page', async () => {
      expect((await t.app.inject({ url: '/accounts' })).statusCode).toBe(401);
      expect((await t.app.inject({ url: '/health' })).json()).toEqual({ status: 'ok' });
      const doc = (await t.app.inject({ url: '/openapi.json' })).json() as { paths: Record<string, unknown> };
      expect(Object.keys(doc.paths)).not.toContain('/');
    });
  });

  describe('GET /status', () => {
    it('tells any key how far each projection lags and whether the figures are stale', async () => {
      for (const key of [keys.accountant, keys.operator, API_TOKEN]) {
        const res = await t.app.inject({ url: '/status', headers: bearer(key) });
        expect(res.statusCode).toBe(200);
        const body = res.json() as { projections: { projection: string; eventsBehind: string | null; secondsBehind: number }[]; stale: boolean };
        expect(body.stale).toBe(false);
        expect(body.projections.map((p) => p.projection).sort()).toEqual(['grants', 'ledger']);
        expect(body.projections.find((p) => p.projection === 'ledger')).toMatchObject({ eventsBehind: '0', secondsBehind: 0 });
      }
      expect((await t.app.inject({ url: '/status' })).statusCode).toBe(401);
    });

    it('is stale once an event has waited more than ten seconds, as the runner status measures it', async () => {
      // A clock 11 s ahead stands for an event recorded 11 s ago (the store stamps events with its own time); the
      // ledger's runner is stopped, so the event waits.
      const stalled = await createTestApp({ API_TOKEN }, { clock: () => new Date(Date.now() + 11_000) });
      try {
        await stalled.runner.stop();
        const res = await stalled.app.inject({ method: 'POST', url: `/webhooks/bankhub?token=${TEST_TOKEN}`, headers: { 'content-type': 'application/json' }, payload: webhookBody(TRANSACTIONS.dec01) });
        expect(res.statusCode).toBe(200);
        const status = (await stalled.app.inject({ url: '/status', headers: bearer(API_TOKEN) })).json() as {
          projections: { projection: string; eventsBehind: string; secondsBehind: number; parked: number }[];
          stale: boolean;
        };
        expect(status.stale).toBe(true);
        const ledger = status.projections.find((p) => p.projection === 'ledger');
        expect(ledger).toEqual({ projection: 'ledger', eventsBehind: '1', secondsBehind: expect.any(Number), parked: 0 });
        expect(ledger!.secondsBehind).toBeGreaterThan(10);
      } finally {
        await stalled.close();
      }
    });
  });

  describe('one line of a statement, for the lists that point at lines', () => {
    it('answers the line with its date to an accountant; 404 for a line of another account', async () => {
      const res = await t.app.inject({ url: `/accounts/${ACCOUNT}/lines/${TRANSACTIONS.dec05.id}`, headers: bearer(keys.accountant) });
      expect(res.statusCode).toBe(200);
      expect(res.json()).toMatchObject({
        transactionId: TRANSACTIONS.dec05.id,
        transactionDate: '2023-12-12',
        amount: '3000000',
        balanceBefore: '18000000',
        balanceAfter: '21000000',
        late: true,
      });
      const unknown = await t.app.inject({ url: `/accounts/${ACCOUNT}/lines/${TRANSACTIONS.dec03.id}`, headers: bearer(keys.accountant) });
      expect(unknown.statusCode).toBe(404);
      expect(unknown.json()).toMatchObject({ title: 'No such line' });
      const other = accountIdOf(FI_ID, '42');
      expect((await t.app.inject({ url: `/accounts/${other}/lines/${TRANSACTIONS.dec05.id}`, headers: bearer(keys.accountant) })).statusCode).toBe(404);
      expect((await t.app.inject({ url: `/accounts/${ACCOUNT}/lines/${TRANSACTIONS.dec05.id}`, headers: bearer(keys.operator) })).statusCode).toBe(403);
    });
  });

  describe('GET /audit/transactions/{transactionId}/events', () => {
    it('gives an auditor the booked event and its conflicting repeat, each with the body as Cas sent it', async () => {
      const res = await t.app.inject({ url: `/audit/transactions/${TRANSACTIONS.dec01.id}/events`, headers: bearer(keys.auditor) });
      expect(res.statusCode).toBe(200);
      const { events } = res.json() as { events: { type: string; revision: string; eventId: string; metadata: { rawBody: string; rawSha256: string } }[] };
      expect(events.map((e) => [e.type, e.revision])).toEqual([
        ['BalanceChanged', '0'],
        ['ConflictingDuplicateReceived', '1'],
      ]);
      expect(events[0]!.metadata.rawBody).toBe(webhookBody(TRANSACTIONS.dec01));
      expect(events[1]!.metadata.rawBody).toContain('(sửa)');
      expect(events[0]!.metadata.rawSha256).toBe(createHash('sha256').update(webhookBody(TRANSACTIONS.dec01)).digest('hex'));
      const raw = await t.app.inject({ url: `/audit/events/${events[1]!.eventId}/raw`, headers: bearer(keys.auditor) });
      expect(raw.body).toContain('(sửa)');
    });

    it('answers 404 for a transaction never received, and 403 to an accountant', async () => {
      const res = await t.app.inject({ url: `/audit/transactions/${TRANSACTIONS.dec03.id}/events`, headers: bearer(keys.auditor) });
      expect(res.statusCode).toBe(404);
      expect(res.json()).toMatchObject({ title: 'No such transaction' });
      expect((await t.app.inject({ url: `/audit/transactions/${TRANSACTIONS.dec01.id}/events`, headers: bearer(keys.accountant) })).statusCode).toBe(403);
    });
  });

  it('lists the new operations in GET /me for the roles that may call them', async () => {
    const operations = async (key: string) => ((await t.app.inject({ url: '/me', headers: bearer(key) })).json() as { operations: string[] }).operations;
    const accountant = await operations(keys.accountant);
    expect(accountant).toEqual(expect.arrayContaining(['getStatus', 'getStatementLine', 'listAccounts', 'getStatement']));
    expect(accountant).not.toContain('listTransactionEvents');
    expect(await operations(keys.auditor)).toEqual(expect.arrayContaining(['listTransactionEvents', 'getRawPayload', 'getStatementLine']));
    const operator = await operations(keys.operator);
    expect(operator).toEqual(expect.arrayContaining(['getStatus', 'listProjections']));
    expect(operator).not.toContain('listAccounts');
  });
});

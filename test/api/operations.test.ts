import { createHash, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accountIdOf } from '../../src/projections/ledger.projection';
import { appendStoredTransaction, bankTx } from '../support/ledger';
import { createTestApp, sample, TEST_TOKEN, type TestApp } from '../support/app';

const acct = { fiId: 'fi-ops', accountNumber: '900' };
const X = accountIdOf(acct.fiId, acct.accountNumber);

describe('operators’ routes', () => {
  let t: TestApp;
  let poison: string;
  let yearZero: string;
  const get = (url: string) => t.app.inject({ method: 'GET', url });
  const post = (url: string) => t.app.inject({ method: 'POST', url });

  const appendStored = (tx: ReturnType<typeof bankTx>) => appendStoredTransaction(t.stores.eventStore, tx);

  beforeAll(async () => {
    t = await createTestApp();
    await appendStored(bankTx({ ...acct, id: 'ops1', amount: 10n, runningBalance: 10n, transactionDate: '2026-03-01', transactionDateTime: '2026-03-01T09:00:00+07:00' }));
    poison = await appendStored(
      bankTx({ ...acct, id: 'ops2', amount: 10n ** 30n, runningBalance: 10n ** 30n + 10n, transactionDate: '2026-03-02', transactionDateTime: '2026-03-02T09:00:00+07:00' }),
    );
    yearZero = await appendStored(bankTx({ ...acct, id: 'ops0', amount: 1n, runningBalance: 1n, transactionDate: '0000-01-01', transactionDateTime: '0000-01-01T00:00:00Z' }));
    await appendStored(bankTx({ ...acct, id: 'ops3', amount: 5n, runningBalance: 15n, transactionDate: '2026-03-03', transactionDateTime: '2026-03-03T09:00:00+07:00' }));
    await t.runner.caughtUp(30_000);
  });
  afterAll(async () => {
    await t?.close();
  });

  it('GET /projections counts each projection’s parked events; nothing is stuck', async () => {
    const { projections } = (await get('/projections')).json();
    expect(projections).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ projection: 'ledger', parked: 2, lastError: null, eventsBehind: '0' }),
        expect.objectContaining({ projection: 'grants', parked: 0 }),
      ]),
    );
  });

  it('the account shows its parked events and its statement is not reconciled', async () => {
    expect((await get(`/accounts/${X}`)).json()).toMatchObject({ balance: '15', parkedEvents: 2 });
    expect((await get('/accounts')).json().accounts).toEqual([expect.objectContaining({ id: X, parkedEvents: 2 })]);
    expect((await get(`/accounts/${X}/statement?from=2026-03-01&to=2026-03-31`)).json()).toMatchObject({
      lineCount: 2,
      parkedEvents: 2,
      reconciled: false,
    });
  });

  it('GET /parked lists them by projection and log position, paged and filtered', async () => {
    const all = (await get('/parked')).json();
    expect(all).toMatchObject({
      parked: [
        { projection: 'ledger', eventId: poison, type: 'BalanceChanged', streamId: 'bankTx-ops2', subject: X, transactionDate: '2026-03-02' },
        { projection: 'ledger', eventId: yearZero, transactionDate: '0000-01-01' },
      ],
      nextCursor: null,
    });
    expect(all.parked[0].error).toMatch(/out of range for type bigint/);
    // Tried at least three times before it was set aside (more when its batch waited for another event's tries).
    expect(all.parked.every((p: { tries: number }) => p.tries >= 3)).toBe(true);
    expect(all.parked[0].firstFailedAt <= all.parked[0].lastFailedAt).toBe(true);
    const first = (await get('/parked?limit=1')).json();
    expect(first.parked.map((p: { eventId: string }) => p.eventId)).toEqual([poison]);
    expect((await get(`/parked?limit=1&cursor=${first.nextCursor}`)).json()).toMatchObject({ parked: [{ eventId: yearZero }], nextCursor: null });
    expect((await get('/parked?projection=grants')).json()).toEqual({ parked: [], nextCursor: null });
    const bad = await get('/parked?projection=nope');
    expect(bad.statusCode).toBe(400);
    expect(bad.json().errors.map((e: { field: string }) => e.field)).toEqual(['querystring.projection']);
  });

  it('POST /parked/{projection}/{eventId}/retry tries again: still failing, it stays parked with one more try', async () => {
    const { tries } = (await get('/parked')).json().parked[0];
    const res = await post(`/parked/ledger/${poison}/retry`);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ projection: 'ledger', eventId: poison, outcome: 'failed_again', tries: tries + 1 });
    expect(res.json().error).toMatch(/out of range/);
    expect((await get('/parked')).json().parked[0]).toMatchObject({ eventId: poison, tries: tries + 1 });
    expect((await post(`/parked/ledger/${randomUUID()}/retry`)).statusCode).toBe(404);
    expect((await post(`/parked/grants/${poison}/retry`)).statusCode).toBe(404);
    expect((await post(`/parked/nope/${poison}/retry`)).statusCode).toBe(400);
  });

  describe('the quarantine', () => {
    const invalid = (n: number) => JSON.stringify({ webhookType: 'TRANSACTIONS', webhookCode: 'DEFAULT_UPDATE', transaction: { id: `q${n}`, amount: 1.5 } });
    const deliver = (payload: string | Buffer) =>
      t.app.inject({ method: 'POST', url: `/webhooks/bankhub?token=${TEST_TOKEN}`, headers: { 'content-type': 'application/json' }, payload });
    let ids: string[] = [];
    let valid: string;

    beforeAll(async () => {
      ids = [];
      for (const n of [1, 2, 3]) ids.push((await deliver(invalid(n))).json().quarantineId);
      // A body an older version refused though it is valid now: quarantined through the port, as that version did.
      const body = sample('transaction-webhook.json');
      valid = await t.stores.quarantine.put({
        rawBody: body,
        bodySha256: createHash('sha256').update(body).digest('hex'),
        contentType: 'application/json',
        problems: [{ field: 'transaction.amount', message: 'refused by an older version' }],
        source: 'webhook',
        requestId: 'req-old',
        remoteAddress: '10.0.0.1',
        receivedAt: new Date('2026-02-01T00:00:00Z'),
      });
    });

    it('GET /quarantine lists pending bodies oldest first, a page at a time, without the bodies', async () => {
      const all = (await get('/quarantine')).json();
      expect(all.quarantine.map((q: { id: string }) => q.id)).toEqual([...ids, valid]);
      expect(all.quarantine[0]).toMatchObject({
        id: ids[0],
        byteLength: Buffer.byteLength(invalid(1)),
        contentType: 'application/json',
        source: 'webhook',
        timesReceived: 1,
        reingestedAt: null,
        reingestOutcome: null,
      });
      expect(all.quarantine[0].problems.map((p: { field: string }) => p.field)).toContain('transaction.amount');
      expect(all.quarantine[0]).not.toHaveProperty('rawBody');
      const pages: string[] = [];
      let cursor: string | null = null;
      do {
        const page: { quarantine: { id: string }[]; nextCursor: string | null } = (await get(`/quarantine?limit=3${cursor ? `&cursor=${cursor}` : ''}`)).json();
        pages.push(...page.quarantine.map((q: { id: string }) => q.id));
        cursor = page.nextCursor;
      } while (cursor);
      expect(pages).toEqual([...ids, valid]);
      expect((await get('/quarantine?cursor=abc')).statusCode).toBe(400);
    });

    it('GET /quarantine/{id} gives its metadata and reasons; /raw the bytes as received, never rendered', async () => {
      const one = await get(`/quarantine/${ids[1]}`);
      expect(one.json()).toMatchObject({ id: ids[1], bodySha256: createHash('sha256').update(invalid(2)).digest('hex') });
      const raw = await get(`/quarantine/${ids[1]}/raw`);
      expect(raw.statusCode).toBe(200);
      expect(raw.rawPayload.equals(Buffer.from(invalid(2)))).toBe(true);
      expect(raw.headers).toMatchObject({
        'content-type': 'application/octet-stream',
        'x-content-type-options': 'nosniff',
        'content-security-policy': "default-src 'none'; sandbox",
      });
      expect(raw.headers['x-content-sha256']).toBe(createHash('sha256').update(invalid(2)).digest('hex'));
      expect((await get('/quarantine/999999')).statusCode).toBe(404);
      expect((await get('/quarantine/999999/raw')).statusCode).toBe(404);
      expect((await get('/quarantine/abc')).statusCode).toBe(400);
    });

    it('POST /quarantine/{id}/reingest books a body that validates now, once; one still invalid is 422 naming why', async () => {
      const still = await post(`/quarantine/${ids[0]}/reingest`);
      expect(still.statusCode).toBe(422);
      expect(still.json().errors.map((e: { field: string }) => e.field)).toContain('transaction.amount');
      const booked = await post(`/quarantine/${valid}/reingest`);
      expect(booked.statusCode).toBe(200);
      expect(booked.json()).toMatchObject({ id: valid, status: 'ingested', outcome: { status: 'accepted', eventId: expect.any(String) } });
      expect((await post(`/quarantine/${valid}/reingest`)).json()).toMatchObject({ status: 'already_reingested', outcome: { status: 'accepted' } });
      expect((await get('/quarantine')).json().quarantine.map((q: { id: string }) => q.id)).toEqual(ids);
      expect((await get('/quarantine?status=all')).json().quarantine.at(-1)).toMatchObject({ id: valid, reingestedAt: expect.any(String) });
      expect((await post('/quarantine/999999/reingest')).statusCode).toBe(404);
    });
  });
});

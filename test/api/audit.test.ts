import { createHash } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accountIdOf } from '../../src/projections/ledger.projection';
import { createTestApp, sample, TEST_TOKEN, type TestApp } from '../support/app';

const FI = '3c26a8ed-efb5-11ed-8620-0ae7e48c82d8';
let t: TestApp;
const posted: Buffer[] = [];

/** A TRANSACTIONS webhook written by hand, with the spacing and escapes a real sender might use. */
function oddlySpaced(id: string, amount: number, runningBalance: number, minute: number, description: string): Buffer {
  return Buffer.from(
    `{ "environment":"dev",\n\t"webhookType" : "TRANSACTIONS", "webhookCode":"DEFAULT_UPDATE", "error":null,\r\n` +
      ` "grantId":"4c657924-13f3-11ee-a4bb-42010a40001b", "transaction": {"id":"${id}","transactionCode":null,"reference":null,` +
      `"transactionDate":"2026-05-04","transactionDateTime":"2026-05-04T09:${String(minute).padStart(2, '0')}:00+07:00",` +
      `"bookingDate":"2026-05-04","amount":${amount},"description":${JSON.stringify(description)},"runningBalance":${runningBalance},` +
      `"accountNumber":"0071000123456","fiId":"${FI}","fiName":"Vietcombank","currency":"VND",  "counterAccountName":"NGUYỄN VĂN \\u0041N"}   }\n`,
    'utf8',
  );
}

beforeAll(async () => {
  t = await createTestApp();
  const bodies = [
    oddlySpaced('aud00000000000000000000000000001', 100000, 1100000, 1, 'Thanh toán hoá đơn tiền điện tháng 5'),
    oddlySpaced('aud00000000000000000000000000003', -25000, 1075000, 3, 'Rút tiền\tATM "Hà Nội"'),
    oddlySpaced('aud00000000000000000000000000002', 5000, 1105000, 2, 'Phí dịch vụ 😀'),
    oddlySpaced('aud00000000000000000000000000002', 6000, 1106000, 2, 'Phí dịch vụ (sửa)'), // a conflicting repeat
    sample('grant-error-webhook.json'),
  ];
  for (const body of bodies) {
    const res = await t.app.inject({ method: 'POST', url: `/webhooks/bankhub?token=${TEST_TOKEN}`, headers: { 'content-type': 'application/json' }, payload: body });
    expect(res.statusCode).toBe(200);
    posted.push(body);
  }
  await t.runner.caughtUp();
  await t.grantsRunner.caughtUp();
});
afterAll(async () => {
  await t?.close();
});

describe('GET /audit/events', () => {
  it('pages through the whole log in order, visiting every event once', async () => {
    const seen: { position: string; eventId: string }[] = [];
    let after: string | null = null;
    for (let pages = 0; pages < 100; pages++) {
      const res: { statusCode: number; json(): { events: { position: string; eventId: string }[]; next: string | null } } = await t.app.inject({ url: `/audit/events?limit=2${after ? `&after=${after}` : ''}` });
      expect(res.statusCode).toBe(200);
      const body: { events: { position: string; eventId: string }[]; next: string | null } = res.json();
      seen.push(...body.events);
      after = body.next;
      if (after === null) break;
    }
    expect(seen).toHaveLength(5);
    expect(new Set(seen.map((e) => e.eventId)).size).toBe(5);
    expect([...seen.map((e) => e.position)].sort()).toEqual(seen.map((e) => e.position));
  });

  it('refuses a position it never handed out', async () => {
    const res = await t.app.inject({ url: '/audit/events?after=yesterday' });
    expect(res.statusCode).toBe(400);
    expect(res.json().errors[0].field).toBe('querystring.after');
  });
});

describe('GET /audit/events/{eventId}/raw', () => {
  it('gives back every body byte for byte, with its SHA-256', async () => {
    const log = (await t.app.inject({ url: '/audit/events?limit=100' })).json().events as { eventId: string; metadata: { rawSha256: string } }[];
    for (const event of log) {
      const res = await t.app.inject({ url: `/audit/events/${event.eventId}/raw` });
      expect(res.statusCode).toBe(200);
      const sha = createHash('sha256').update(res.rawPayload).digest('hex');
      expect(res.headers['x-content-sha256']).toBe(sha);
      expect(sha).toBe(event.metadata.rawSha256);
      expect(posted.some((body) => body.equals(res.rawPayload))).toBe(true);
      // Data, never a page: no type sniffing, no script, even in a browser that opens it directly.
      expect(res.headers['x-content-type-options']).toBe('nosniff');
      expect(res.headers['content-security-policy']).toBe("default-src 'none'; sandbox");
    }
    expect(log).toHaveLength(5);
  });

  it('answers 404 for an event it does not have', async () => {
    const res = await t.app.inject({ url: '/audit/events/00000000-0000-4000-8000-000000000000/raw' });
    expect(res.statusCode).toBe(404);
  });
});

describe('GET /audit/accounts/{id}/events', () => {
  it("lists the account's booked transactions and conflicting repeats in log order", async () => {
    const id = accountIdOf(FI, '0071000123456');
    const res = await t.app.inject({ url: `/audit/accounts/${id}/events` });
    expect(res.statusCode).toBe(200);
    const { events, next } = res.json();
    expect(next).toBeNull();
    expect(events.map((e: { type: string; data: { transaction: { id: string } } }) => [e.type, e.data.transaction.id])).toEqual([
      ['BalanceChanged', 'aud00000000000000000000000000001'],
      ['BalanceChanged', 'aud00000000000000000000000000003'],
      ['BalanceChanged', 'aud00000000000000000000000000002'],
      ['ConflictingDuplicateReceived', 'aud00000000000000000000000000002'],
    ]);
    const paged = (await t.app.inject({ url: `/audit/accounts/${id}/events?limit=3` })).json();
    expect(paged.events).toHaveLength(3);
    const rest = (await t.app.inject({ url: `/audit/accounts/${id}/events?limit=3&after=${paged.next}` })).json();
    expect(rest.events.map((e: { type: string }) => e.type)).toEqual(['ConflictingDuplicateReceived']);
  });

  it('answers 404 for an unknown account', async () => {
    expect((await t.app.inject({ url: '/audit/accounts/00000000-0000-4000-8000-000000000000/events' })).statusCode).toBe(404);
  });
});

describe('GET /audit/statements/verify', () => {
  it("confirms a statement's digest while the books are unchanged, and not after a line changed", async () => {
    const id = accountIdOf(FI, '0071000123456');
    const period = 'from=2026-05-01&to=2026-05-31';
    const { digest } = (await t.app.inject({ url: `/accounts/${id}/statement?${period}` })).json();
    expect(digest).toMatch(/^[0-9a-f]{64}$/);
    const check = () => t.app.inject({ url: `/audit/statements/verify?accountId=${id}&${period}&digest=${digest}` }).then((r) => r.json());
    expect(await check()).toMatchObject({ matches: true, currentDigest: digest });
    await sql`update ledger.statement_lines set balance_after = balance_after + 1 where transaction_id = 'aud00000000000000000000000000001'`.execute(
      t.stores.database.db,
    );
    const after = await check();
    expect(after.matches).toBe(false);
    expect(after.currentDigest).not.toBe(digest);
    await sql`update ledger.statement_lines set balance_after = balance_after - 1 where transaction_id = 'aud00000000000000000000000000001'`.execute(
      t.stores.database.db,
    );
    expect(await check()).toMatchObject({ matches: true });
  });

  it('names a bad parameter', async () => {
    const res = await t.app.inject({ url: '/audit/statements/verify?accountId=x&from=2026-05-31&to=2026-05-01&digest=abc' });
    expect(res.statusCode).toBe(400);
    expect(res.json().errors.map((e: { field: string }) => e.field).sort()).toEqual(['querystring.digest', 'querystring.from']);
  });
});

describe('POST /audit/verify', () => {
  it('reports healthy books as ok, and names the table and row of a hand-made change', async () => {
    const healthy = await t.app.inject({ method: 'POST', url: '/audit/verify' });
    // Both read models: the ledger (4 transaction events, 4 tables) and the grants (1 GRANT webhook, 1 table), and
    // the parked events of each.
    expect(healthy.json()).toMatchObject({ ok: true, eventsReplayed: 5, tablesCompared: 7, differences: [], id: expect.any(String) });
    await sql`update ledger.statement_lines set amount = amount + 1 where transaction_id = 'aud00000000000000000000000000003'`.execute(
      t.stores.database.db,
    );
    const [one, two] = await Promise.all([
      t.app.inject({ method: 'POST', url: '/audit/verify' }),
      t.app.inject({ method: 'POST', url: '/audit/verify' }),
    ]);
    // One at a time: the second is refused, naming the one that runs.
    const [done, refused] = one.statusCode === 200 ? [one, two] : [two, one];
    expect(done.statusCode).toBe(200);
    expect(refused.statusCode).toBe(409);
    expect(refused.headers['content-type']).toContain('application/problem+json');
    expect(refused.json()).toMatchObject({ type: 'urn:balance-ledger:problem:verify-running', running: { id: done.json().id, startedAt: done.json().startedAt } });
    expect(refused.json().detail).toContain(done.json().id);
    const tampered = (await t.app.inject({ method: 'POST', url: '/audit/verify' })).json();
    expect(tampered.ok).toBe(false);
    expect(tampered.differences).toMatchObject([
      { projection: 'ledger', table: 'statement_lines', key: { transaction_id: 'aud00000000000000000000000000003' }, kind: 'changed', live: { amount: '-24999' }, rebuilt: { amount: '-25000' } },
    ]);
  });
});

import { Writable } from 'node:stream';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256 } from '../../src/application/digest';
import { compose, type Root } from '../../src/composition-root';
import { loadConfig } from '../../src/config';
import { createLogger } from '../../src/infrastructure/logger';
import { createTestApp, sample, TEST_TOKEN, type TestApp } from '../support/app';

const URL_WITH_TOKEN = `/webhooks/bankhub?token=${TEST_TOKEN}`;
const json = { 'content-type': 'application/json' };
const REQUEST_ID = '0d5c6f0e-3b7a-4e54-9d8f-6a1f3b2c9e10';

/** The sample with one JSON text replaced by another: for what JSON.stringify cannot write (1e30, a key twice). */
const sampleWith = (from: string, to: string): string => {
  const text = sample('transaction-webhook.json').toString('utf8');
  if (!text.includes(from)) throw new Error(`the sample has no ${from}`);
  return text.replace(from, to);
};

function withTransaction(change: Record<string, unknown>, envelope: Record<string, unknown> = {}): string {
  const body = JSON.parse(sample('transaction-webhook.json').toString('utf8'));
  return JSON.stringify({ ...body, ...envelope, transaction: { ...body.transaction, ...change } });
}

describe('POST /webhooks/bankhub', () => {
  let t: TestApp;
  const post = (payload: string | Buffer, url = URL_WITH_TOKEN, headers: Record<string, string> = json) =>
    t.app.inject({ method: 'POST', url, headers, payload });
  const streamOf = (id: string) => t.stores.eventStore.readStream(`bankTx-${id}`, { withAttachments: true });
  const quarantined = () => t.stores.quarantine.list({ pendingOnly: false, limit: 1000 });

  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(async () => {
    await t?.close();
  });

  it('books the sample transaction once and keeps the raw body, its hash and where it came from', async () => {
    const raw = sample('transaction-webhook.json');
    const res = await post(raw, URL_WITH_TOKEN, { ...json, 'x-request-id': REQUEST_ID });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'accepted', eventId: expect.any(String) });
    const [event, ...rest] = await streamOf('3cacecf6935011ee952542010a400022');
    expect(rest).toEqual([]);
    expect(event).toMatchObject({ type: 'BalanceChanged', eventId: res.json().eventId, revision: 0n });
    expect(event!.data.transaction).toMatchObject({ amount: '10000', runningBalance: '3330000', accountNumber: '867623232' });
    expect(event!.attachment).toBe(raw.toString('utf8'));
    expect(event!.metadata).toMatchObject({
      rawSha256: sha256(raw),
      source: 'webhook',
      grantId: '4c657924-13f3-11ee-a4bb-42010a40001b',
      requestId: REQUEST_ID,
    });
    expect(Date.parse(event!.metadata.receivedAt as string)).not.toBeNaN();
  });

  it('reads a body that starts with a byte-order mark and keeps the mark in the attachment', async () => {
    const raw = Buffer.from(`\uFEFF${withTransaction({ id: 'bom0001' })}`, 'utf8');
    const res = await post(raw);
    expect(res.statusCode).toBe(200);
    const [event] = await streamOf('bom0001');
    expect(event!.attachment).toBe(raw.toString('utf8'));
    expect(event!.attachment!.charCodeAt(0)).toBe(0xfeff);
    expect(event!.metadata.rawSha256).toBe(sha256(raw));
  });

  it('answers duplicate for the same transaction again, also when the account number comes as a string', async () => {
    const again = await post(sample('transaction-webhook.json'));
    expect(again.json()).toEqual({ status: 'duplicate', eventId: expect.any(String) });
    const asString = await post(withTransaction({ accountNumber: '867623232' }));
    expect(asString.json().status).toBe('duplicate');
    expect(await streamOf('3cacecf6935011ee952542010a400022')).toHaveLength(1);
  });

  it('keeps a repeat with other content as a conflict, once per content, and the first version stays', async () => {
    const other = withTransaction({ id: 'c0ffee00000000000000000000000001' });
    expect((await post(other)).json().status).toBe('accepted');
    const changed = withTransaction({ id: 'c0ffee00000000000000000000000001', amount: 20000, runningBalance: 3340000 });
    const first = await post(changed);
    expect(first.json()).toEqual({ status: 'conflict', eventId: expect.any(String) });
    const second = await post(changed);
    expect(second.json()).toEqual(first.json());
    const stream = await streamOf('c0ffee00000000000000000000000001');
    expect(stream.map((e) => e.type)).toEqual(['BalanceChanged', 'ConflictingDuplicateReceived']);
    expect(stream[0]!.data.transaction).toMatchObject({ amount: '10000' });
    expect(stream[1]!.data).toMatchObject({ originalEventId: stream[0]!.eventId, transaction: { amount: '20000' } });
  });

  it('stores exactly one event for 50 concurrent deliveries of one transaction', async () => {
    const body = withTransaction({ id: 'c0ffee00000000000000000000000050' });
    const results = await Promise.all(Array.from({ length: 50 }, () => post(body)));
    const statuses = results.map((r) => r.json().status);
    expect(statuses.filter((s) => s === 'accepted')).toHaveLength(1);
    expect(statuses.filter((s) => s === 'duplicate')).toHaveLength(49);
    expect(await streamOf('c0ffee00000000000000000000000050')).toHaveLength(1);
  });

  it('answers the console ping without storing anything', async () => {
    const before = await t.stores.eventStore.readAll({ after: null, maxCount: 10_000 });
    const res = await post(sample('console-ping.json'));
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'ping' });
    const after = await t.stores.eventStore.readAll({ after: null, maxCount: 10_000 });
    expect(after.events).toHaveLength(before.events.length);
  });

  it('records GRANT and other webhooks as events of their own, once per body', async () => {
    const grant = await post(sample('grant-error-webhook.json'));
    expect(grant.json()).toEqual({ status: 'recorded', eventId: expect.any(String) });
    expect((await post(sample('grant-error-webhook.json'))).json()).toEqual(grant.json());
    const stream = await t.stores.eventStore.readStream('grant-4c657924-13f3-11ee-a4bb-42010a40001b');
    expect(stream).toHaveLength(1);
    expect(stream[0]).toMatchObject({
      type: 'GrantWebhookReceived',
      data: { webhookCode: 'ERROR', error: { errorCode: 'GRANT_LOGIN_REQUIRED' } },
    });
    const invoice = await post('{"environment":"dev","webhookType":"INVOICE","webhookCode":"DEFAULT_UPDATE","grantId":null,"invoice":{"total":12345678901234567890,"n":7}}');
    expect(invoice.json().status).toBe('recorded');
    const [recorded] = await t.stores.eventStore.readStream('webhook-invoice');
    expect(recorded!.data.body).toMatchObject({ invoice: { total: '12345678901234567890', n: 7 } });
  });

  describe('rejects what it cannot book with 400 naming each field, and quarantines the body', () => {
    const cases: [string, string | Buffer, string[]][] = [
      ['malformed JSON', '{"webhookType": "TRANSACTIONS",', ['(body)']],
      ['a body that is not UTF-8', Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), ['(body)']],
      ['a fractional VND amount', withTransaction({ amount: 10000.5 }), ['transaction.amount']],
      ['an amount of the wrong type', withTransaction({ amount: true }), ['transaction.amount']],
      ['no transaction id', withTransaction({ id: undefined }), ['transaction.id']],
      ['an unparseable instant', withTransaction({ transactionDateTime: '05/12/2023 16:25' }), ['transaction.transactionDateTime']],
      ['an instant without offset', withTransaction({ transactionDateTime: '2023-12-05T16:25:00' }), ['transaction.transactionDateTime']],
      ['two bad fields at once', withTransaction({ runningBalance: 'lots', transactionDate: '2023-13-45' }), ['transaction.runningBalance', 'transaction.transactionDate']],
      ['no webhookType', JSON.stringify({ webhookCode: 'X' }), ['webhookType']],
      ['a TRANSACTIONS webhook without its transaction', JSON.stringify({ webhookType: 'TRANSACTIONS', webhookCode: 'DEFAULT_UPDATE' }), ['transaction']],
      // What would have been booked and then stopped the books, or answered 500:
      ['NUL in a description', withTransaction({ description: 'a\u0000b' }), ['transaction.description']],
      ['an emoji cut in half', withTransaction({ description: 'thanks \ud83d' }), ['transaction.description']],
      ['an unpaired low surrogate in a key', withTransaction({ paymentMeta: { '\udc00': 1 } }), ['transaction.paymentMeta']],
      ['amount 1e30', sampleWith('"amount": 10000', '"amount": 1e30'), ['transaction.amount']],
      ['runningBalance 2^63', sampleWith('"runningBalance": 3330000', '"runningBalance": 9223372036854775808'), ['transaction.runningBalance']],
      ['a balance before out of range', sampleWith('"amount": 10000', '"amount": -4611686018427387903').replace('"runningBalance": 3330000', '"runningBalance": 4611686018427387903'), ['transaction.runningBalance']],
      ['year 0000', withTransaction({ transactionDate: '0000-01-01' }), ['transaction.transactionDate']],
      ['an instant before 1900 in UTC', withTransaction({ transactionDateTime: '1900-01-01T00:00:00+07:00' }), ['transaction.transactionDateTime']],
      ['2023-02-30', withTransaction({ bookingDate: '2023-02-30' }), ['transaction.bookingDate']],
      ['a duplicated key', sampleWith('"amount": 10000,', '"amount": 10000, "amount": 99999,'), ['transaction.amount']],
      ['a duplicated key on the lossless path', sampleWith('"amount": 10000,', '"amount": 10000.0, "amount": 99999,'), ['transaction.amount']],
      ['NUL in webhookType, which names a stream', JSON.stringify({ webhookType: 'X\u0000', webhookCode: 'Y' }), ['webhookType']],
      ['a webhookType of 100 000 characters', JSON.stringify({ webhookType: 'X'.repeat(100_000), webhookCode: 'Y' }), ['webhookType']],
      ['half a surrogate in a GRANT webhook', JSON.stringify({ webhookType: 'GRANT', webhookCode: 'ERROR', grantId: 'g-1', error: { errorMessage: '\ud800' } }), ['error.errorMessage']],
      ['an INVOICE nested 10 000 deep, holding a fraction', `{"webhookType":"INVOICE","webhookCode":"X","a":${'['.repeat(10_000)}1.5${']'.repeat(10_000)}}`, [['a', ...Array<string>(63).fill('0')].join('.')]],
      ['the bytes \\x00\\x01garbage', Buffer.from('\x00\x01garbage', 'latin1'), ['(body)']],
      ['NUL and invalid UTF-8', Buffer.from([0x7b, 0x00, 0xc3, 0x28, 0xed, 0xa0, 0x80, 0x7d]), ['(body)']],
    ];
    it.each(cases)('%s', async (_name, body, fields) => {
      const res = await post(body);
      expect(res.statusCode).toBe(400);
      expect(res.headers['content-type']).toContain('application/problem+json');
      const problem = res.json();
      expect(problem.errors.map((e: { field: string }) => e.field).sort()).toEqual(fields);
      const entry = await t.stores.quarantine.get(String(problem.quarantineId));
      expect(Buffer.from(entry!.rawBody).equals(Buffer.isBuffer(body) ? body : Buffer.from(body))).toBe(true);
      expect(entry!.problems.map((p) => p.field).sort()).toEqual(fields);
    });

    it('keeps a body once however often it is sent', async () => {
      const body = withTransaction({ amount: 1.25 });
      const first = (await post(body)).json();
      const second = (await post(body)).json();
      expect(second.quarantineId).toBe(first.quarantineId);
      const entry = await t.stores.quarantine.get(String(first.quarantineId));
      expect(entry!.timesReceived).toBe(2);
    });
  });

  describe('takes JSON only', () => {
    it.each([['text/plain'], ['application/x-www-form-urlencoded'], ['multipart/form-data; boundary=x'], ['application/jsonp'], [undefined]])(
      'refuses %s with 415 problem+json and quarantines the body with the reason',
      async (type) => {
        const body = withTransaction({ id: `c0ffee0000000000000000000415${String(type).length.toString().padStart(4, '0')}` });
        const res = await post(body, URL_WITH_TOKEN, type === undefined ? {} : { 'content-type': type });
        expect(res.statusCode).toBe(415);
        expect(res.headers['content-type']).toContain('application/problem+json');
        const problem = res.json();
        expect(problem.errors).toEqual([{ field: 'headers.content-type', message: `must be application/json, was ${type ?? 'absent'}` }]);
        const entry = await t.stores.quarantine.get(String(problem.quarantineId));
        expect(Buffer.from(entry!.rawBody).toString('utf8')).toBe(body);
        expect(entry!.problems.map((p) => p.field)).toEqual(['headers.content-type']);
        expect(entry!.contentType).toBe(type ?? null);
        const log = await t.stores.eventStore.readAll({ after: null, maxCount: 10_000, withAttachments: true });
        expect(log.events.some((e) => e.attachment === body)).toBe(false);
      },
    );
    it.each([['application/json; charset=utf-8'], ['Application/JSON'], ['APPLICATION/JSON;CHARSET=UTF-8'], ['application/json ; charset="utf-8"']])(
      'accepts %s',
      async (type) => {
        const res = await post(sample('console-ping.json'), URL_WITH_TOKEN, { 'content-type': type });
        expect(res.statusCode).toBe(200);
      },
    );
  });

  it('keeps a client x-request-id only when it is a UUID', async () => {
    const res = await post(withTransaction({ id: 'c0ffee000000000000000000000000d1' }), URL_WITH_TOKEN, { ...json, 'x-request-id': 'drop table; <script>' });
    const [event] = await streamOf('c0ffee000000000000000000000000d1');
    expect(res.statusCode).toBe(200);
    expect(event!.metadata.requestId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(event!.metadata.requestId).not.toBe('drop table; <script>');
  });

  it('books a body just under 256 KB, answers 413 for one over it and books nothing', async () => {
    const sized = (id: string, bytes: number) => {
      const body = withTransaction({ id, description: '' });
      return withTransaction({ id, description: 'x'.repeat(bytes - Buffer.byteLength(body)) });
    };
    const fits = sized('c0ffee000000000000000000000000ba', 256 * 1024);
    expect(Buffer.byteLength(fits)).toBe(256 * 1024);
    expect((await post(fits)).json()).toMatchObject({ status: 'accepted' });
    const big = sized('c0ffee000000000000000000000000bb', 256 * 1024 + 1);
    const res = await post(big);
    expect(res.statusCode).toBe(413);
    expect(res.headers['content-type']).toContain('application/problem+json');
    expect(await streamOf('c0ffee000000000000000000000000bb')).toEqual([]);
  });

  describe('authentication', () => {
    const body = () => withTransaction({ id: 'c0ffee000000000000000000000000a1' });
    it.each([
      ['no token', '/webhooks/bankhub', json],
      ['a wrong token in the query', '/webhooks/bankhub?token=wrong', json],
      ['a wrong token in the header', '/webhooks/bankhub', { ...json, 'x-webhook-token': `${TEST_TOKEN}x` }],
    ])('refuses %s with 401 and stores nothing', async (_name, url, headers) => {
      const before = (await quarantined()).length;
      const res = await post(body(), url, headers);
      expect(res.statusCode).toBe(401);
      expect(await streamOf('c0ffee000000000000000000000000a1')).toEqual([]);
      expect(await quarantined()).toHaveLength(before);
    });
    it('accepts the token in the x-webhook-token header', async () => {
      const res = await post(body(), '/webhooks/bankhub', { ...json, 'x-webhook-token': TEST_TOKEN });
      expect(res.json().status).toBe('accepted');
    });
  });
});

describe('a body the store refuses, in a group commit with good ones', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp();
    // The parser lets nothing through that PostgreSQL is known to refuse; a trigger makes PostgreSQL refuse one body
    // anyway (a data exception, as a character it cannot hold would raise), to see what the rest of its group gets.
    await sql`
      create function refuse_marked() returns trigger language plpgsql as $$
      begin
        if new.data::text like '%store-refuses-this%' then
          raise exception 'this content cannot be stored' using errcode = '22023';
        end if;
        return new;
      end $$`.execute(t.stores.database.db);
    await sql`create trigger refuse_marked before insert on events for each row execute function refuse_marked()`.execute(t.stores.database.db);
  });
  afterAll(async () => {
    await t?.close();
  });

  it('answers 400 and quarantines that one; the 15 sent with it are all booked', async () => {
    const id = (i: number) => `c0ffee0000000000000000000000${String(i).padStart(4, '0')}`;
    const good = Array.from({ length: 15 }, (_, i) => withTransaction({ id: id(i), amount: 1000 + i }));
    const poison = withTransaction({ id: id(99), description: 'store-refuses-this' });
    const bodies = [...good.slice(0, 7), poison, ...good.slice(7)];
    const answers = await Promise.all(
      bodies.map((payload) => t.app.inject({ method: 'POST', url: URL_WITH_TOKEN, headers: json, payload })),
    );
    const refused = answers.splice(7, 1)[0]!;
    expect(refused.statusCode).toBe(400);
    expect(refused.json()).toMatchObject({ errors: [{ field: '(body)', message: expect.stringMatching(/event store cannot hold it/) }] });
    const entry = await t.stores.quarantine.get(String(refused.json().quarantineId));
    expect(Buffer.from(entry!.rawBody).toString('utf8')).toBe(poison);
    expect(answers.map((a) => [a.statusCode, a.json().status])).toEqual(good.map(() => [200, 'accepted']));
    for (let i = 0; i < 15; i++) expect(await t.stores.eventStore.readStream(`bankTx-${id(i)}`)).toHaveLength(1);
    expect(await t.stores.eventStore.readStream(`bankTx-${id(99)}`)).toEqual([]);
  });
});

describe('webhook source allowlist', () => {
  let t: TestApp;
  afterAll(async () => {
    await t?.close();
  });
  it('checks the socket address, and X-Forwarded-For only from a trusted proxy', async () => {
    t = await createTestApp({ WEBHOOK_ALLOWED_IPS: '20.2.69.168,10.0.0.0/8' });
    const deliver = (headers: Record<string, string>, remoteAddress = '127.0.0.1') =>
      t.app.inject({ method: 'POST', url: URL_WITH_TOKEN, headers: { ...json, ...headers }, payload: '{}', remoteAddress });
    expect((await deliver({})).statusCode).toBe(403);
    expect((await deliver({ 'x-forwarded-for': '20.2.69.168' })).statusCode).toBe(403);
    expect((await deliver({}, '20.2.69.168')).statusCode).toBe(200);
    expect((await deliver({}, '10.9.8.7')).statusCode).toBe(200);
    await t.close();
    t = await createTestApp({ WEBHOOK_ALLOWED_IPS: '20.2.69.168', TRUST_PROXY: '127.0.0.1' });
    expect((await deliver({ 'x-forwarded-for': '20.2.69.168' })).statusCode).toBe(200);
    expect((await deliver({ 'x-forwarded-for': '34.87.150.47' })).statusCode).toBe(403);
  });
});

describe('when the store is unreachable', () => {
  let t: TestApp;
  let unreachable: Root;
  beforeAll(async () => {
    // The service's own event store, built by the root over a PostgreSQL that is not there (nothing is opened until used).
    unreachable = await compose(loadConfig({ DATABASE_URL: 'postgres://postgres@127.0.0.1:1/none', LOG_LEVEL: 'silent' }));
    t = await createTestApp({}, { eventStore: unreachable.resolve('eventStore') });
  });
  afterAll(async () => {
    await t?.close();
    await unreachable?.close();
  });
  it('answers 503 so that Cas retries, and acknowledges nothing', async () => {
    const res = await t.app.inject({ method: 'POST', url: URL_WITH_TOKEN, headers: json, payload: sample('transaction-webhook.json') });
    expect(res.statusCode).toBe(503);
    expect(res.headers['retry-after']).toBe('5');
    expect(res.json().status).toBe(503);
  });
});

describe('logs', () => {
  it('never contain the webhook token', async () => {
    const lines: string[] = [];
    const sink = new Writable({ write: (chunk, _enc, done) => (lines.push(String(chunk)), done()) });
    // debug: the `incoming request` line carries the raw URL (at info only the route's pattern is written).
    const t = await createTestApp({}, { logger: createLogger('debug', sink) });
    try {
      await t.app.inject({ method: 'POST', url: URL_WITH_TOKEN, headers: { ...json, 'x-webhook-token': TEST_TOKEN }, payload: '{}' });
    } finally {
      await t.close();
    }
    expect(lines.some((l) => l.includes('/webhooks/bankhub?token=[redacted]'))).toBe(true);
    expect(lines.join('\n')).not.toContain(TEST_TOKEN);
    // The line a person reads at info names the route, its answer and time, never the URL.
    const completed = lines.map((l) => JSON.parse(l)).find((l) => l.msg === 'request completed');
    expect(completed).toMatchObject({ method: 'POST', route: '/webhooks/bankhub', statusCode: 200, responseTime: expect.any(Number), reqId: expect.any(String) });
    expect(JSON.stringify(completed)).not.toContain('token');
  });

  it('read as one line per request for a person (LOG_FORMAT=pretty), still without the token', async () => {
    const lines: string[] = [];
    const sink = new Writable({ write: (chunk, _enc, done) => (lines.push(String(chunk)), done()) });
    const t = await createTestApp({}, { logger: createLogger('info', sink, 'pretty') });
    try {
      await t.app.inject({ method: 'POST', url: URL_WITH_TOKEN, headers: json, payload: '{}' });
    } finally {
      await t.close();
    }
    const text = lines.join('');
    expect(text).toMatch(/INFO: POST \/webhooks\/bankhub 200 [\d.]+ ms \[req [0-9a-f-]{36}\]\n/);
    expect(text).not.toContain(TEST_TOKEN);
    expect(text).not.toContain('{"level"');
  });

  it('never contain the token in the query however it is spelt or encoded', async () => {
    const lines: string[] = [];
    const sink = new Writable({ write: (chunk, _enc, done) => (lines.push(String(chunk)), done()) });
    const t = await createTestApp({}, { logger: createLogger('debug', sink) });
    const urls = [
      `/webhooks/bankhub?%74oken=${TEST_TOKEN}`,
      `/webhooks/bankhub?to%6Ben=${TEST_TOKEN}`,
      `/webhooks/bankhub?TOKEN=${TEST_TOKEN}`,
      `/webhooks/bankhub?a=1&token=${TEST_TOKEN}&token=${TEST_TOKEN}`,
      `/webhooks/bankhub?token=${encodeURIComponent(TEST_TOKEN).replace(/[a-z]/g, (c) => `%${c.charCodeAt(0).toString(16)}`)}`,
      `/no/such/route?token=${TEST_TOKEN}`,
    ];
    try {
      // The first is the token to fastify's query parser too: it is accepted, and still never logged.
      expect((await t.app.inject({ method: 'POST', url: urls[0]!, headers: json, payload: '{}' })).statusCode).toBe(200);
      for (const url of urls.slice(1)) await t.app.inject({ method: 'POST', url, headers: json, payload: '{}' });
    } finally {
      await t.close();
    }
    expect(lines.filter((l) => l.includes('[redacted]')).length).toBeGreaterThanOrEqual(urls.length);
    const all = lines.join('\n');
    expect(all).not.toContain(TEST_TOKEN);
    expect(all).not.toContain(TEST_TOKEN.slice(0, 8));
  });
});

import { Writable } from 'node:stream';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey, type Role } from '../../src/application/access';
import { createLogger } from '../../src/infrastructure/logger';
import { createTestApp, sample, TEST_TOKEN, type TestApp } from '../support/app';
import { eventually } from '../support/postgres';

const API_TOKEN = 'bootstrap-admin-token-0123456789';
const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

async function makeKey(t: TestApp, role: Role, name: string = `${role}-key`): Promise<{ key: string; id: string }> {
  const made = await createApiKey(t.stores.apiKeys, { name, role, now: new Date() });
  if (!made.ok) throw new Error(made.error);
  return { key: made.value.key, id: made.value.record.id };
}

describe('API keys with roles', () => {
  let t: TestApp;
  const keys = {} as Record<Role, { key: string; id: string }>;
  const lines: string[] = [];
  const status = async (method: 'GET' | 'POST', url: string, key?: string, payload?: object) =>
    (await t.app.inject({ method, url, headers: key ? bearer(key) : {}, ...(payload ? { payload } : {}) })).statusCode;

  beforeAll(async () => {
    const sink = new Writable({ write: (chunk, _enc, done) => (lines.push(String(chunk)), done()) });
    t = await createTestApp({ API_TOKEN }, { logger: createLogger('info', sink) });
    for (const role of ['accountant', 'auditor', 'operator', 'metrics', 'admin'] as const) keys[role] = await makeKey(t, role);
  });
  afterAll(async () => {
    await t?.close();
  });

  // Each route, and the smallest role that may call it.
  const routes: [string, 'GET' | 'POST', string, object?][] = [
    ['accountant', 'GET', '/accounts'],
    ['accountant', 'GET', '/breaks'],
    ['accountant', 'GET', '/anomalies'],
    ['accountant', 'GET', '/accounts/none/statement?from=2026-01-01&to=2026-01-31'],
    ['auditor', 'GET', '/audit/events'],
    ['auditor', 'POST', '/audit/verify'],
    ['operator', 'GET', '/grants'],
    ['operator', 'GET', '/projections'],
    ['operator', 'POST', '/links', {}],
    ['operator', 'POST', '/grants/g-1/backfill', { from: '2026-01-01', to: '2026-01-02' }],
    ['operator', 'GET', '/alerts'],
    ['metrics', 'GET', '/metrics'],
  ];
  const allowed: Record<Role, Role[]> = {
    accountant: ['accountant'],
    auditor: ['accountant', 'auditor'],
    operator: ['operator'],
    metrics: ['metrics'],
    admin: ['accountant', 'auditor', 'operator', 'metrics', 'admin'],
  };

  it.each(['accountant', 'auditor', 'operator', 'metrics', 'admin'] as const)('a key of role %s reaches exactly its routes', async (role) => {
    for (const [needed, method, url, payload] of routes) {
      const code = await status(method, url, keys[role].key, payload);
      if (allowed[role].includes(needed as Role)) expect(code, `${role} ${method} ${url}`).not.toBe(403);
      else expect(code, `${role} ${method} ${url}`).toBe(403);
      expect(code).not.toBe(401);
    }
  });

  it('answers the issue\'s checks: accountant, auditor, operator and API_TOKEN', async () => {
    expect(await status('GET', '/accounts', keys.accountant.key)).toBe(200);
    expect(await status('GET', '/audit/events', keys.accountant.key)).toBe(403);
    expect(await status('POST', '/audit/verify', keys.accountant.key)).toBe(403);
    expect(await status('POST', '/links', keys.accountant.key, {})).toBe(403);
    expect(await status('GET', '/audit/events', keys.auditor.key)).toBe(200);
    expect(await status('POST', '/grants/g-1/backfill', keys.auditor.key, { from: '2026-01-01', to: '2026-01-02' })).toBe(403);
    expect(await status('GET', '/grants', keys.operator.key)).toBe(200);
    expect(await status('GET', '/audit/events', keys.operator.key)).toBe(403);
    for (const [, method, url, payload] of routes) expect(await status(method, url, API_TOKEN, payload)).not.toBe(403);
  });

  it('refuses a missing, unknown or malformed key with 401 and WWW-Authenticate: Bearer', async () => {
    for (const headers of [{}, bearer('bl_' + 'A'.repeat(43)), bearer('not-a-key'), { authorization: `Basic ${keys.admin.key}` }]) {
      const res = await t.app.inject({ url: '/accounts', headers });
      expect(res.statusCode).toBe(401);
      expect(res.headers['www-authenticate']).toBe('Bearer');
      expect(res.headers['content-type']).toContain('application/problem+json');
    }
  });

  it('takes the Bearer scheme in any case', async () => {
    for (const scheme of ['bearer', 'BEARER', 'BeArEr']) {
      expect((await t.app.inject({ url: '/accounts', headers: { authorization: `${scheme} ${keys.accountant.key}` } })).statusCode).toBe(200);
    }
  });

  it('answers 403 problem+json naming the role needed', async () => {
    const res = await t.app.inject({ url: '/audit/events', headers: bearer(keys.accountant.key) });
    expect(res.statusCode).toBe(403);
    expect(res.headers['content-type']).toContain('application/problem+json');
    expect(res.json()).toMatchObject({ status: 403, title: 'This route needs the role auditor', requiredRole: 'auditor', allowedRoles: ['auditor', 'admin'] });
  });

  it('GET /me tells who the key is and what it may do', async () => {
    const me = await t.app.inject({ url: '/me', headers: bearer(keys.auditor.key) });
    expect(me.json()).toMatchObject({ keyId: keys.auditor.id, name: 'auditor-key', role: 'auditor', roles: ['accountant', 'auditor'], open: false });
    expect(me.json().operations).toEqual(expect.arrayContaining(['listAccounts', 'getStatement', 'listAuditEvents', 'verifyReadModels']));
    expect(me.json().operations).not.toContain('listGrants');
    const operator = (await t.app.inject({ url: '/me', headers: bearer(keys.operator.key) })).json();
    expect(operator.operations).toEqual(expect.arrayContaining(['listGrants', 'backfillGrant', 'listProjections', 'startLink']));
    expect(operator.operations).not.toContain('listAccounts');
    const token = (await t.app.inject({ url: '/me', headers: bearer(API_TOKEN) })).json();
    expect(token).toMatchObject({ keyId: null, name: 'API_TOKEN', role: 'admin', roles: ['accountant', 'auditor', 'operator', 'metrics', 'admin'] });
    const scraper = (await t.app.inject({ url: '/me', headers: bearer(keys.metrics.key) })).json();
    expect(scraper).toMatchObject({ role: 'metrics', roles: ['metrics'] });
    expect(scraper.operations.sort()).toEqual(['getMe', 'getMetrics', 'getStatus']);
    expect((await t.app.inject({ url: '/me' })).statusCode).toBe(401);
  });

  it('several keys of a role work at once, so a key is rotated without a gap', async () => {
    const next = await makeKey(t, 'accountant', 'accountant-key-2');
    expect(await status('GET', '/accounts', next.key)).toBe(200);
    expect(await status('GET', '/accounts', keys.accountant.key)).toBe(200);
    await t.stores.apiKeys.revoke(keys.accountant.id, new Date());
    await eventually(async () => expect(await status('GET', '/accounts', keys.accountant.key)).toBe(401));
    expect(await status('GET', '/accounts', next.key)).toBe(200);
    expect(await status('GET', '/audit/events', keys.auditor.key)).toBe(200);
  });

  it('records when a key was last used, at most once a minute rather than on every request', async () => {
    const used = async () =>
      (await sql<{ last_used_at: Date | null }>`select last_used_at from api_keys where id = ${keys.operator.id}`.execute(t.stores.database.db)).rows[0]!
        .last_used_at;
    await status('GET', '/grants', keys.operator.key);
    const first = await eventually(async () => {
      const at = await used();
      expect(at).not.toBeNull();
      return at!.getTime();
    });
    for (let i = 0; i < 5; i++) await status('GET', '/grants', keys.operator.key);
    expect((await used())!.getTime()).toBe(first);
  });

  it('logs the key id on the request line, never the key', async () => {
    await t.app.inject({ url: '/accounts', headers: bearer(keys.admin.key) });
    const completed = lines.map((l) => JSON.parse(l)).filter((l) => l.msg === 'request completed' && l.keyId === keys.admin.id);
    expect(completed.length).toBeGreaterThan(0);
    expect(completed[0]).toMatchObject({ keyName: 'admin-key' });
    const all = lines.join('\n');
    for (const { key } of Object.values(keys)) expect(all).not.toContain(key.slice(3));
    expect(all).not.toContain(API_TOKEN);
  });

  it('leaves the webhook (its own token), health, readiness, the document and the Cas Link redirect open', async () => {
    const webhook = await t.app.inject({
      method: 'POST',
      url: '/webhooks/bankhub',
      headers: { 'content-type': 'application/json', 'x-webhook-token': TEST_TOKEN },
      payload: sample('console-ping.json'),
    });
    expect(webhook.statusCode).toBe(200);
    for (const url of ['/health', '/ready', '/openapi.json', '/docs']) expect((await t.app.inject({ url })).statusCode, url).toBe(200);
    expect((await t.app.inject({ url: '/links/callback?publicToken=x' })).statusCode).toBe(503);
  });

  it('refuses a route that declares no access to everyone, whatever the key', async () => {
    const other = await createTestApp({ API_TOKEN });
    try {
      other.app.get('/undeclared', async () => ({ secret: 'books' }));
      for (const headers of [{}, bearer(API_TOKEN)]) {
        const res = await other.app.inject({ url: '/undeclared', headers });
        expect(res.statusCode).toBe(403);
        expect(res.body).not.toContain('books');
      }
    } finally {
      await other.close();
    }
  });
});

describe('with neither API_TOKEN nor any key (the loopback newcomer)', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(async () => {
    await t?.close();
  });

  it('is open, says so on GET /me, and closes within a second of the first key being made', async () => {
    expect((await t.app.inject({ url: '/accounts' })).statusCode).toBe(200);
    expect((await t.app.inject({ url: '/me' })).json()).toMatchObject({ keyId: null, name: 'anonymous', role: 'admin', open: true });
    const { key } = await makeKey(t, 'accountant');
    const made = Date.now();
    await eventually(async () => expect((await t.app.inject({ url: '/accounts' })).statusCode).toBe(401), { timeoutMs: 1000 });
    expect(Date.now() - made).toBeLessThan(1000);
    expect((await t.app.inject({ url: '/accounts', headers: bearer(key) })).statusCode).toBe(200);
    // Revoking every key does not open it again.
    await t.stores.apiKeys.revoke('accountant-key', new Date());
    await eventually(async () => expect((await t.app.inject({ url: '/accounts', headers: bearer(key) })).statusCode).toBe(401));
    expect((await t.app.inject({ url: '/accounts' })).statusCode).toBe(401);
  });
});

describe('a revoke', () => {
  let a: TestApp;
  let b: TestApp;
  afterAll(async () => {
    await b?.close();
    await a?.close();
  });

  it('takes effect within a second on every instance serving the database, and only for that key', async () => {
    a = await createTestApp();
    b = await createTestApp({ DATABASE_URL: a.database.url });
    const revoked = await makeKey(a, 'accountant', 'leaving');
    const kept = await makeKey(a, 'accountant', 'staying');
    const get = (t: TestApp, key: string) => t.app.inject({ url: '/accounts', headers: bearer(key) }).then((r) => r.statusCode);
    // Both instances have read (and cached) the key.
    for (const t of [a, b]) await eventually(async () => expect(await get(t, revoked.key)).toBe(200));
    await a.stores.apiKeys.revoke('leaving', new Date());
    const at = Date.now();
    await Promise.all(
      [a, b].map((t) => eventually(async () => expect(await get(t, revoked.key)).toBe(401), { timeoutMs: 1000, intervalMs: 10 })),
    );
    expect(Date.now() - at).toBeLessThan(1000);
    for (const t of [a, b]) expect(await get(t, kept.key)).toBe(200);
  });
});

describe('rate limits', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp({ API_TOKEN, RATE_LIMIT_STATEMENTS: '2', RATE_LIMIT_CALLBACK: '1' });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('count per key on the statements, answering 429 problem+json with Retry-After', async () => {
    const one = await makeKey(t, 'accountant', 'one');
    const two = await makeKey(t, 'accountant', 'two');
    const statement = (key: string) =>
      t.app.inject({ url: '/accounts/none/statement?from=2026-01-01&to=2026-01-31&format=csv', headers: bearer(key) });
    expect((await statement(one.key)).statusCode).toBe(404);
    expect((await statement(one.key)).statusCode).toBe(404);
    const refused = await statement(one.key);
    expect(refused.statusCode).toBe(429);
    expect(refused.headers['content-type']).toContain('application/problem+json');
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
    expect(refused.json()).toMatchObject({ status: 429, title: 'Too many requests' });
    // Another key has a budget of its own, and other routes are not limited.
    expect((await statement(two.key)).statusCode).toBe(404);
    for (let i = 0; i < 5; i++) expect((await t.app.inject({ url: '/accounts', headers: bearer(one.key) })).statusCode).toBe(200);
  });

  it('count per source address on the open Cas Link redirect', async () => {
    const callback = (remoteAddress: string) => t.app.inject({ url: '/links/callback?publicToken=x', remoteAddress });
    expect((await callback('192.0.2.10')).statusCode).toBe(503);
    expect((await callback('192.0.2.10')).statusCode).toBe(429);
    expect((await callback('192.0.2.11')).statusCode).toBe(503);
  });

  it('never apply to the webhook', async () => {
    const answers = await Promise.all(
      Array.from({ length: 20 }, () =>
        t.app.inject({ method: 'POST', url: '/webhooks/bankhub', headers: { 'content-type': 'application/json', 'x-webhook-token': TEST_TOKEN }, payload: '{}' }),
      ),
    );
    expect(answers.map((a) => a.statusCode)).toEqual(Array(20).fill(200));
  });
});

describe('the OpenAPI document', () => {
  let doc: { paths: Record<string, Record<string, { operationId?: string; security?: unknown[]; description?: string; responses: Record<string, unknown> }>>; servers?: unknown[]; components: { securitySchemes: Record<string, unknown> } };
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp({ API_TOKEN });
    doc = (await t.app.inject({ url: '/openapi.json' })).json();
  });
  afterAll(async () => {
    await t?.close();
  });

  it('gives every operation a unique operationId and a security requirement, with the role in its description', () => {
    const operations = Object.entries(doc.paths).flatMap(([path, methods]) => Object.entries(methods).map(([method, op]) => ({ path, method, ...op })));
    expect(operations.length).toBeGreaterThan(15);
    const ids = operations.map((o) => o.operationId);
    expect(ids.every((id) => typeof id === 'string' && id.length > 0)).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
    const open = operations.filter((o) => Array.isArray(o.security) && o.security.length === 0).map((o) => `${o.method} ${o.path}`);
    expect(open.sort()).toEqual(['get /health', 'get /links/callback', 'get /ready']);
    for (const o of operations) {
      expect(o.security, `${o.method} ${o.path}`).toBeDefined();
      expect(o.description, `${o.method} ${o.path}`).toMatch(/\*\*Access\*\*: (open|the webhook token|any valid API key|role `\w+`)/);
    }
    expect(doc.paths['/audit/events']!.get!.description).toContain('role `auditor` (keys of role `auditor`, `admin`)');
    expect(doc.paths['/audit/events']!.get!.responses).toHaveProperty('403');
    expect(doc.paths['/accounts/{id}/statement']!.get!.responses).toHaveProperty('429');
    expect(doc.paths['/webhooks/bankhub']!.post!.responses).toHaveProperty('415');
    expect(doc.servers).toHaveLength(1);
    expect(doc.components.securitySchemes).toHaveProperty('bearer', expect.objectContaining({ type: 'http', scheme: 'bearer' }));
  });
});

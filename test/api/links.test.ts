import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/infrastructure/logger';
import { startCasSimulator, type CasSimulator } from '../../tools/cas-sim/server';
import { createTestApp, TEST_TOKEN, type TestApp } from '../support/app';
import { eventually } from '../support/postgres';

const REDIRECT_URI = 'https://ledger.example/links/callback';

describe('linking through Cas (simulator)', () => {
  let sim: CasSimulator;
  let t: TestApp;
  const logLines: string[] = [];
  const responses: string[] = [];

  const call = async (options: { method: 'GET' | 'POST'; url: string; payload?: Record<string, unknown> }) => {
    const res = await t.app.inject(options);
    responses.push(res.body);
    return res;
  };
  /** What Cas Link does in the browser: follow the link URL; Cas redirects to the redirect URI with a public token. */
  const openLink = async (linkUrl: string): Promise<string> => {
    const res = await fetch(linkUrl, { redirect: 'manual' });
    const location = res.headers.get('location') ?? '';
    expect(location.startsWith(`${REDIRECT_URI}?publicToken=`)).toBe(true);
    return new URL(location).searchParams.get('publicToken') ?? '';
  };
  const publicToken = async () => openLink((await call({ method: 'POST', url: '/links', payload: {} })).json().linkUrl);
  const casCalls = (path: string) => sim.requestLog.filter((r) => r.path === path).length;

  beforeAll(async () => {
    sim = await startCasSimulator({
      clientId: 'sim-client',
      secretKey: 'sim-secret-key-123',
      seed: 'links-api',
      accounts: 4,
      transactionsPerAccount: 12,
      redirectUris: [REDIRECT_URI],
      rateLimitWindowMs: 150,
    });
    const sink = new Writable({ write: (chunk, _enc, done) => (logLines.push(String(chunk)), done()) });
    t = await createTestApp(
      {
        BANKHUB_BASE_URL: sim.url,
        BANKHUB_LINK_URL: `${sim.url}/link`,
        BANKHUB_CLIENT_ID: 'sim-client',
        BANKHUB_SECRET_KEY: 'sim-secret-key-123',
        BANKHUB_REDIRECT_URI: REDIRECT_URI,
        // A little above the simulator's window, as one would configure it above Cas's minute.
        BANKHUB_RATE_LIMIT_MS: '200',
        SECRETS_KEY: randomBytes(32).toString('hex'),
      },
      { logger: createLogger('debug', sink) },
    );
  });
  afterAll(async () => {
    await t?.close();
    await sim?.close();
  });

  it('links a bank in three Cas calls and keeps the access token only encrypted', async () => {
    const started = await call({ method: 'POST', url: '/links', payload: { language: 'vi' } });
    expect(started.statusCode).toBe(200);
    const { grantToken, expiresAt, linkUrl } = started.json();
    expect(linkUrl).toBe(`${sim.url}/link?grantToken=${grantToken}&redirectUri=${encodeURIComponent(REDIRECT_URI)}`);
    expect(Date.parse(expiresAt)).toBeGreaterThan(Date.now());

    const exchanged = await call({ method: 'POST', url: '/links/exchange', payload: { publicToken: await openLink(linkUrl) } });
    expect(exchanged.statusCode).toBe(200);
    const { grantId, accounts, fiId } = exchanged.json();
    const grant = sim.grants.get(grantId);
    expect(grant).toBeDefined();
    const owned = sim.bank.accounts.filter((a) => a.fiId === grant!.fiId);
    expect(fiId).toBe(grant!.fiId);
    expect(accounts).toEqual(
      owned.map((a) => ({ accountNumber: a.accountNumber, accountName: a.accountName, currency: 'VND', fiId: a.fiId })),
    );

    // Stored sealed, readable with the key, absent from the log.
    const { rows } = await sql<{ ciphertext: Buffer }>`select ciphertext from grant_secrets where grant_id = ${grantId}`.execute(
      t.stores.database.db,
    );
    expect(rows).toHaveLength(1);
    expect(Buffer.from(rows[0]!.ciphertext).toString('latin1')).not.toContain(grant!.accessToken);
    expect(await t.root.resolve('grantSecrets')!.accessTokenOf(grantId)).toBe(grant!.accessToken);
    const stream = await t.stores.eventStore.readStream(`grant-${grantId}`, { withAttachments: true });
    expect(stream.map((e) => e.type)).toEqual(['GrantLinked']);
    expect(JSON.stringify(stream.map((e) => [e.data, e.metadata, e.attachment ?? null]))).not.toContain(grant!.accessToken);

    await eventually(async () => {
      const grants = (await call({ method: 'GET', url: '/grants' })).json().grants;
      expect(grants).toContainEqual(
        expect.objectContaining({ grantId, status: 'active', accounts, lastError: null, linkedAt: expect.any(String) }),
      );
    });
  });

  it('follows the GRANT webhooks: login required, then working again, then revoked', async () => {
    const linked = await call({ method: 'GET', url: `/links/callback?publicToken=${await publicToken()}` });
    expect(linked.statusCode).toBe(200);
    const { grantId } = linked.json();
    const grantWebhook = (webhookCode: string, error: unknown = null) =>
      call({
        method: 'POST',
        url: `/webhooks/bankhub?token=${TEST_TOKEN}`,
        payload: { environment: 'dev', webhookType: 'GRANT', webhookCode, error, grantId },
      });
    const statusOf = async () =>
      (await call({ method: 'GET', url: '/grants' })).json().grants.find((g: { grantId: string }) => g.grantId === grantId);

    await grantWebhook('ERROR', { errorType: 'GRANT_ERROR', errorCode: 'GRANT_LOGIN_REQUIRED', errorMessage: 'Cần đăng nhập lại' });
    await eventually(async () =>
      expect(await statusOf()).toMatchObject({
        status: 'login_required',
        lastError: { errorCode: 'GRANT_LOGIN_REQUIRED', errorMessage: 'Cần đăng nhập lại' },
        lastWebhookCode: 'ERROR',
      }),
    );
    await grantWebhook('DEFAULT_UPDATE');
    await eventually(async () => expect(await statusOf()).toMatchObject({ status: 'active', lastError: null }));
    await grantWebhook('GRANT_PAUSED');
    await eventually(async () => expect(await statusOf()).toMatchObject({ status: 'paused' }));
    await grantWebhook('USER_PERMISSION_REVOKED');
    await eventually(async () => expect(await statusOf()).toMatchObject({ status: 'revoked' }));
  });

  it('surfaces a Cas refusal as problem+json with Cas errorCode and requestId, and never retries the exchange', async () => {
    const token = await publicToken();
    expect((await call({ method: 'POST', url: '/links/exchange', payload: { publicToken: token } })).statusCode).toBe(200);
    const before = casCalls('/grant/exchange');
    const reused = await call({ method: 'POST', url: '/links/exchange', payload: { publicToken: token } });
    expect(reused.statusCode).toBe(422);
    expect(reused.headers['content-type']).toContain('application/problem+json');
    expect(reused.json()).toMatchObject({
      type: 'urn:balance-ledger:problem:cas-error',
      status: 422,
      errorCode: 'INVALID_PARAM',
      casRequestId: expect.stringMatching(/^[0-9a-f-]{36}$/),
      requestId: expect.any(String),
    });
    expect(casCalls('/grant/exchange') - before).toBe(1);

    // A 5xx would be retried by other calls; the exchange is tried once, because its token is single-use.
    const fresh = await publicToken();
    sim.setFailure({ endpoint: '/grant/exchange', status: 503, times: 1 });
    const failed = await call({ method: 'POST', url: '/links/exchange', payload: { publicToken: fresh } });
    sim.setFailure(null);
    expect(failed.statusCode).toBe(502);
    expect(failed.json()).toMatchObject({ errorCode: 'INTERNAL_SERVER_ERROR', casRequestId: expect.any(String) });
    expect(casCalls('/grant/exchange') - before).toBe(2);
  });

  it('answers a failed /grant/token with its Cas code', async () => {
    sim.setFailure({ endpoint: '/grant/token', status: 404, errorCode: 'FI_NOT_FOUND', times: 1 });
    const res = await call({ method: 'POST', url: '/links', payload: {} });
    sim.setFailure(null);
    expect(res.statusCode).toBe(422);
    expect(res.json()).toMatchObject({ errorCode: 'FI_NOT_FOUND', casRequestId: expect.any(String) });
  });

  it('keeps a grant whose /identity failed after the exchange, and says which grant it is', async () => {
    const token = await publicToken();
    sim.setFailure({ endpoint: '/identity', status: 400, errorCode: 'GRANT_LOGIN_REQUIRED', times: 1 });
    const res = await call({ method: 'POST', url: '/links/exchange', payload: { publicToken: token } });
    sim.setFailure(null);
    expect(res.statusCode).toBe(422);
    const { grantId, errorCode } = res.json();
    expect(errorCode).toBe('GRANT_LOGIN_REQUIRED');
    expect(sim.grants.has(grantId)).toBe(true);
    expect(await t.root.resolve('grantSecrets')!.accessTokenOf(grantId)).toBe(sim.grants.get(grantId)!.accessToken);
    await eventually(async () => {
      const grants = (await call({ method: 'GET', url: '/grants' })).json().grants;
      expect(grants).toContainEqual(expect.objectContaining({ grantId, accounts: [] }));
    });
  });

  it('backfills a grant: new transactions accepted, the same window again all duplicates', async () => {
    const { grantId } = (await call({ method: 'GET', url: `/links/callback?publicToken=${await publicToken()}` })).json();
    const grant = sim.grants.get(grantId)!;
    const history = sim.bank.accounts.filter((a) => grant.accountKeys.includes(`${a.fiId}:${a.accountNumber}`)).flatMap((a) => a.transactions);
    const window = { from: history[0]!.transactionDate, to: history.at(-1)!.transactionDate };

    // Two at once: the second waits for the grant's turn instead of failing on Cas's rate limit.
    const [first, second] = await Promise.all([
      call({ method: 'POST', url: `/grants/${grantId}/backfill`, payload: window }),
      call({ method: 'POST', url: `/grants/${grantId}/backfill`, payload: window }),
    ]);
    expect(first.statusCode).toBe(200);
    expect(second.statusCode).toBe(200);
    const reports = [first.json(), second.json()];
    expect(reports.map((r) => r.fetched)).toEqual([history.length, history.length]);
    expect(reports.map((r) => r.accepted).sort()).toEqual([0, history.length]);
    expect(reports.map((r) => r.duplicates).sort()).toEqual([0, history.length]);
    expect(reports.every((r) => r.conflicts === 0 && r.invalid === 0)).toBe(true);
    expect(sim.requestLog.filter((r) => r.errorCode === 'RATE_LIMIT')).toEqual([]);

    const [tx] = history;
    const [booked] = await t.stores.eventStore.readStream(`bankTx-${tx!.id}`);
    expect(booked).toMatchObject({ type: 'BalanceChanged', data: { source: 'backfill', grantId } });
    expect(booked!.metadata).toMatchObject({ source: 'backfill', casRequestId: expect.any(String), responseSha256: expect.stringMatching(/^[0-9a-f]{64}$/) });

    const one = await call({
      method: 'POST',
      url: `/grants/${grantId}/backfill`,
      payload: { ...window, accountNumber: history[0]!.accountNumber.toString() },
    });
    expect(one.json()).toMatchObject({ accepted: 0, conflicts: 0 });
  });

  it('refuses a backfill of an unknown grant or of a window that ends before it starts', async () => {
    const unknown = await call({ method: 'POST', url: '/grants/nope/backfill', payload: { from: '2024-01-01', to: '2024-01-02' } });
    expect(unknown.statusCode).toBe(404);
    const { grantId } = (await call({ method: 'GET', url: `/links/callback?publicToken=${await publicToken()}` })).json();
    const backwards = await call({ method: 'POST', url: `/grants/${grantId}/backfill`, payload: { from: '2024-02-01', to: '2024-01-01' } });
    expect(backwards.statusCode).toBe(400);
    const notADate = await call({ method: 'POST', url: `/grants/${grantId}/backfill`, payload: { from: '2024-02-30', to: '2024-03-01' } });
    expect(notADate.statusCode).toBe(400);
  });

  it('puts no access token into any answer or any log line', () => {
    const tokens = [...sim.grants.values()].map((g) => g.accessToken);
    expect(tokens.length).toBeGreaterThan(3);
    expect(logLines.length).toBeGreaterThan(10);
    const everything = `${responses.join('\n')}\n${logLines.join('\n')}`;
    for (const token of tokens) expect(everything).not.toContain(token);
    expect(everything).not.toContain('sim-secret-key-123');
    // The public token rides in the callback's query string: the request log shows the route, not the token.
    expect(logLines.some((l) => l.includes('/links/callback?publicToken=[redacted]'))).toBe(true);
  });
});

describe('linking without Cas BankHub configured', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(async () => {
    await t?.close();
  });

  it.each([
    ['POST', '/links', {}],
    ['POST', '/links/exchange', { publicToken: 'x' }],
    ['GET', '/links/callback?publicToken=x', undefined],
    ['POST', '/grants/g1/backfill', { from: '2024-01-01', to: '2024-01-02' }],
  ] as const)('%s %s answers 503 naming the missing variables', async (method, url, payload) => {
    const res = await t.app.inject({ method, url, ...(payload === undefined ? {} : { payload }) });
    expect(res.statusCode).toBe(503);
    expect(res.headers['content-type']).toContain('application/problem+json');
    expect(res.json()).toMatchObject({
      type: 'urn:balance-ledger:problem:bankhub-not-configured',
      missing: ['BANKHUB_CLIENT_ID', 'BANKHUB_SECRET_KEY'],
    });
    expect(res.json().detail).toContain('BANKHUB_CLIENT_ID');
  });

  it('still lists grants (none) and does not heal', async () => {
    expect((await t.app.inject({ method: 'GET', url: '/grants' })).json()).toEqual({ grants: [] });
    expect(t.healLoop).toBeNull();
  });
});

import { inspect } from 'node:util';
import { stringify } from 'lossless-json';
import { afterEach, describe, expect, it } from 'vitest';
import { BankHubError, type BankHubClient } from '../../src/application/ports/bankhub';
import { createBankHubClient, type BankHubClientOptions } from '../../src/infrastructure/bankhub/bankhub-client';
import { bankBalance, toCasJson } from '../../tools/cas-sim/bank';
import { startCasSimulator, type CasSimulator, type CasSimulatorOptions } from '../../tools/cas-sim/server';

const CLIENT_ID = 'ledger-test-client';
const SECRET_KEY = 'sk-test-9f8e7d6c5b4a39281706';
const REDIRECT_URI = 'https://ledger.example/links/callback';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const sims: CasSimulator[] = [];
afterEach(async () => {
  await Promise.all(sims.splice(0).map((sim) => sim.close()));
});

async function simulator(options: Partial<CasSimulatorOptions> = {}): Promise<CasSimulator> {
  const sim = await startCasSimulator({
    clientId: CLIENT_ID,
    secretKey: SECRET_KEY,
    seed: 'bankhub-client',
    accounts: 3,
    transactionsPerAccount: 12,
    rateLimitWindowMs: 0,
    ...options,
  });
  sims.push(sim);
  return sim;
}

function clientFor(sim: CasSimulator, options: Partial<BankHubClientOptions> = {}): BankHubClient {
  return createBankHubClient({
    baseUrl: sim.url,
    clientId: CLIENT_ID,
    secretKey: SECRET_KEY,
    apiVersion: '2023-01-01',
    scopes: 'transactions',
    timeoutMs: 2_000,
    maxRetries: 3,
    baseDelayMs: 5,
    maxDelayMs: 20,
    rateLimitDelayMs: 50,
    ...options,
  });
}

/** Grant token → Cas Link (the browser redirect) → exchange: the three steps a customer's link takes. */
async function link(sim: CasSimulator, client: BankHubClient, fiServiceId?: string) {
  const { grantToken } = await client.createGrantToken({
    redirectUri: REDIRECT_URI,
    ...(fiServiceId === undefined ? {} : { fiServiceId }),
  });
  const publicToken = await followLink(sim, grantToken);
  return client.exchangePublicToken(publicToken);
}

async function followLink(sim: CasSimulator, grantToken: string): Promise<string> {
  const response = await fetch(sim.linkUrl(grantToken, REDIRECT_URI), { redirect: 'manual' });
  expect(response.status).toBe(302);
  const location = new URL(response.headers.get('location') ?? '');
  expect(`${location.origin}${location.pathname}`).toBe(REDIRECT_URI);
  return location.searchParams.get('publicToken') ?? '';
}

async function failure(promise: Promise<unknown>): Promise<BankHubError> {
  const outcome = await promise.then(
    () => new Error('expected the call to fail'),
    (error: unknown) => error,
  );
  if (!(outcome instanceof BankHubError)) throw outcome;
  return outcome;
}

const calls = (sim: CasSimulator, path: string) => sim.requestLog.filter((r) => r.path === path);
const WIDE = { fromDate: '2023-06-01', toDate: '2026-05-31' } as const;

describe('BankHub client against the Cas simulator', () => {
  it('links a bank (grant token, Cas Link, exchange), then reads identity and transactions exactly', async () => {
    const sim = await simulator();
    const client = clientFor(sim);
    const before = Date.now();
    const grantToken = await client.createGrantToken({ redirectUri: REDIRECT_URI, language: 'vi' });
    expect(grantToken.expiresAt.getTime()).toBeGreaterThanOrEqual(before + 29 * 60_000);
    expect(grantToken.expiresAt.getTime()).toBeLessThanOrEqual(Date.now() + 30 * 60_000);

    const exchanged = await client.exchangePublicToken(await followLink(sim, grantToken.grantToken));
    const grant = sim.grants.get(exchanged.grantId);
    expect(grant?.accessToken).toBe(exchanged.accessToken);
    const accounts = sim.bank.accounts.filter((a) => a.fiId === grant?.fiId);

    const identity = await client.getIdentity(exchanged.accessToken);
    expect(identity.accounts).toEqual(
      accounts.map((a) => ({
        accountNumber: a.accountNumber,
        accountName: a.accountName,
        currency: 'VND',
        balance: bankBalance(a),
        fiId: a.fiId,
      })),
    );

    const page = await client.getTransactions(exchanged.accessToken, WIDE);
    const expected = accounts.flatMap((a) => a.transactions);
    expect(page.transactions).toHaveLength(expected.length);
    // Every digit survives: the raw objects re-serialise to exactly what the bank generated.
    expect(stringify(page.transactions)).toBe(toCasJson(expected));
    expect(page.rawBody).toContain(expected[0]?.id ?? 'missing');
    expect(page.requestId).toMatch(UUID);
  });

  it('sends accounts as JSON with string fromReference, and the raw access token without Bearer', async () => {
    const sim = await simulator();
    const seen: { url: string; headers: Headers }[] = [];
    const client = clientFor(sim, {
      fetch: async (input, init) => {
        seen.push({ url: String(input), headers: new Headers(init?.headers) });
        return fetch(input, init);
      },
    });
    const { accessToken, grantId } = await link(sim, client);
    const firstKey = sim.grants.get(grantId)?.accountKeys[0];
    const account = sim.bank.accounts.find((a) => `${a.fiId}:${a.accountNumber}` === firstKey);
    if (!account) throw new Error('linked account not found');
    const cursor = account.transactions[4];
    if (!cursor) throw new Error('history too short');

    const page = await client.getTransactions(accessToken, {
      ...WIDE,
      accounts: [{ accountNumber: account.accountNumber, fromReference: cursor.id }],
    });
    const ids = page.transactions.map((t) => (t as { id: string }).id);
    expect(ids).toEqual(account.transactions.slice(5).map((t) => t.id));

    const request = seen.at(-1);
    if (!request) throw new Error('no request seen');
    const url = new URL(request.url);
    expect(JSON.parse(url.searchParams.get('accounts') ?? '')).toEqual([
      { accountNumber: account.accountNumber, fromReference: cursor.id },
    ]);
    expect(request.headers.get('authorization')).toBe(accessToken);
    expect(request.headers.get('x-bankhub-api-version')).toBe('2023-01-01');
    expect(request.headers.get('x-client-id')).toBe(CLIENT_ID);
    expect(request.headers.get('x-secret-key')).toBe(SECRET_KEY);
  });

  describe('each documented error code surfaces as a BankHubError with its code and requestId, unretried', () => {
    it('GRANT_TOKEN_EXPIRED: a public token exchanged after it expired', async () => {
      let now = Date.parse('2024-03-01T02:00:00Z');
      const sim = await simulator({ now: () => now, publicTokenTtlMs: 10 * 60_000 });
      const client = clientFor(sim);
      const { grantToken } = await client.createGrantToken({ redirectUri: REDIRECT_URI });
      const publicToken = await followLink(sim, grantToken);
      now += 11 * 60_000;
      const error = await failure(client.exchangePublicToken(publicToken));
      expect(error).toMatchObject({ errorCode: 'GRANT_TOKEN_EXPIRED', retryable: false, httpStatus: 400 });
      expect(error.requestId).toMatch(UUID);
      expect(calls(sim, '/grant/exchange')).toHaveLength(1);
    });

    it('INVALID_PARAM: a public token used twice (Cas Link tokens are single-use)', async () => {
      const sim = await simulator();
      const client = clientFor(sim);
      const { grantToken } = await client.createGrantToken({ redirectUri: REDIRECT_URI });
      const publicToken = await followLink(sim, grantToken);
      await client.exchangePublicToken(publicToken);
      const error = await failure(client.exchangePublicToken(publicToken));
      expect(error).toMatchObject({ errorCode: 'INVALID_PARAM', retryable: false });
      expect(() => sim.mintPublicToken(grantToken)).toThrow(/grantToken/);
    });

    it('GRANT_NOT_FOUND: an unknown or revoked access token', async () => {
      const sim = await simulator();
      const client = clientFor(sim);
      const { accessToken, grantId } = await link(sim, client);
      sim.setGrantStatus(grantId, 'revoked');
      const error = await failure(client.getIdentity(accessToken));
      expect(error).toMatchObject({ errorCode: 'GRANT_NOT_FOUND', errorType: 'GRANT_ERROR', retryable: false });
      expect(error.requestId).toMatch(UUID);
      expect(calls(sim, '/identity')).toHaveLength(1);
    });

    it('GRANT_LOGIN_REQUIRED: the bank login changed', async () => {
      const sim = await simulator();
      const client = clientFor(sim);
      const { accessToken, grantId } = await link(sim, client);
      sim.setGrantStatus(grantId, 'login_required');
      const error = await failure(client.getTransactions(accessToken, WIDE));
      expect(error).toMatchObject({ errorCode: 'GRANT_LOGIN_REQUIRED', retryable: false });
      expect(error.requestId).toMatch(UUID);
      expect(calls(sim, '/transactions')).toHaveLength(1);
    });

    it('INVALID_PARAM: a date that does not exist, and an unknown fromReference', async () => {
      const sim = await simulator();
      const client = clientFor(sim);
      const { accessToken } = await link(sim, client);
      const badDate = await failure(
        client.getTransactions(accessToken, { fromDate: '2024-02-30', toDate: '2024-03-01' }),
      );
      expect(badDate).toMatchObject({ errorCode: 'INVALID_PARAM', httpStatus: 400, retryable: false });
      expect(badDate.requestId).toMatch(UUID);
      const identity = await client.getIdentity(accessToken);
      const accountNumber = identity.accounts[0]?.accountNumber ?? '';
      const badCursor = await failure(
        client.getTransactions(accessToken, { ...WIDE, accounts: [{ accountNumber, fromReference: 'no-such-ref' }] }),
      );
      expect(badCursor.errorCode).toBe('INVALID_PARAM');
      const beyondHistory = await failure(
        client.getTransactions(accessToken, { fromDate: '2021-01-01', toDate: '2024-03-01' }),
      );
      expect(beyondHistory.errorCode).toBe('INVALID_PARAM');
      expect(calls(sim, '/transactions')).toHaveLength(3);
    });

    it('RATE_LIMIT: a second call inside the window, retryable', async () => {
      const sim = await simulator({ rateLimitWindowMs: 60_000 });
      const client = clientFor(sim, { maxRetries: 0 });
      const { accessToken } = await link(sim, client);
      await client.getTransactions(accessToken, WIDE);
      const error = await failure(client.getTransactions(accessToken, WIDE));
      expect(error).toMatchObject({ errorCode: 'RATE_LIMIT', httpStatus: 429, retryable: true });
      expect(error.requestId).toMatch(UUID);
    });

    it('FI_NOT_FOUND: a grant token for a connector Cas does not know', async () => {
      const sim = await simulator();
      const client = clientFor(sim);
      const error = await failure(client.createGrantToken({ redirectUri: REDIRECT_URI, fiServiceId: 'no-such-bank' }));
      expect(error).toMatchObject({ errorCode: 'FI_NOT_FOUND', retryable: false });
      expect(error.requestId).toMatch(UUID);
      expect(calls(sim, '/grant/token')).toHaveLength(1);
    });

    it('wrong credentials or api version come back as Cas errors, not retried', async () => {
      const sim = await simulator();
      const input = { redirectUri: REDIRECT_URI };
      const wrongKey = await failure(clientFor(sim, { secretKey: 'sk-wrong-000000' }).createGrantToken(input));
      expect(wrongKey).toMatchObject({ errorCode: 'UNAUTHORIZED', httpStatus: 401, retryable: false });
      const wrongVersion = await failure(clientFor(sim, { apiVersion: '2022-01-01' }).createGrantToken(input));
      expect(wrongVersion).toMatchObject({ errorCode: 'INVALID_PARAM', retryable: false });
      expect(calls(sim, '/grant/token')).toHaveLength(2);
    });
  });

  describe('retries', () => {
    it('waits out RATE_LIMIT and succeeds once the window has passed', async () => {
      const windowMs = 300;
      const sim = await simulator({ rateLimitWindowMs: windowMs });
      const retries: number[] = [];
      const client = clientFor(sim, {
        maxRetries: 20,
        rateLimitDelayMs: 60,
        onRetry: ({ error, delayMs }) => {
          expect(error.errorCode).toBe('RATE_LIMIT');
          retries.push(delayMs);
        },
      });
      const { accessToken } = await link(sim, client);
      await client.getTransactions(accessToken, WIDE);
      const firstAt = Date.now();
      const page = await client.getTransactions(accessToken, WIDE);
      expect(Date.now() - firstAt).toBeGreaterThanOrEqual(windowMs - 50);
      expect(page.transactions.length).toBeGreaterThan(0);
      expect(retries.length).toBeGreaterThan(0);
      // A per-minute limit is waited out with the rate-limit delay, not hammered with millisecond backoff.
      expect(retries.every((ms) => ms >= 60 && ms <= 75)).toBe(true);
      expect(calls(sim, '/transactions').map((c) => c.status)).toEqual([200, ...retries.map(() => 429), 200]);
    });

    it('honours Retry-After when Cas sends one', async () => {
      let now = Date.parse('2024-03-01T02:00:00Z');
      const sim = await simulator({ now: () => now, rateLimitWindowMs: 60_000, retryAfterHeader: true });
      const slept: number[] = [];
      const client = clientFor(sim, {
        rateLimitDelayMs: 1,
        sleep: async (ms) => {
          slept.push(ms);
          now += ms; // the simulator's clock moves while the client waits, without real waiting
        },
      });
      const { accessToken } = await link(sim, client);
      await client.getTransactions(accessToken, WIDE);
      now += 15_000;
      await client.getTransactions(accessToken, WIDE);
      expect(slept).toEqual([45_000]);
    });

    it('retries 5xx (a Cas error body or an HTML gateway page) and then succeeds', async () => {
      const sim = await simulator();
      const client = clientFor(sim);
      const { accessToken } = await link(sim, client);
      sim.setFailure({ endpoint: '/identity', status: 503, times: 2 });
      await client.getIdentity(accessToken);
      sim.setFailure({ endpoint: '/identity', status: 502, rawBody: '<html>Bad Gateway</html>', times: 1 });
      await client.getIdentity(accessToken);
      expect(calls(sim, '/identity').map((c) => c.status)).toEqual([503, 503, 200, 502, 200]);
    });

    it('gives up on 5xx after maxRetries with a retryable error', async () => {
      const sim = await simulator();
      const client = clientFor(sim, { maxRetries: 2 });
      const { accessToken } = await link(sim, client);
      sim.setFailure({ endpoint: '/identity', status: 500 });
      const error = await failure(client.getIdentity(accessToken));
      expect(error).toMatchObject({ httpStatus: 500, retryable: true, errorCode: 'INTERNAL_SERVER_ERROR' });
      expect(calls(sim, '/identity')).toHaveLength(3);
    });

    it('does not retry other 4xx', async () => {
      const sim = await simulator();
      const client = clientFor(sim);
      const { accessToken } = await link(sim, client);
      sim.setFailure({ endpoint: '/identity', status: 409, errorCode: 'CONFLICT', times: 1 });
      const error = await failure(client.getIdentity(accessToken));
      expect(error).toMatchObject({ errorCode: 'CONFLICT', httpStatus: 409, retryable: false });
      expect(calls(sim, '/identity')).toHaveLength(1);
    });

    it('times out a slow answer and retries it', async () => {
      const sim = await simulator();
      const codes: string[] = [];
      const client = clientFor(sim, { timeoutMs: 300, onRetry: ({ error }) => codes.push(error.errorCode) });
      const { accessToken } = await link(sim, client);
      sim.setFailure({ endpoint: '/identity', delayMs: 900, times: 1 });
      const identity = await client.getIdentity(accessToken);
      expect(identity.accounts.length).toBeGreaterThan(0);
      expect(codes).toEqual(['TIMEOUT']);

      sim.setFailure({ endpoint: '/identity', delayMs: 900, times: 1 });
      const error = await failure(clientFor(sim, { timeoutMs: 300, maxRetries: 0 }).getIdentity(accessToken));
      expect(error).toMatchObject({ errorCode: 'TIMEOUT', httpStatus: null, requestId: null, retryable: true });
    });

    it('retries network errors and reports NETWORK_ERROR', async () => {
      const sim = await simulator();
      const url = sim.url;
      await sim.close();
      const codes: string[] = [];
      const client = createBankHubClient({
        baseUrl: url,
        clientId: CLIENT_ID,
        secretKey: SECRET_KEY,
        apiVersion: '2023-01-01',
        scopes: 'transactions',
        maxRetries: 2,
        baseDelayMs: 5,
        onRetry: ({ error }) => codes.push(error.errorCode),
      });
      const error = await failure(client.createGrantToken({ redirectUri: REDIRECT_URI }));
      expect(error).toMatchObject({ errorCode: 'NETWORK_ERROR', httpStatus: null, retryable: true });
      expect(codes).toEqual(['NETWORK_ERROR', 'NETWORK_ERROR']);
    });
  });

  describe('lenient shapes', () => {
    const shapes = [
      { expirationField: 'expiredAt', expirationFormat: 'iso', dataEnvelope: false },
      { expirationField: 'expiration', expirationFormat: 'epoch-seconds', dataEnvelope: true },
      { expirationField: 'expiredAt', expirationFormat: 'epoch-ms', dataEnvelope: true, transactionsOrder: 'desc' },
    ] as const;

    it.each(shapes)('reads %o', async (shape) => {
      const now = Date.parse('2024-03-01T02:00:00.000Z');
      const sim = await simulator({
        now: () => now,
        shapes: shape,
        // Every account number without a leading 0 goes out as a JSON number.
        bankOptions: { numericAccountNumberRate: 1, leadingZeroRate: 0.5 },
        accounts: 6,
      });
      const client = clientFor(sim);
      const grantToken = await client.createGrantToken({ redirectUri: REDIRECT_URI });
      expect(grantToken.expiresAt.getTime()).toBe(now + 30 * 60_000);
      const { accessToken, grantId } = await client.exchangePublicToken(await followLink(sim, grantToken.grantToken));
      const accounts = sim.bank.accounts.filter((a) => a.fiId === sim.grants.get(grantId)?.fiId);
      expect(accounts.some((a) => a.numericOnWire)).toBe(true);
      const identity = await client.getIdentity(accessToken);
      expect(identity.accounts.map((a) => a.accountNumber)).toEqual(accounts.map((a) => a.accountNumber));
      expect(identity.accounts.map((a) => a.balance)).toEqual(accounts.map(bankBalance));
      const page = await client.getTransactions(accessToken, WIDE);
      expect(page.transactions).toHaveLength(accounts.reduce((n, a) => n + a.transactions.length, 0));
    });

    it('keeps balances beyond 2^53 exact', async () => {
      const huge = 2n ** 60n + 7n;
      const sim = await simulator({ bankOptions: { openingBalance: { min: huge, max: huge } } });
      const client = clientFor(sim);
      const { accessToken, grantId } = await link(sim, client);
      const accounts = sim.bank.accounts.filter((a) => a.fiId === sim.grants.get(grantId)?.fiId);
      const identity = await client.getIdentity(accessToken);
      expect(identity.accounts.map((a) => a.balance)).toEqual(accounts.map(bankBalance));
      expect(identity.accounts[0]?.balance).toBeGreaterThan(BigInt(Number.MAX_SAFE_INTEGER));
    });
  });

  it('never puts the secret key or the access token into an error', async () => {
    const sim = await simulator();
    const client = clientFor(sim, { maxRetries: 0 });
    const { accessToken } = await link(sim, client);
    const errors: BankHubError[] = [];
    // Cas echoing credentials back in its message is the worst case.
    const echo = `bad ${SECRET_KEY} / ${accessToken}`;
    sim.setFailure({ status: 400, errorCode: 'INVALID_PARAM', errorMessage: echo, times: 1 });
    errors.push(await failure(client.getIdentity(accessToken)));
    sim.setFailure({ endpoint: '/transactions', delayMs: 900, times: 1 });
    const impatient = clientFor(sim, { maxRetries: 0, timeoutMs: 300 });
    errors.push(await failure(impatient.getTransactions(accessToken, WIDE)));
    sim.setFailure(null);
    errors.push(await failure(client.getIdentity(`${accessToken}-stale`)));
    const oldKey = clientFor(sim, { secretKey: `${SECRET_KEY}-old`, maxRetries: 0 });
    errors.push(await failure(oldKey.getIdentity(accessToken)));
    const url = sim.url;
    await sim.close();
    errors.push(await failure(clientFor({ ...sim, url }, { maxRetries: 0 }).getIdentity(accessToken)));

    expect(errors.map((e) => e.errorCode)).toEqual([
      'INVALID_PARAM',
      'TIMEOUT',
      'GRANT_NOT_FOUND',
      'UNAUTHORIZED',
      'NETWORK_ERROR',
    ]);
    for (const error of errors) {
      const text = [error.message, error.errorMessage, inspect(error, { depth: 10 }), JSON.stringify(error)].join('\n');
      expect(text).not.toContain(SECRET_KEY);
      expect(text).not.toContain(accessToken);
    }
    expect(errors[0]?.errorMessage).toContain('[redacted]');
  });
});

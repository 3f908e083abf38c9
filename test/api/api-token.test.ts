import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, sample, TEST_TOKEN, type TestApp } from '../support/app';

const API_TOKEN = 'api-token-for-tests-0123456789abcdef';

describe('API_TOKEN', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp({ API_TOKEN });
  });
  afterAll(async () => {
    await t?.close();
  });

  it.each(['/accounts', '/breaks', '/anomalies', '/audit/events', '/grants', '/projections', '/me', '/parked', '/quarantine'])('guards GET %s', async (url) => {
    const none = await t.app.inject({ url });
    expect(none.statusCode).toBe(401);
    expect(none.headers['www-authenticate']).toBe('Bearer');
    expect((await t.app.inject({ url, headers: { authorization: `Bearer ${API_TOKEN}x` } })).statusCode).toBe(401);
    expect((await t.app.inject({ url, headers: { authorization: `Bearer ${API_TOKEN}` } })).statusCode).toBe(200);
  });

  it('guards the actions too', async () => {
    expect((await t.app.inject({ method: 'POST', url: '/audit/verify' })).statusCode).toBe(401);
    expect((await t.app.inject({ method: 'POST', url: '/links', payload: {} })).statusCode).toBe(401);
    expect((await t.app.inject({ method: 'POST', url: '/quarantine/1/reingest' })).statusCode).toBe(401);
    expect((await t.app.inject({ url: '/quarantine/1/raw' })).statusCode).toBe(401);
    expect((await t.app.inject({ method: 'POST', url: `/parked/ledger/${'0'.repeat(8)}-0000-0000-0000-${'0'.repeat(12)}/retry` })).statusCode).toBe(401);
  });

  it('leaves the webhook (its own token), health, documentation and the Cas Link redirect open', async () => {
    const webhook = await t.app.inject({
      method: 'POST',
      url: `/webhooks/bankhub?token=${TEST_TOKEN}`,
      headers: { 'content-type': 'application/json' },
      payload: sample('transaction-webhook.json'),
    });
    expect(webhook.json().status).toBe('accepted');
    for (const url of ['/health', '/ready', '/openapi.json', '/docs']) expect((await t.app.inject({ url })).statusCode).toBe(200);
    expect((await t.app.inject({ url: '/links/callback?publicToken=x' })).statusCode).not.toBe(401);
  });
});

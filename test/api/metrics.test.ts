import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compose } from '../../src/composition-root';
import { loadConfig } from '../../src/config';
import { createTestApp, sample, TEST_TOKEN, type TestApp } from '../support/app';
import { metricValue } from '../support/ops';
import { eventually } from '../support/postgres';
import { freePort } from '../support/service';

const URL_WITH_TOKEN = `/webhooks/bankhub?token=${TEST_TOKEN}`;
const json = { 'content-type': 'application/json' };

describe('GET /metrics', () => {
  let t: TestApp;
  const scrape = async () => {
    const res = await t.app.inject({ url: '/metrics' });
    expect(res.statusCode).toBe(200);
    return res.body;
  };

  beforeAll(async () => {
    t = await createTestApp({ WEBHOOK_BODY_LIMIT: '1024' });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('counts every webhook answer by what it told Cas, refusals included', async () => {
    const post = (payload: string | Buffer, url = URL_WITH_TOKEN, headers: Record<string, string> = json) =>
      t.app.inject({ method: 'POST', url, headers, payload });
    const transaction = sample('transaction-webhook.json');
    expect((await post(transaction)).json().status).toBe('accepted');
    expect((await post(transaction)).json().status).toBe('duplicate');
    expect((await post(transaction.toString('utf8').replace('"amount": 10000', '"amount": 20000'))).json().status).toBe('conflict');
    expect((await post(sample('grant-error-webhook.json'))).json().status).toBe('recorded');
    expect((await post('{}')).json().status).toBe('ping');
    expect((await post('{"webhookType": 1}')).statusCode).toBe(400);
    expect((await post('{}', URL_WITH_TOKEN, { 'content-type': 'text/plain' })).statusCode).toBe(415);
    expect((await post(`{"pad":"${'x'.repeat(2048)}"}`)).statusCode).toBe(413);
    expect((await post('{}', '/webhooks/bankhub?token=wrong-token-0123456789')).statusCode).toBe(401);

    const text = await scrape();
    const counts = Object.fromEntries(
      ['accepted', 'duplicate', 'conflict', 'recorded', 'ping', 'invalid', 'unauthorized', 'unavailable'].map((o) => [
        o,
        metricValue(text, `ledger_webhooks_total{outcome="${o}"}`),
      ]),
    );
    expect(counts).toEqual({ accepted: 1, duplicate: 1, conflict: 1, recorded: 1, ping: 1, invalid: 3, unauthorized: 1, unavailable: 0 });
    expect(metricValue(text, 'ledger_webhook_duration_seconds_count')).toBe(9);
    // The quarantine took the invalid bodies (the one too large never reached it).
    expect(metricValue(text, 'ledger_quarantine_total')).toBe(2);
    expect(metricValue(text, 'ledger_quarantine_pending')).toBe(2);
  });

  it('reads the counts of the read models at each scrape', async () => {
    await eventually(async () => {
      const text = await scrape();
      expect(metricValue(text, 'ledger_read_models_up')).toBe(1);
      expect(metricValue(text, 'ledger_projection_lag_events{projection="ledger"}')).toBe(0);
      expect(metricValue(text, 'ledger_projection_lag_events{projection="grants"}')).toBe(0);
      expect(metricValue(text, 'ledger_breaks_open')).toBe(0);
      expect(metricValue(text, 'ledger_events_parked{projection="grants"}')).toBe(0);
    });
  });

  it('says "no data" rather than zero for the read models while PostgreSQL cannot be reached, and still answers', async () => {
    // A real connection attempt to a port nothing listens on: refused, as when the server is down. The graph of a
    // process, as the root builds it (with Node's process metrics), opened nothing before the scrape.
    const root = await compose(loadConfig({ DATABASE_URL: `postgres://postgres@127.0.0.1:${await freePort()}/none` }), { logger: pino({ level: 'silent' }) });
    try {
      const metrics = root.resolve('metrics');
      metrics.webhookAnswered(200, '{"status":"accepted"}', 0.01);
      const text = await metrics.scrape();
      expect(metricValue(text, 'ledger_read_models_up')).toBe(0);
      for (const series of ['ledger_breaks_open', 'ledger_projection_lag_events{projection="ledger"}', 'ledger_events_parked{projection="ledger"}', 'ledger_alerts_pending']) {
        expect(metricValue(text, series), series).toBeNaN();
      }
      expect(metricValue(text, 'ledger_webhooks_total{outcome="accepted"}')).toBe(1);
      expect(metricValue(text, 'nodejs_heap_size_used_bytes')).toBeGreaterThan(0);
    } finally {
      await root.close();
    }
  });

  it('reports a projection thread only where the process projects on one: not with RUN_PROJECTIONS=false', async () => {
    const DATABASE_URL = `postgres://postgres@127.0.0.1:${await freePort()}/none`;
    const projectionThread = new URL('../fixtures/dying-projection-thread.ts', import.meta.url); // never started here
    for (const [RUN_PROJECTIONS, threaded] of [['true', true], ['false', false]] as const) {
      const root = await compose(loadConfig({ DATABASE_URL, RUN_PROJECTIONS }), { logger: pino({ level: 'silent' }), processMetrics: false }, { projectionThread });
      try {
        expect(root.resolve('projectionThread') !== null, RUN_PROJECTIONS).toBe(threaded);
        // Not started: a process that should project on it says the thread is not answering; the other says nothing.
        const up = metricValue(await root.resolve('metrics').scrape(), 'ledger_thread_up{thread="projections"}');
        expect(up, RUN_PROJECTIONS).toBe(threaded ? 0 : undefined);
      } finally {
        await root.close();
      }
    }
  });
});

describe('GET /alerts', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(async () => {
    await t?.close();
  });

  it('says whether alerting is on, lists by status, and refuses a cursor it did not write', async () => {
    const now = new Date();
    await t.alerting.outbox.raise(
      ['a', 'b', 'c'].map((x) => ({ alertId: `sweep_recovered:${x}`, kind: 'sweep_recovered' as const, text: `text ${x}`, occurredAt: now.toISOString() })),
      now,
    );
    const first = await t.app.inject({ url: '/alerts?status=pending&limit=2' });
    expect(first.statusCode).toBe(200);
    const page = first.json();
    expect(page).toMatchObject({
      enabled: false,
      alerts: [
        { alertId: 'sweep_recovered:a', kind: 'sweep_recovered', status: 'pending', text: 'text a', attempts: 0, alert: { text: 'text a' } },
        { alertId: 'sweep_recovered:b' },
      ],
      nextCursor: expect.any(String),
    });
    const second = (await t.app.inject({ url: `/alerts?status=pending&limit=2&cursor=${page.nextCursor}` })).json();
    expect(second).toMatchObject({ alerts: [{ alertId: 'sweep_recovered:c' }], nextCursor: null });
    expect((await t.app.inject({ url: '/alerts?status=failed' })).json().alerts).toEqual([]);
    const forged = await t.app.inject({ url: '/alerts?cursor=bm90LWEtY3Vyc29y' });
    expect(forged.statusCode).toBe(400);
    expect(forged.json().errors[0].field).toBe('querystring.cursor');
    expect((await t.app.inject({ url: '/alerts?status=lost' })).statusCode).toBe(400);
  });
});

import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateBank, toCasJson, transactionWebhook } from '../../tools/cas-sim/bank';
import { accountIdOf } from '../../src/projections/ledger.projection';
import { metricValue, startAlertReceiver, type AlertReceiver } from '../support/ops';
import { createTestDatabase, eventually, type TestDatabase } from '../support/postgres';
import { freePort, ROOT, type ServiceProcess, spawnProcess, startService, stopService, waitFor } from '../support/service';

const run = promisify(execFile);
const WEBHOOK_TOKEN = 'e2e-webhook-token-0123456789abcdef';
const API_TOKEN = 'e2e-bootstrap-admin-token-0123456789';

/**
 * Issue 15's "Done when", from outside: the service as its own process, a real HTTP receiver for the alerts, three
 * webhooks of one account with a gap and one duplicate; a restart; GET /metrics with the admin key and others.
 */
describe('alerts and metrics of the service process', () => {
  let db: TestDatabase;
  let receiver: AlertReceiver;
  let service: ServiceProcess;
  const keys = { accountant: '', metrics: '' };
  const bank = generateBank({ seed: 'ops-done-when', accounts: 1, transactionsPerAccount: 4, banks: 1 });
  const account = bank.accounts[0]!;
  const [t1, t2, , t4] = account.transactions;
  const env = () => ({
    DATABASE_URL: db.url,
    WEBHOOK_TOKEN,
    API_TOKEN,
    ALERT_WEBHOOK_URL: receiver.url,
    ALERT_BREAK_AFTER_SECONDS: '2',
    ALERT_INTERVAL_SECONDS: '0.2',
  });
  const ledger = (...args: string[]) =>
    run(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], { cwd: ROOT, env: { PATH: process.env.PATH ?? '', DATABASE_URL: db.url } });
  const get = (path: string, key?: string) => fetch(`${service.url}${path}`, { headers: key ? { authorization: `Bearer ${key}` } : {} });
  const scrape = async (key = API_TOKEN) => {
    const response = await get('/metrics', key);
    expect(response.status).toBe(200);
    return response.text();
  };
  const post = (tx: (typeof account.transactions)[number]) =>
    fetch(`${service.url}/webhooks/bankhub`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-webhook-token': WEBHOOK_TOKEN },
      body: toCasJson(transactionWebhook(tx, 'grant-ops')),
    }).then(async (r) => (await r.json()) as { status: string });

  beforeAll(async () => {
    db = await createTestDatabase('alerts_e2e');
    receiver = await startAlertReceiver();
    for (const role of ['accountant', 'metrics'] as const) {
      keys[role] = (await ledger('keys', 'create', '--role', role, '--name', `${role}-e2e`)).stdout.trim();
    }
    service = await startService(env());
  });
  afterAll(async () => {
    if (service?.alive()) await stopService(service);
    await receiver?.close();
    await db?.drop();
  });

  it('sends exactly one break_opened alert, naming the account, once the break has been open 2 s', async () => {
    // t3 is lost: t4 does not start from the balance t2 left, so a break opens between them. t2 arrives twice.
    expect((await post(t1!)).status).toBe('accepted');
    expect((await post(t2!)).status).toBe('accepted');
    expect((await post(t4!)).status).toBe('accepted');
    expect((await post(t2!)).status).toBe('duplicate');

    await waitFor('the break_opened alert', () => receiver.received.length > 0, 20_000);
    const [alert] = receiver.received;
    expect(alert!.body).toMatchObject({
      kind: 'break_opened',
      alertId: expect.stringMatching(/^break_opened:[0-9a-f-]{36}$/),
      account: { id: accountIdOf(account.fiId, account.accountNumber), fiId: account.fiId, fiName: account.fiName, accountNumber: account.accountNumber },
      break: { afterTransactionId: t2!.id, beforeTransactionId: t4!.id },
      occurredAt: expect.any(String),
    });
    expect(alert!.body.text).toContain(account.accountNumber);
    expect(alert!.body.text).toContain(account.fiName);
    expect(alert!.headers['idempotency-key']).toBe(alert!.body.alertId);
    expect(alert!.headers['content-type']).toBe('application/json');

    // Detection goes on every 0.2 s: the same break is never alerted twice.
    const passes = async () => metricValue(await scrape(), 'ledger_alert_detection_passes_total') ?? 0;
    const seen = await passes();
    await waitFor('five more detection passes', async () => (await passes()) >= seen + 5, 10_000);
    expect(receiver.attempts.map((a) => a.body.alertId)).toEqual([alert!.body.alertId]);

    const listed = (await (await get('/alerts?status=delivered', API_TOKEN)).json()) as { enabled: boolean; alerts: { alertId: string; attempts: number }[] };
    expect(listed).toMatchObject({ enabled: true, alerts: [{ alertId: alert!.body.alertId, attempts: 1 }] });
    expect(((await (await get('/alerts?status=pending', API_TOKEN)).json()) as { alerts: unknown[] }).alerts).toEqual([]);
  });

  it('GET /metrics with the admin key shows the webhooks by outcome, their durations, the lag, the break and no parked event', async () => {
    const text = await eventually(async () => {
      const t = await scrape();
      expect(metricValue(t, 'ledger_projection_lag_events{projection="ledger"}')).toBe(0);
      return t;
    });
    expect(text).toContain('ledger_webhooks_total{outcome="accepted"} 3\n');
    expect(text).toContain('ledger_webhooks_total{outcome="duplicate"} 1\n');
    expect(metricValue(text, 'ledger_webhooks_total{outcome="invalid"}')).toBe(0);
    expect(text).toContain('# TYPE ledger_webhook_duration_seconds histogram');
    expect(metricValue(text, 'ledger_webhook_duration_seconds_count')).toBe(4);
    expect(metricValue(text, 'ledger_webhook_duration_seconds_bucket{le="+Inf"}')).toBe(4);
    expect(metricValue(text, 'ledger_webhook_duration_seconds_sum')).toBeGreaterThan(0);
    expect(text).toContain('ledger_projection_lag_events{projection="ledger"} 0\n');
    expect(text).toContain('ledger_breaks_open 1\n');
    expect(text).toContain('ledger_events_parked{projection="ledger"} 0\n');
    expect(metricValue(text, 'ledger_projection_lag_seconds{projection="ledger"}')).toBe(0);
    expect(metricValue(text, 'ledger_breaks_open_by_age{age="under_15m"}')).toBe(1);
    expect(metricValue(text, 'ledger_quarantine_total')).toBe(0);
    expect(metricValue(text, 'ledger_alerts_pending')).toBe(0);
    expect(metricValue(text, 'ledger_alerts_failed_total')).toBe(0);
    expect(metricValue(text, 'ledger_alert_deliveries_total{outcome="delivered"}')).toBe(1);
    // The process's own: heap, event-loop lag, garbage collection.
    for (const name of ['nodejs_heap_size_used_bytes', 'nodejs_eventloop_lag_seconds', 'process_resident_memory_bytes']) {
      expect(metricValue(text, name), name).toBeGreaterThan(0);
    }
    expect(text).toContain('# TYPE nodejs_gc_duration_seconds histogram');
    // The projection thread's own heap and event loop, labelled with it, in the same families; it never restarted.
    expect(metricValue(text, 'nodejs_heap_size_used_bytes{thread="projections"}')).toBeGreaterThan(0);
    expect(metricValue(text, 'nodejs_eventloop_lag_p99_seconds{thread="projections"}')).toBeGreaterThanOrEqual(0);
    expect(metricValue(text, 'ledger_thread_up{thread="projections"}')).toBe(1);
    expect(metricValue(text, 'ledger_thread_restarts_total{thread="projections"}')).toBe(0);
    expect(text.match(/^# HELP nodejs_heap_size_used_bytes /gm)).toHaveLength(1);

    // Every series the Grafana dashboard of the repository plots is one the service exports.
    const dashboard = JSON.parse(readFileSync(join(ROOT, 'ops', 'grafana-dashboard.json'), 'utf8')) as { panels: { targets?: { expr: string }[] }[] };
    const plotted = new Set(
      dashboard.panels.flatMap((p) => p.targets ?? []).flatMap((t) => t.expr.match(/\b(ledger|nodejs|process)_[a-z0-9_]+/g) ?? []),
    );
    expect(plotted.size).toBeGreaterThan(15);
    const exported = new Set([...text.matchAll(/^# TYPE (\S+) (\w+)$/gm)].flatMap(([, name, type]) => (type === 'histogram' ? [`${name}_bucket`, `${name}_sum`, `${name}_count`] : [name!])));
    for (const name of plotted) expect(exported, name).toContain(name);
  });

  it('answers /metrics to the metrics role and admin only: 401 without or with a wrong key, 403 to an accountant', async () => {
    expect((await get('/metrics')).status).toBe(401);
    expect((await get('/metrics', 'bl_' + 'x'.repeat(43))).status).toBe(401);
    expect((await get('/metrics', 'not-a-key-at-all')).status).toBe(401);
    const refused = await get('/metrics', keys.accountant);
    expect(refused.status).toBe(403);
    expect(await refused.json()).toMatchObject({ requiredRole: 'metrics', allowedRoles: ['metrics', 'admin'] });
    const scraped = await get('/metrics', keys.metrics);
    expect(scraped.status).toBe(200);
    expect(scraped.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    // The metrics key reads metrics, nothing else.
    expect((await get('/accounts', keys.metrics)).status).toBe(403);
    expect((await get('/alerts', keys.accountant)).status).toBe(403);
  });

  it('does not send the alert again after a restart of the service', async () => {
    expect(await stopService(service)).toBe(0);
    service = await startService(env());
    // A positive signal that the new process has looked, several times, at the break that is still open.
    const passes = async () => metricValue(await scrape(), 'ledger_alert_detection_passes_total') ?? 0;
    await waitFor('five detection passes of the new process', async () => (await passes()) >= 5, 20_000);
    const text = await scrape();
    expect(text).toContain('ledger_breaks_open 1\n');
    // Counters of work are the process's own: they start again from zero.
    expect(text).toContain('ledger_webhooks_total{outcome="accepted"} 0\n');
    expect(receiver.attempts).toHaveLength(1);
    expect(receiver.received.map((a) => a.body.kind)).toEqual(['break_opened']);
  });

  it('does not send it again after `ledger rebuild` replays the log into new read models', async () => {
    await ledger('rebuild');
    const passes = async () => metricValue(await scrape(), 'ledger_alert_detection_passes_total') ?? 0;
    const seen = await passes();
    await waitFor('five detection passes after the rebuild', async () => (await passes()) >= seen + 5, 20_000);
    expect((await scrape()).includes('ledger_breaks_open 1\n')).toBe(true);
    expect(receiver.attempts).toHaveLength(1);
  });

  it('sends break_resolved once the lost transaction arrives, for the break it alerted', async () => {
    expect((await post(account.transactions[2]!)).status).toBe('accepted');
    await waitFor('the break_resolved alert', () => receiver.received.length > 1, 20_000);
    const opened = receiver.received[0]!.body;
    const resolved = receiver.received[1]!.body;
    expect(resolved).toMatchObject({
      kind: 'break_resolved',
      alertId: opened.alertId.replace('break_opened', 'break_resolved'),
      account: opened.account,
    });
    expect(resolved.text).toContain('resolved');
  });
});

/** The compose shape: a service that does not project, and `ledger project` serving its own /metrics on METRICS_PORT. */
describe('metrics of `ledger project`', () => {
  let db: TestDatabase;
  let service: ServiceProcess;
  let projector: ReturnType<typeof spawnProcess>;
  let metricsUrl: string;

  beforeAll(async () => {
    db = await createTestDatabase('projector_metrics');
    service = await startService({ DATABASE_URL: db.url, WEBHOOK_TOKEN, API_TOKEN, RUN_PROJECTIONS: 'false' });
    const port = await freePort();
    metricsUrl = `http://127.0.0.1:${port}/metrics`;
    projector = spawnProcess(['src/cli.ts', 'project'], { DATABASE_URL: db.url, API_TOKEN, METRICS_PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'info' });
    await waitFor('the projector metrics server', async () => (await fetch(metricsUrl).catch(() => null)) !== null, 30_000);
  });
  afterAll(async () => {
    if (projector?.alive()) {
      projector.child.kill('SIGTERM');
      await projector.exited;
    }
    if (service?.alive()) await stopService(service);
    await db?.drop();
  });

  it('answers the same read-model counts as the service, behind the same keys', async () => {
    const bank = generateBank({ seed: 'ops-projector', accounts: 1, transactionsPerAccount: 3, banks: 1 });
    const [a, , c] = bank.accounts[0]!.transactions;
    for (const tx of [a!, c!]) {
      const r = await fetch(`${service.url}/webhooks/bankhub`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-webhook-token': WEBHOOK_TOKEN },
        body: toCasJson(transactionWebhook(tx, null)),
      });
      expect(r.status).toBe(200);
    }
    const scrape = async (url: string) => {
      const r = await fetch(url, { headers: { authorization: `Bearer ${API_TOKEN}` } });
      expect(r.status).toBe(200);
      return r.text();
    };
    const fromProjector = await eventually(async () => {
      const text = await scrape(metricsUrl);
      expect(text).toContain('ledger_breaks_open 1\n');
      expect(text).toContain('ledger_projection_lag_events{projection="ledger"} 0\n');
      return text;
    });
    const fromService = await scrape(`${service.url}/metrics`);
    for (const series of ['ledger_breaks_open', 'ledger_projection_lag_events{projection="ledger"}', 'ledger_events_parked{projection="ledger"}']) {
      expect(metricValue(fromService, series), series).toBe(metricValue(fromProjector, series));
    }
    // Each process counts its own work: the webhooks reached the service, not the projector.
    expect(metricValue(fromService, 'ledger_webhooks_total{outcome="accepted"}')).toBe(2);
    expect(metricValue(fromProjector, 'ledger_webhooks_total{outcome="accepted"}')).toBe(0);
    expect(metricValue(fromProjector, 'nodejs_heap_size_used_bytes')).toBeGreaterThan(0);
    expect((await fetch(metricsUrl)).status).toBe(401);
    expect((await fetch(metricsUrl.replace('/metrics', '/accounts'), { headers: { authorization: `Bearer ${API_TOKEN}` } })).status).toBe(404);
  });
});

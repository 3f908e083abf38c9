import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import type { AddressInfo } from 'node:net';
import { sql } from 'kysely';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sweepDay } from '../../src/domain/bank-day';
import { sweepStreamId } from '../../src/domain/events';
import { openRoot } from '../../src/composition-root';
import { accountIdOf } from '../../src/projections/ledger.projection';
import { bankBalance, type CasTransaction } from '../../tools/cas-sim/bank';
import { type CasSimulator, startCasSimulator } from '../../tools/cas-sim/server';
import { createTestApp, TEST_TOKEN, type TestApp } from '../support/app';
import { type AlertReceiver, metricValue, startAlertReceiver } from '../support/ops';
import { eventually } from '../support/postgres';
import { ROOT, waitFor } from '../support/service';

const run = promisify(execFile);
const SECRETS_KEY = randomBytes(32).toString('hex');

/**
 * The daily sweep against the Cas simulator over real HTTP: the push channel loses the LAST transaction of one account
 * (no break can show it) and the FIRST of another (nothing before it to disagree with); the sweep at 03:00 bank time
 * books both from GET /transactions and alerts. The sweep's clock is passed in: no test waits for 03:00.
 */
describe('the daily sweep', () => {
  let sim: CasSimulator;
  let t: TestApp;
  let base: string;
  let receiver: AlertReceiver;
  let lost: CasTransaction[];
  const transactionCalls = () => sim.requestLog.filter((r) => r.path === '/transactions').length;

  beforeAll(async () => {
    receiver = await startAlertReceiver();
    sim = await startCasSimulator({
      clientId: 'sweep-client',
      secretKey: 'sweep-secret-key',
      seed: 'sweep',
      accounts: 2,
      transactionsPerAccount: 5,
      // Every transaction on 2026-05-01, bank time: the sweep of 2026-05-02 covers that day and its own.
      bankOptions: { start: '2026-05-01T08:00:00+07:00', maxGapMinutes: 60 },
      rateLimitWindowMs: 100,
    });
    t = await createTestApp({
      BANKHUB_BASE_URL: sim.url,
      BANKHUB_LINK_URL: `${sim.url}/link`,
      BANKHUB_CLIENT_ID: 'sweep-client',
      BANKHUB_SECRET_KEY: 'sweep-secret-key',
      BANKHUB_RATE_LIMIT_MS: '150',
      SECRETS_KEY,
      HEAL_AFTER_SECONDS: '86400',
      ALERT_WEBHOOK_URL: receiver.url,
      ALERT_INTERVAL_SECONDS: '0.2',
    });
    await t.app.listen({ host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
    for (let i = 0; i < new Set(sim.bank.accounts.map((a) => a.fiId)).size; i += 1) {
      const started = await fetch(`${base}/links`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ redirectUri: `${base}/links/callback` }),
      });
      const { linkUrl } = (await started.json()) as { linkUrl: string };
      expect((await fetch(linkUrl)).status).toBe(200);
    }
    await eventually(async () => {
      const { grants } = (await (await fetch(`${base}/grants`)).json()) as { grants: { status: string }[] };
      expect(grants.filter((g) => g.status === 'active')).toHaveLength(2);
    });
  });
  afterAll(async () => {
    await t?.close();
    await sim?.close();
    await receiver?.close();
  });

  it('recovers a lost last and a lost first transaction at SWEEP_AT, books them as backfill and alerts', async () => {
    const [a, b] = sim.bank.accounts;
    lost = [a!.transactions.at(-1)!, b!.transactions[0]!];
    const delivered = sim.bank.allTransactions().map((x) => x.transaction).filter((tx) => !lost.includes(tx));
    const report = await sim.deliverWebhooks({ targetUrl: `${base}/webhooks/bankhub?token=${TEST_TOKEN}`, transactions: delivered });
    expect(report.gaveUp).toEqual([]);

    const db = t.stores.database.db;
    const count = async (query: ReturnType<typeof sql<{ n: number }>>) => (await query.execute(db)).rows[0]!.n;
    await eventually(async () => expect(await count(sql`select count(*)::int as n from ledger.statement_lines`)).toBe(delivered.length));
    // Nothing shows the loss: no break, and the books simply end (or start) one transaction early.
    expect(await count(sql`select count(*)::int as n from ledger.breaks`)).toBe(0);
    const balance = async (fiId: string, accountNumber: string) =>
      (await sql<{ balance: string }>`select balance from ledger.accounts where account_id = ${accountIdOf(fiId, accountNumber)}`.execute(db)).rows[0]?.balance;
    expect(await balance(a!.fiId, a!.accountNumber)).not.toBe(bankBalance(a!).toString());

    const loop = t.sweepLoop!;
    const callsBefore = transactionCalls();
    expect(await loop.runIfDue(new Date('2026-05-02T02:59:00+07:00'))).toEqual({ status: 'not_due' });
    expect(transactionCalls()).toBe(callsBefore);

    const outcome = await loop.runIfDue(new Date('2026-05-02T03:00:00+07:00'));
    expect(outcome).toMatchObject({
      status: 'completed',
      report: {
        date: '2026-05-02',
        fromDate: '2026-05-01',
        toDate: '2026-05-02',
        totals: { fetched: 10, accepted: 2, duplicates: 8, conflicts: 0, invalid: 0 },
        grants: [
          { outcome: 'swept', fetched: 5, errorCode: null },
          { outcome: 'swept', fetched: 5, errorCode: null },
        ],
      },
    });
    if (outcome.status !== 'completed') throw new Error('not completed');
    expect(outcome.report.recovered.map((r) => r.transactionId).sort()).toEqual(lost.map((tx) => tx.id).sort());
    expect(transactionCalls()).toBe(callsBefore + 2);

    // Booked through the webhook path, as backfill, and the books now equal the bank's.
    await eventually(async () => {
      for (const account of [a!, b!]) expect(await balance(account.fiId, account.accountNumber)).toBe(bankBalance(account).toString());
    });
    const { rows } = await sql<{ transaction_id: string; source: string }>`
      select transaction_id, source from ledger.statement_lines where transaction_id = any(${lost.map((tx) => tx.id)})`.execute(db);
    expect(rows.map((r) => r.source)).toEqual(['backfill', 'backfill']);

    // The report is an event of its own stream, and a metric.
    const [event] = await t.stores.eventStore.readStream(sweepStreamId('2026-05-02'));
    expect(event).toMatchObject({ type: 'SweepCompleted', data: { date: '2026-05-02', totals: { accepted: 2, fetched: 10 } } });
    const metrics = await t.metrics.scrape();
    expect(metricValue(metrics, 'ledger_sweep_runs_total')).toBe(1);
    expect(metricValue(metrics, 'ledger_sweep_transactions_total{result="accepted"}')).toBe(2);
    expect(metricValue(metrics, 'ledger_sweep_transactions_total{result="duplicates"}')).toBe(8);
    expect(metricValue(metrics, 'ledger_bankhub_requests_total{endpoint="/transactions",outcome="ok"}')).toBe(2);
    expect(metricValue(metrics, 'ledger_bankhub_requests_total{endpoint="/grant/exchange",outcome="ok"}')).toBe(2);

    // And an alert, once: Cas's push channel lost something.
    await waitFor('the sweep_recovered alert', () => receiver.received.some((r) => r.body.kind === 'sweep_recovered'), 20_000);
    const alert = receiver.received.find((r) => r.body.kind === 'sweep_recovered')!.body;
    expect(alert).toMatchObject({ alertId: 'sweep_recovered:2026-05-02', sweep: { date: '2026-05-02', totals: { accepted: 2 } } });
    expect(alert.text).toContain('recovered 2 transactions');
    for (const account of [a!, b!]) expect(alert.text).toContain(`account ${account.accountNumber}`);
  });

  it('does not sweep a day again, in this process or another', async () => {
    const calls = transactionCalls();
    expect(await t.sweepLoop!.runIfDue(new Date('2026-05-02T22:00:00+07:00'))).toMatchObject({ status: 'already_done', report: { totals: { accepted: 2 } } });
    expect(transactionCalls()).toBe(calls);
  });

  it('runs one sweep at a time across instances: two at once ask Cas once per grant', async () => {
    // Another instance: a graph of its own (pools, Cas client, sweep loop) over the same database.
    const another = await openRoot(t.config, { overrides: { logger: pino({ level: 'silent' }), processMetrics: false } });
    const calls = transactionCalls();
    const day = sweepDay('2026-05-03');
    const outcomes = await Promise.all([t.sweepLoop!.runDay(day), another.resolve('sweepLoop')!.runDay(day)]).finally(() => another.close());
    expect(outcomes.map((o) => o.status).sort()).toEqual(expect.arrayContaining(['completed']));
    expect(outcomes.filter((o) => o.status === 'completed')).toHaveLength(1);
    expect(outcomes.map((o) => o.status).every((s) => ['completed', 'busy', 'already_done'].includes(s))).toBe(true);
    expect(transactionCalls()).toBe(calls + 2);
    expect(await t.stores.eventStore.readStream(sweepStreamId('2026-05-03'))).toHaveLength(1);
  });

  it('reports a grant Cas refuses without stopping the others, and alerts that the grant needs a login', async () => {
    const [grantA, grantB] = [...sim.grants.values()];
    sim.setGrantStatus(grantA!.grantId, 'login_required');
    const outcome = await t.sweepLoop!.runDay(sweepDay('2026-05-04'));
    expect(outcome).toMatchObject({ status: 'completed', report: { totals: { accepted: 0 } } });
    if (outcome.status !== 'completed') throw new Error('not completed');
    const byGrant = new Map(outcome.report.grants.map((g) => [g.grantId, g]));
    expect(byGrant.get(grantA!.grantId)).toMatchObject({ outcome: 'failed', errorCode: 'GRANT_LOGIN_REQUIRED' });
    expect(byGrant.get(grantB!.grantId)).toMatchObject({ outcome: 'swept' });
    expect(metricValue(await t.metrics.scrape(), 'ledger_sweep_grant_failures_total')).toBe(1);
    expect(metricValue(await t.metrics.scrape(), 'ledger_bankhub_requests_total{endpoint="/transactions",outcome="GRANT_LOGIN_REQUIRED"}')).toBe(1);

    // Cas tells the ledger through a GRANT webhook: the operator hears it once.
    await sim.deliverGrantWebhook(grantA!.grantId, 'ERROR', {
      errorType: 'GRANT_ERROR',
      errorCode: 'GRANT_LOGIN_REQUIRED',
      errorMessage: 'Phiên đăng nhập đã hết hạn',
    }, { targetUrl: `${base}/webhooks/bankhub?token=${TEST_TOKEN}` });
    await waitFor('the grant_needs_login alert', () => receiver.received.some((r) => r.body.kind === 'grant_needs_login'), 20_000);
    const alert = receiver.received.find((r) => r.body.kind === 'grant_needs_login')!.body;
    expect(alert).toMatchObject({ grant: { grantId: grantA!.grantId, status: 'login_required', errorCode: 'GRANT_LOGIN_REQUIRED' } });
    expect(alert.text).toContain('log in');
    // No sweep of a day with nothing recovered raised an alert; each alert arrived once.
    const ids = receiver.received.map((r) => r.body.alertId);
    expect(ids.filter((id) => id.startsWith('sweep_recovered:'))).toEqual(['sweep_recovered:2026-05-02']);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('runs by hand with `ledger sweep --date`, once per day like the scheduled one', async () => {
    const env = {
      PATH: process.env.PATH ?? '',
      DATABASE_URL: t.database.url,
      BANKHUB_BASE_URL: sim.url,
      BANKHUB_CLIENT_ID: 'sweep-client',
      BANKHUB_SECRET_KEY: 'sweep-secret-key',
      BANKHUB_RATE_LIMIT_MS: '150',
      SECRETS_KEY,
    };
    const sweepCli = async (date: string) =>
      JSON.parse((await run(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'sweep', '--date', date], { cwd: ROOT, env })).stdout) as {
        status: string;
        report: { date: string; grants: unknown[] };
      };
    const calls = transactionCalls();
    const first = await sweepCli('2026-05-06');
    expect(first).toMatchObject({ status: 'completed', report: { date: '2026-05-06', fromDate: '2026-05-05', toDate: '2026-05-06' } });
    // One grant needs a login since the test before: only the active one is asked.
    expect(first.report.grants).toHaveLength(1);
    expect(transactionCalls()).toBe(calls + 1);
    expect(await sweepCli('2026-05-06')).toMatchObject({ status: 'already_done', report: { date: '2026-05-06' } });
    expect(transactionCalls()).toBe(calls + 1);
  });
});

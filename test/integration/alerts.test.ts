import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { sql } from 'kysely';
import { v4 as uuidv4 } from 'uuid';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeEvent } from '../../src/domain/event-codec';
import { grantStreamId, type LedgerEvent } from '../../src/domain/events';
import { createAlertDetector } from '../../src/infrastructure/alerts/alert-detector';
import { createAlertDispatcher, RETRY_FOR_MS } from '../../src/infrastructure/alerts/alert-dispatcher';
import type { AlertOutboxRepository } from '../../src/infrastructure/postgres/alert-outbox-repository';
import { projectFromLog, rebuildProjection } from '../../src/infrastructure/read-model-maintenance';
import { createGrantsProjection } from '../../src/projections/grants.projection';
import { accountIdOf, createLedgerProjection } from '../../src/projections/ledger.projection';
import { readModelIn } from '../../src/projections/read-model';
import { appendStoredTransaction, bankTx, createLedgerContext, type LedgerContext } from '../support/ledger';
import { type AlertReceiver, startAlertReceiver } from '../support/ops';

/**
 * Detection and delivery on real PostgreSQL with the clock driven by the test: each kind is alerted when it begins
 * and never again — not on the next pass, not after a rebuild of the read models.
 */
let ctx: LedgerContext;
let outbox: AlertOutboxRepository;
let clock = new Date('2026-06-01T00:00:00Z');
const now = () => clock;
const advance = (seconds: number) => (clock = new Date(clock.getTime() + seconds * 1000));
const grants = createGrantsProjection();

beforeAll(async () => {
  // The graph of a process with both read models and the test's clock; the detector and dispatcher under test are
  // built here, from its parts.
  ctx = await createLedgerContext('alerts', { overrides: { projections: [createLedgerProjection(), grants], clock: now } });
  outbox = ctx.root.resolve('alertOutbox');
});
afterAll(async () => {
  await ctx?.close();
});

const runners = () => ctx.root.resolve('runners');
const detector = (overrides: { lagSeconds?: number } = {}) =>
  createAlertDetector({
    outbox,
    ledger: readModelIn(ctx.database.db, 'ledger'),
    grants: readModelIn(ctx.database.db, 'grants'),
    readModelOf: (projection) => readModelIn(ctx.database.db, projection),
    projections: () => Promise.all(runners().map((r) => r.status())),
    breakAfterSeconds: 900,
    lagSeconds: overrides.lagSeconds ?? 3_600,
    now,
  });
const projectAll = async () => {
  await ctx.project();
  await projectFromLog({ db: ctx.database.db, eventStore: ctx.store, projection: grants, schema: 'grants' });
};
const kinds = (alerts: readonly { kind: string }[]) => alerts.map((a) => a.kind);

describe('alert detection', () => {
  const acct = { fiId: 'fi-alert', fiName: 'Alert Bank', accountNumber: '5550001' };
  const at = (minute: number) => new Date(Date.parse('2026-05-31T09:00:00+07:00') + minute * 60_000).toISOString();
  const t1 = bankTx({ ...acct, amount: 100n, runningBalance: 100n, transactionDateTime: at(0) });
  const t2 = bankTx({ ...acct, amount: 50n, runningBalance: 150n, transactionDateTime: at(1) });
  const t3 = bankTx({ ...acct, amount: 25n, runningBalance: 175n, transactionDateTime: at(2) });

  it('marks when alerting began on its first pass, and alerts nothing while nothing is wrong', async () => {
    expect((await detector().detect()).raised).toEqual([]);
  });

  it('alerts a break once it has been open ALERT_BREAK_AFTER_SECONDS, once, and its resolution once', async () => {
    await ctx.deliver(t1, clock);
    await ctx.deliver(t3, clock);
    await projectAll();
    advance(899);
    expect((await detector().detect()).raised).toEqual([]);
    advance(1);
    const [opened, ...more] = (await detector().detect()).raised;
    expect(more).toEqual([]);
    expect(opened).toMatchObject({
      kind: 'break_opened',
      account: { id: accountIdOf(acct.fiId, acct.accountNumber), fiName: 'Alert Bank', accountNumber: '5550001' },
      break: { afterTransactionId: t1.id, beforeTransactionId: t3.id, missingAmount: '50' },
    });
    expect(opened!.text).toMatch(/Alert Bank \(fi-alert\) account 5550001.*50 VND.*15 min ago/);
    advance(60);
    expect((await detector().detect()).raised).toEqual([]);

    // A rebuild makes the break again, with the same id: the outbox already holds its alert.
    await rebuildProjection({ db: ctx.database.db, eventStore: ctx.store, projection: ctx.projection });
    expect((await detector().detect()).raised).toEqual([]);

    await ctx.deliver(t2, clock);
    await projectAll();
    const [resolved, ...rest] = (await detector().detect()).raised;
    expect(rest).toEqual([]);
    expect(resolved).toMatchObject({ kind: 'break_resolved', alertId: opened!.alertId.replace('break_opened', 'break_resolved') });
    expect((await detector().detect()).raised).toEqual([]);
    await rebuildProjection({ db: ctx.database.db, eventStore: ctx.store, projection: ctx.projection });
    expect((await detector().detect()).raised).toEqual([]);
  });

  it('does not alert a break that closed before its time', async () => {
    const other = { ...acct, accountNumber: '5550002' };
    const a = bankTx({ ...other, amount: 10n, runningBalance: 10n, transactionDateTime: at(10) });
    const b = bankTx({ ...other, amount: 10n, runningBalance: 20n, transactionDateTime: at(11) });
    const c = bankTx({ ...other, amount: 10n, runningBalance: 30n, transactionDateTime: at(12) });
    await ctx.deliver(a, clock);
    await ctx.deliver(c, clock);
    await projectAll();
    advance(600);
    await ctx.deliver(b, clock);
    await projectAll();
    advance(3_600);
    expect((await detector().detect()).raised).toEqual([]);
  });

  it('alerts a conflicting repeat that arrives after alerting began, once', async () => {
    expect(await ctx.deliver({ ...t1, amount: 999n }, clock)).toBe('conflict');
    await projectAll();
    const raised = (await detector().detect()).raised;
    expect(kinds(raised)).toEqual(['conflict']);
    expect(raised[0]).toMatchObject({ account: { accountNumber: '5550001' }, conflict: { transactionId: t1.id } });
    expect(raised[0]!.text).toContain('999 VND');
    expect((await detector().detect()).raised).toEqual([]);
  });

  it('leaves conflicts from before alerting began to the history', async () => {
    const before = new Date(Date.parse('2026-01-01T00:00:00Z'));
    expect(await ctx.deliver({ ...t2, amount: 1n }, before)).toBe('conflict');
    await projectAll();
    expect((await detector().detect()).raised).toEqual([]);
  });

  it('alerts a parked event once, naming its account', async () => {
    const poison = await appendStoredTransaction(
      ctx.store,
      bankTx({ ...acct, accountNumber: '5550003', amount: 10n ** 30n, runningBalance: 10n ** 30n, transactionDateTime: at(30) }),
      clock,
    );
    await projectAll();
    const raised = (await detector().detect()).raised;
    expect(kinds(raised)).toEqual(['event_parked']);
    expect(raised[0]).toMatchObject({ alertId: `event_parked:ledger:${poison}`, projection: 'ledger', parked: { eventId: poison, type: 'BalanceChanged' } });
    expect(raised[0]!.text).toContain(`ledger parked retry ${poison}`);
    expect((await detector().detect()).raised).toEqual([]);
    await rebuildProjection({ db: ctx.database.db, eventStore: ctx.store, projection: ctx.projection });
    expect((await detector().detect()).raised).toEqual([]);
  });

  it('alerts a grant each time it moves to login_required or error, not while it stays there', async () => {
    const grantId = 'grant-alerts-1';
    const append = async (event: LedgerEvent) => {
      await ctx.store.appendToStream(grantStreamId(grantId), [{ eventId: uuidv4(), ...encodeEvent(event), metadata: { receivedAt: clock.toISOString() } }], 'any');
      await projectAll();
    };
    const webhook = (webhookCode: string, errorCode: string | null): LedgerEvent => ({
      type: 'GrantWebhookReceived',
      data: { grantId, webhookCode, environment: 'dev', error: errorCode ? { errorType: 'GRANT_ERROR', errorCode, errorMessage: 'đăng nhập lại' } : null },
    });
    await append({
      type: 'GrantLinked',
      data: { grantId, fiId: 'fi-alert', accounts: [{ accountNumber: '5550001', accountName: null, currency: 'VND', fiId: 'fi-alert' }], linkedAt: clock.toISOString(), requestId: null },
    });
    expect((await detector().detect()).raised).toEqual([]);
    await append(webhook('ERROR', 'GRANT_LOGIN_REQUIRED'));
    const first = (await detector().detect()).raised;
    expect(first).toMatchObject([{ kind: 'grant_needs_login', grant: { grantId, status: 'login_required', errorCode: 'GRANT_LOGIN_REQUIRED', accountNumbers: ['5550001'] } }]);
    await append(webhook('ERROR', 'OTP_REQUIRED'));
    expect((await detector().detect()).raised).toEqual([]);
    await append(webhook('DEFAULT_UPDATE', null));
    expect((await detector().detect()).raised).toEqual([]);
    await append(webhook('ERROR', 'SOMETHING_ELSE'));
    const second = (await detector().detect()).raised;
    expect(second).toMatchObject([{ kind: 'grant_needs_login', grant: { status: 'error', errorCode: 'SOMETHING_ELSE' } }]);
    expect(second[0]!.alertId).not.toBe(first[0]!.alertId);
    await rebuildProjection({ db: ctx.database.db, eventStore: ctx.store, projection: grants });
    expect((await detector().detect()).raised).toEqual([]);
  });

  it('alerts a projection that falls behind by more than ALERT_LAG_SECONDS once per stall', async () => {
    const stalled = detector({ lagSeconds: 300 });
    const waiting = [1n, 2n].map((n) =>
      bankTx({ ...acct, accountNumber: '5550004', amount: 1n, runningBalance: n, transactionDateTime: at(40 + Number(n)) }),
    );
    for (const tx of waiting) await ctx.deliver(tx, clock);
    // The log's own timestamp says when an event waits from; the test's clock runs ahead of it.
    clock = new Date(Date.now() + 299_000);
    expect((await stalled.detect()).raised).toEqual([]);
    clock = new Date(Date.now() + 301_000);
    const raised = (await stalled.detect()).raised;
    expect(raised).toMatchObject([{ kind: 'projection_stalled', projection: 'ledger', lag: { eventsBehind: '2' } }]);
    expect(raised[0]!.text).toContain('Projection ledger is stalled: 2 events wait');
    expect((await stalled.detect()).raised).toEqual([]);
    // It crawls: one event applied, the next still waiting past the threshold. The same stall, no new alert.
    const [first] = await ctx.store.readStream(`bankTx-${waiting[0]!.id}`);
    await projectFromLog({ db: ctx.database.db, eventStore: ctx.store, projection: ctx.projection, schema: 'ledger', batchSize: 1, until: first!.position });
    expect((await runners()[0]!.status()).eventsBehind).toBe(1n);
    expect((await stalled.detect()).raised).toEqual([]);
    await projectAll();
    expect((await stalled.detect()).raised).toEqual([]);
    // Caught up, then stalled again: a new stall, a new alert.
    await ctx.deliver(bankTx({ ...acct, accountNumber: '5550004', amount: 1n, runningBalance: 3n, transactionDateTime: at(43) }), clock);
    clock = new Date(Date.now() + 600_000);
    const again = (await stalled.detect()).raised;
    expect(kinds(again)).toEqual(['projection_stalled']);
    expect(again[0]!.alertId).not.toBe(raised[0]!.alertId);
    await projectAll();
  });
});

describe('alert delivery', () => {
  let receiver: AlertReceiver;
  beforeAll(async () => {
    receiver = await startAlertReceiver();
  });
  afterAll(async () => {
    await receiver?.close();
  });
  const status = async (alertId: string) =>
    (await sql<{ status: string; attempts: number; next_attempt_at: Date | null; last_error: string | null }>`
      select status, attempts, next_attempt_at, last_error from alerts where alert_id = ${alertId}`.execute(ctx.database.db)).rows[0]!;
  const raise = (alertId: string) =>
    outbox.raise([{ alertId, kind: 'sweep_recovered', text: `text of ${alertId}`, occurredAt: clock.toISOString() }], clock);

  it('delivers what is pending once, retries with backoff after a failure, and gives up after 24 h', async () => {
    // Everything raised by the detection tests above, at once.
    const pending = (await outbox.due(clock, 1000)).length;
    const dispatcher = createAlertDispatcher({ outbox, url: receiver.url, format: 'full', now, random: () => 0 });
    expect(await dispatcher.deliverDue()).toBe(pending);
    expect(receiver.received).toHaveLength(pending);
    expect(await dispatcher.deliverDue()).toBe(0);
    expect(receiver.attempts).toHaveLength(pending);

    await raise('delivery:retry');
    receiver.answerWith(503);
    await dispatcher.deliverDue();
    const failed = await status('delivery:retry');
    expect(failed).toMatchObject({ status: 'pending', attempts: 1, last_error: expect.stringMatching(/^HTTP 503/) });
    expect(failed.next_attempt_at!.getTime() - clock.getTime()).toBe(10_000);
    advance(9);
    expect(await dispatcher.deliverDue()).toBe(0);
    advance(1);
    receiver.answerWith(200);
    expect(await dispatcher.deliverDue()).toBe(1);
    expect(await status('delivery:retry')).toMatchObject({ status: 'delivered', attempts: 2, next_attempt_at: null });
    expect(receiver.received.at(-1)!.body).toMatchObject({ alertId: 'delivery:retry', text: 'text of delivery:retry' });

    await raise('delivery:never');
    receiver.answerWith(500);
    const created = clock.getTime();
    const waits: number[] = [];
    for (let i = 0; i < 100; i += 1) {
      await dispatcher.deliverDue();
      const row = await status('delivery:never');
      if (row.status !== 'pending') break;
      waits.push(row.next_attempt_at!.getTime() - clock.getTime());
      clock = row.next_attempt_at!;
    }
    receiver.answerWith(200);
    expect(await status('delivery:never')).toMatchObject({ status: 'failed', last_error: expect.stringMatching(/^HTTP 500/) });
    // 10 s, doubling, at most an hour apart; tried for 24 h from when it was raised, not longer.
    expect(waits.slice(0, 4)).toEqual([10_000, 20_000, 40_000, 80_000]);
    expect(Math.max(...waits)).toBe(3_600_000);
    expect(clock.getTime() - created).toBeLessThanOrEqual(RETRY_FOR_MS);
    expect(clock.getTime() - created).toBeGreaterThan(RETRY_FOR_MS - 3_600_000);
    const page = await outbox.list({ status: 'failed', after: null, limit: 10 });
    expect(page.items.map((r) => r.alertId)).toEqual(['delivery:never']);
  });

  it('counts a receiver that does not answer as a failed attempt, and never writes the URL into the error', async () => {
    const silent = createServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(silent.address() as AddressInfo).port}/secret-path-T0KEN`;
    try {
      await raise('delivery:silent');
      await createAlertDispatcher({ outbox, url, format: 'full', now, timeoutMs: 200 }).deliverDue();
      const row = await status('delivery:silent');
      expect(row).toMatchObject({ status: 'pending', attempts: 1, last_error: 'no answer within 200 ms' });
      await raise('delivery:refused');
      await createAlertDispatcher({ outbox, url: 'http://127.0.0.1:1/secret-path-T0KEN', format: 'full', now }).deliverDue();
      expect((await status('delivery:refused')).last_error).toMatch(/^request failed: /);
      expect((await status('delivery:refused')).last_error).not.toContain('T0KEN');
    } finally {
      silent.closeAllConnections();
      silent.close();
    }
  });

  it('sends only the text to a chat webhook that refuses other fields (ALERT_WEBHOOK_FORMAT=text)', async () => {
    await raise('delivery:text');
    await sql`update alerts set status = 'delivered' where alert_id like 'delivery:%' and alert_id <> 'delivery:text'`.execute(ctx.database.db);
    await createAlertDispatcher({ outbox, url: receiver.url, format: 'text', now }).deliverDue();
    expect(receiver.received.at(-1)!.body).toEqual({ text: 'text of delivery:text' });
  });

  it('lists alerts page by page, by status, oldest first', async () => {
    const all: string[] = [];
    let after: readonly string[] | null = null;
    do {
      const page = await outbox.list({ after, limit: 3 });
      all.push(...page.items.map((r) => r.alertId));
      after = page.next;
    } while (after);
    const { rows } = await sql<{ alert_id: string }>`select alert_id from alerts order by created_at, alert_id`.execute(ctx.database.db);
    expect(all).toEqual(rows.map((r) => r.alert_id));
    expect(all.length).toBeGreaterThan(6);
  });
});

import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accountIdOf } from '../../src/projections/ledger.projection';
import { appendTransactions, bankBalance, type SimAccount } from '../../tools/cas-sim/bank';
import { startCasSimulator, type CasSimulator, type DeliveryReport } from '../../tools/cas-sim/server';
import { createTestApp, TEST_TOKEN, type TestApp } from '../support/app';
import { eventually } from '../support/postgres';

/**
 * The whole loop on real PostgreSQL and real HTTP: accounts linked through Cas's three calls, webhooks pushed by the
 * simulator with drops, duplicates and reordering, and the service healing the gaps by itself from GET /transactions.
 */
describe('service and Cas simulator', () => {
  let sim: CasSimulator;
  let t: TestApp;
  let base: string;
  const reports: DeliveryReport[] = [];

  beforeAll(async () => {
    sim = await startCasSimulator({
      clientId: 'e2e-client',
      secretKey: 'e2e-secret-key',
      seed: 'e2e-heal',
      accounts: 4,
      transactionsPerAccount: 45,
      // Cas allows one GET /transactions per grant per minute; here per 200 ms (the service keeps 250 ms apart).
      rateLimitWindowMs: 200,
    });
    t = await createTestApp({
      BANKHUB_BASE_URL: sim.url,
      BANKHUB_LINK_URL: `${sim.url}/link`,
      BANKHUB_CLIENT_ID: 'e2e-client',
      BANKHUB_SECRET_KEY: 'e2e-secret-key',
      BANKHUB_RATE_LIMIT_MS: '250',
      SECRETS_KEY: randomBytes(32).toString('hex'),
      HEAL_AFTER_SECONDS: '1',
      HEAL_INTERVAL_SECONDS: '0.2',
    });
    await t.app.listen({ host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await t?.close();
    await sim?.close();
  });

  it('links every bank through POST /links, Cas Link and the callback', async () => {
    const banks = new Set(sim.bank.accounts.map((a) => a.fiId));
    for (let i = 0; i < banks.size; i += 1) {
      const started = await fetch(`${base}/links`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ redirectUri: `${base}/links/callback` }),
      });
      expect(started.status).toBe(200);
      const { linkUrl } = (await started.json()) as { linkUrl: string };
      // The browser: Cas Link logs in to the bank and redirects to our callback with the public token.
      const linked = await fetch(linkUrl);
      expect(linked.status).toBe(200);
      const body = (await linked.json()) as { grantId: string; accounts: { accountNumber: string }[] };
      expect(sim.grants.get(body.grantId)?.accountKeys).toHaveLength(body.accounts.length);
    }
    expect(sim.grants.size).toBe(banks.size);
    const grants = () => fetch(`${base}/grants`).then((r) => r.json() as Promise<{ grants: { accounts: unknown[] }[] }>);
    await eventually(async () => {
      const linkedAccounts = (await grants()).grants.flatMap((g) => g.accounts);
      expect(linkedAccounts).toHaveLength(sim.bank.accounts.length);
    });
  });

  it('ends with every balance equal to the bank, every statement reconciled and no break open', async () => {
    const targetUrl = `${base}/webhooks/bankhub?token=${TEST_TOKEN}`;
    const lossy = { targetUrl, dropRate: 0.05, duplicateRate: 0.1, reorderRate: 0.25, reorderWindow: 4, concurrency: 4 };
    reports.push(await sim.deliverWebhooks(lossy));
    // New transactions keep happening: a lost last transaction shows as a gap once the next one arrives.
    for (const account of sim.bank.accounts) {
      const last = account.transactions.at(-1)!;
      appendTransactions(account, 2, new Date(Date.parse(last.transactionDateTime) + 3_600_000));
    }
    reports.push(await sim.deliverWebhooks({ ...lossy, dropRate: 0 }));
    const dropped = new Set(reports.flatMap((r) => r.dropped));
    expect(dropped.size).toBeGreaterThanOrEqual(3);
    expect(reports.flatMap((r) => r.duplicated).length).toBeGreaterThan(0);
    expect(reports.flatMap((r) => r.gaveUp)).toEqual([]);

    const db = t.stores.database.db;
    const lines = async (account: SimAccount) =>
      (
        await sql<{ transaction_id: string; balance_before: string | null; balance_after: string | null; source: string }>`
          select transaction_id, balance_before, balance_after, source from ledger.statement_lines
          where account_id = ${accountIdOf(account.fiId, account.accountNumber)} order by instant, group_seq`.execute(db)
      ).rows;

    await eventually(
      async () => {
        const open = await sql<{ n: string }>`select count(*) as n from ledger.breaks where status = 'open'`.execute(db);
        expect(open.rows[0]?.n).toBe('0');
        for (const account of sim.bank.accounts) {
          const { rows } = await sql<{ balance: string | null }>`
            select balance from ledger.accounts where account_id = ${accountIdOf(account.fiId, account.accountNumber)}`.execute(db);
          expect(rows[0]?.balance, `balance of ${account.fiName} ${account.accountNumber}`).toBe(bankBalance(account).toString());
        }
      },
      { timeoutMs: 20_000, intervalMs: 100 },
    );

    for (const account of sim.bank.accounts) {
      const statement = await lines(account);
      // Reconciled: every line starts from the balance the line before it ended with.
      for (let i = 1; i < statement.length; i += 1) {
        expect(statement[i]!.balance_before, `line ${i} of ${account.accountNumber}`).toBe(statement[i - 1]!.balance_after);
      }
      // Every lost transaction after the first one the ledger saw is back, booked from Cas's history.
      const booked = new Map(statement.map((l) => [l.transaction_id, l.source]));
      const first = account.transactions.findIndex((tx) => booked.has(tx.id));
      const firstAt = account.transactions[first]!.transactionDateTime;
      for (const tx of account.transactions.filter((x) => dropped.has(x.id) && x.transactionDateTime > firstAt)) {
        expect(booked.get(tx.id), `lost transaction ${tx.id}`).toBe('backfill');
      }
      expect(statement.length).toBe(account.transactions.filter((tx) => booked.has(tx.id)).length);
    }

    // The healer did it, and says so on each break it closed.
    const healed = await sql<{ n: string }>`
      select count(*) as n from ledger.breaks
      where resolved_by_source = 'backfill' and last_heal_outcome = 'closed' and heal_attempts >= 1`.execute(db);
    expect(Number(healed.rows[0]?.n)).toBeGreaterThanOrEqual(1);
    const conflicts = await sql<{ n: string }>`select count(*) as n from ledger.anomalies where kind = 'conflict'`.execute(db);
    expect(conflicts.rows[0]?.n).toBe('0');
    expect(sim.requestLog.filter((r) => r.path === '/transactions' && r.errorCode === 'RATE_LIMIT')).toEqual([]);
  });
});

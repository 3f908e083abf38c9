import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import fc from 'fast-check';
import { parse } from 'lossless-json';
import { afterEach, describe, expect, it } from 'vitest';
import { createBankHubClient } from '../../src/infrastructure/bankhub/bankhub-client';
import {
  appendTransactions,
  bankBalance,
  generateBank,
  toCasJson,
  transactionWebhook,
  type CasTransaction,
  type SimAccount,
} from '../../tools/cas-sim/bank';
import { startCasSimulator, type CasSimulator, type CasSimulatorOptions } from '../../tools/cas-sim/server';

/** The keys, in order, of Cas's public transaction webhook sample. */
const SAMPLE_ENVELOPE_KEYS = ['environment', 'webhookType', 'webhookCode', 'error', 'grantId', 'transaction'];
const SAMPLE_TRANSACTION_KEYS = [
  'id', 'transactionCode', 'reference', 'transactionDate', 'transactionDateTime', 'bookingDate', 'amount',
  'description', 'runningBalance', 'accountNumber', 'virtualAccountNumber', 'virtualAccountName', 'paymentChannel',
  'counterAccountNumber', 'counterAccountName', 'counterAccountBankId', 'counterAccountBankName', 'paymentMeta',
  'fiId', 'fiName', 'fiServiceId', 'fiServiceName', 'currency',
];

/** Walks an account's history and checks runningBalance(prev) + amount == runningBalance wherever Cas sends one. */
function checkChain(account: SimAccount): void {
  let balance = account.openingBalance;
  let previous: CasTransaction | undefined;
  for (const tx of account.transactions) {
    expect(tx.amount).not.toBe(0n);
    balance += tx.amount;
    expect(balance).toBeGreaterThanOrEqual(0n);
    if (tx.runningBalance !== null) expect(tx.runningBalance).toBe(balance);
    if (previous?.runningBalance != null && tx.runningBalance !== null) {
      expect(previous.runningBalance + tx.amount).toBe(tx.runningBalance);
    }
    if (previous) expect(tx.transactionDateTime >= previous.transactionDateTime).toBe(true);
    previous = tx;
  }
  expect(bankBalance(account)).toBe(balance);
}

describe('the generated bank', () => {
  it('chains running balances for any seed and null rate, also after new transactions happen', () => {
    fc.assert(
      fc.property(
        fc.string(),
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 0, max: 40 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.integer({ min: 0, max: 10 }),
        (seed, accounts, transactionsPerAccount, nullRunningBalanceRate, more) => {
          const bank = generateBank({ seed, accounts, transactionsPerAccount, nullRunningBalanceRate });
          for (const account of bank.accounts) {
            expect(account.transactions).toHaveLength(transactionsPerAccount);
            appendTransactions(account, more, new Date('2030-01-01T00:00:00Z'));
            checkChain(account);
          }
        },
      ),
      { numRuns: 60 },
    );
  });

  it('makes transactions shaped exactly like the public sample', () => {
    const bank = generateBank({ seed: 'shape', accounts: 10, transactionsPerAccount: 60, nullRunningBalanceRate: 0.1 });
    const all = bank.allTransactions().map(({ transaction }) => transaction);
    for (const tx of all) {
      expect(Object.keys(tx)).toEqual(SAMPLE_TRANSACTION_KEYS);
      expect(tx.id).toMatch(/^[0-9a-f]{32}$/);
      expect(tx.transactionDateTime).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:00\+07:00$/);
      expect(tx.transactionDate).toBe(tx.transactionDateTime.slice(0, 10));
      expect(tx.bookingDate! >= tx.transactionDate).toBe(true);
      expect(tx.currency).toBe('VND');
    }
    // The edges a ledger has to survive are all there.
    expect(all.some((tx) => tx.runningBalance === null)).toBe(true);
    expect(all.some((tx) => tx.amount < 0n) && all.some((tx) => tx.amount > 0n)).toBe(true);
    const diacritics = /[ăâđêôơưạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹ]/i;
    expect(all.some((tx) => diacritics.test(tx.description ?? ''))).toBe(true);
    expect(all.some((tx) => tx.counterAccountName !== null && tx.paymentChannel !== null)).toBe(true);
    const ties = bank.accounts.some((a) =>
      a.transactions.some((tx, i) => i > 0 && a.transactions[i - 1]?.transactionDateTime === tx.transactionDateTime),
    );
    expect(ties).toBe(true);
    expect(bank.accounts.some((a) => a.accountNumber.startsWith('0'))).toBe(true);
    expect(bank.accounts.every((a) => !(a.numericOnWire && a.accountNumber.startsWith('0')))).toBe(true);
    const [first, second] = bank.accounts;
    expect(second?.accountNumber).toBe(first?.accountNumber);
    expect(second?.fiId).not.toBe(first?.fiId);

    const numeric = bank.accounts.find((a) => a.numericOnWire);
    const tx = numeric?.transactions[0];
    if (!numeric || !tx) throw new Error('no account sent as a JSON number');
    expect(toCasJson(tx)).toContain(`"accountNumber":${numeric.accountNumber},`);
    expect(toCasJson(tx)).toContain(`"amount":${tx.amount},`);
  });

  it('wraps a transaction in the webhook envelope of the sample', () => {
    const bank = generateBank({ seed: 'envelope', accounts: 1, transactionsPerAccount: 1 });
    const tx = bank.accounts[0]?.transactions[0];
    if (!tx) throw new Error('no transaction');
    const webhook = parse(toCasJson(transactionWebhook(tx, 'grant-1'))) as Record<string, unknown>;
    expect(Object.keys(webhook)).toEqual(SAMPLE_ENVELOPE_KEYS);
    expect(webhook).toMatchObject({
      environment: 'dev',
      webhookType: 'TRANSACTIONS',
      webhookCode: 'DEFAULT_UPDATE',
      error: null,
      grantId: 'grant-1',
    });
  });

  it('is deterministic by seed, including transactions appended later', () => {
    const run = (seed: string) => {
      const bank = generateBank({ seed, accounts: 4, transactionsPerAccount: 30, nullRunningBalanceRate: 0.2 });
      for (const account of bank.accounts) appendTransactions(account, 5, () => new Date('2024-06-01T03:04:05Z'));
      return toCasJson(bank.accounts.map((a) => ({ ...a, balance: bankBalance(a) })));
    };
    expect(run('alpha')).toBe(run('alpha'));
    expect(run('alpha')).not.toBe(run('beta'));
  });

  it('appends at the clock minute, never before the last transaction', () => {
    const start = '2024-05-01T09:00:00+07:00';
    const bank = generateBank({ seed: 'clock', accounts: 1, transactionsPerAccount: 3, start });
    const account = bank.accounts[0];
    if (!account) throw new Error('no account');
    const later = appendTransactions(account, 2, new Date('2024-07-01T01:02:33Z'));
    expect(later.map((t) => t.transactionDateTime)).toEqual(['2024-07-01T08:02:00+07:00', '2024-07-01T08:02:00+07:00']);
    const earlier = appendTransactions(account, 1, new Date('2020-01-01T00:00:00Z'));
    expect(earlier[0]?.transactionDateTime).toBe('2024-07-01T08:02:00+07:00');
    checkChain(account);
  });
});

// ---- webhook delivery ------------------------------------------------------------------------------------------

interface Target {
  readonly url: string;
  readonly received: { id: string; grantId: string | null; body: Record<string, unknown> }[];
  readonly attemptsById: Map<string, number>;
  close(): Promise<void>;
}

/** A webhook receiver whose answer for each attempt is decided by the test. */
async function startTarget(
  answer: (id: string, attempt: number) => number | 'hang' = () => 200,
): Promise<Target> {
  const received: Target['received'] = [];
  const attemptsById = new Map<string, number>();
  const server: Server = createServer((request: IncomingMessage, response: ServerResponse) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const body = parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
      const id = String((body.transaction as { id?: string } | undefined)?.id ?? body.webhookCode);
      const attempt = (attemptsById.get(id) ?? 0) + 1;
      attemptsById.set(id, attempt);
      const outcome = answer(id, attempt);
      if (outcome === 'hang') return;
      const grantId = (body.grantId as string | null) ?? null;
      if (outcome >= 200 && outcome < 300) received.push({ id, grantId, body });
      response.writeHead(outcome).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no address');
  return {
    url: `http://127.0.0.1:${address.port}/webhooks/secret-path`,
    received,
    attemptsById,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((cleanup) => cleanup()));
});

async function setup(options: Partial<CasSimulatorOptions>, answer?: (id: string, attempt: number) => number | 'hang') {
  const target = await startTarget(answer);
  const sim = await startCasSimulator({
    clientId: 'sim-test',
    secretKey: 'sim-test-secret',
    seed: 'deliveries',
    accounts: 2,
    transactionsPerAccount: 10,
    rateLimitWindowMs: 0,
    ...options,
    webhooks: { targetUrl: target.url, retryScheduleMs: [5, 5, 10, 15, 25], timeoutMs: 1_000, ...options.webhooks },
  });
  cleanups.push(() => target.close(), () => sim.close());
  return { sim, target };
}

async function linkAll(sim: CasSimulator): Promise<{ accessToken: string; grantId: string }[]> {
  const client = createBankHubClient({
    baseUrl: sim.url,
    clientId: 'sim-test',
    secretKey: 'sim-test-secret',
    apiVersion: '2023-01-01',
    scopes: 'transactions',
    maxRetries: 0,
  });
  const banks = [...new Set(sim.bank.accounts.map((a) => a.fiServiceId))];
  const links = [];
  for (const fiServiceId of banks) {
    const { grantToken } = await client.createGrantToken({ redirectUri: 'https://ledger.example/cb', fiServiceId });
    links.push(await client.exchangePublicToken(sim.mintPublicToken(grantToken)));
  }
  return links;
}

describe('the webhook deliverer', () => {
  it('retries each webhook until the target answers 2xx', async () => {
    const { sim, target } = await setup({}, (_id, attempt) => (attempt <= 2 ? 500 : 200));
    const links = await linkAll(sim);
    const report = await sim.deliverWebhooks();
    const all = sim.bank.allTransactions().map(({ transaction }) => transaction.id);
    expect(report.delivered.map((d) => d.attempts)).toEqual(all.map(() => 3));
    expect(new Set(target.received.map((r) => r.id))).toEqual(new Set(all));
    expect(target.received).toHaveLength(all.length);
    // Each webhook names the grant of its account.
    const grantIds = new Set(links.map((l) => l.grantId));
    expect(target.received.every((r) => r.grantId !== null && grantIds.has(r.grantId))).toBe(true);
    expect(report.attempts).toBe(all.length * 3);
  });

  it('counts an attempt without an answer in time as failed, and retries it', async () => {
    const { sim, target } = await setup(
      { accounts: 1, transactionsPerAccount: 3, webhooks: { timeoutMs: 250 } },
      (_id, attempt) => (attempt === 1 ? 'hang' : 204),
    );
    await linkAll(sim);
    const report = await sim.deliverWebhooks();
    expect(report.delivered.map((d) => d.attempts)).toEqual([2, 2, 2]);
    expect(target.received).toHaveLength(3);
  });

  it('gives up when the retry schedule runs out, like Cas after 24 h', async () => {
    const { sim, target } = await setup({ accounts: 1, transactionsPerAccount: 2 }, () => 503);
    await linkAll(sim);
    const report = await sim.deliverWebhooks({ retryScheduleMs: [5, 5, 5] });
    expect(report.delivered).toEqual([]);
    expect(report.gaveUp.map((g) => [g.attempts, g.lastStatus])).toEqual([
      [4, 503],
      [4, 503],
    ]);
    expect([...target.attemptsById.values()]).toEqual([4, 4]);
  });

  it('drops, duplicates and reorders at the configured rates; dropped ones stay in GET /transactions', async () => {
    const { sim, target } = await setup({ accounts: 4, transactionsPerAccount: 100 });
    const links = await linkAll(sim);
    const rates = { dropRate: 0.1, duplicateRate: 0.2, reorderRate: 0.5, reorderWindow: 4 };
    const report = await sim.deliverWebhooks(rates);
    const total = 400;

    expect(report.dropped.length).toBeGreaterThanOrEqual(total * 0.05);
    expect(report.dropped.length).toBeLessThanOrEqual(total * 0.16);
    expect(report.duplicated.length).toBeGreaterThanOrEqual(total * 0.9 * 0.12);
    expect(report.duplicated.length).toBeLessThanOrEqual(total * 0.9 * 0.28);

    const receivedIds = new Set(target.received.map((r) => r.id));
    expect(receivedIds.size).toBe(total - report.dropped.length);
    expect(report.dropped.some((id) => receivedIds.has(id))).toBe(false);
    expect(target.received).toHaveLength(receivedIds.size + report.duplicated.length);
    const copies = new Map<string, number>();
    for (const r of target.received) copies.set(r.id, (copies.get(r.id) ?? 0) + 1);
    expect([...copies].filter(([, n]) => n === 2).map(([id]) => id).sort()).toEqual([...report.duplicated].sort());

    // With one delivery in flight, arrival order is the plan: out of chronological order, but only within the window.
    const chronological = sim.bank
      .allTransactions()
      .map(({ transaction }) => transaction)
      .filter((t) => !report.dropped.includes(t.id))
      .sort((a, b) => a.transactionDateTime.localeCompare(b.transactionDateTime));
    const firstArrivals = target.received.filter((r, i) => target.received.findIndex((x) => x.id === r.id) === i);
    expect(firstArrivals.map((r) => r.id)).not.toEqual(chronological.map((t) => t.id));

    // What the push channel lost, the pull channel still has.
    const client = createBankHubClient({
      baseUrl: sim.url,
      clientId: 'sim-test',
      secretKey: 'sim-test-secret',
      apiVersion: '2023-01-01',
      scopes: 'transactions',
    });
    const pulled = new Set<string>();
    for (const { accessToken } of links) {
      const page = await client.getTransactions(accessToken, { fromDate: '2024-01-01', toDate: '2026-12-31' });
      for (const t of page.transactions) pulled.add((t as { id: string }).id);
    }
    expect(report.dropped.every((id) => pulled.has(id))).toBe(true);
  });

  it('plans the same drops, duplicates and order for the same seed', async () => {
    const plan = async () => {
      const { sim } = await setup({ seed: 'same-plan', accounts: 3, transactionsPerAccount: 40 });
      await linkAll(sim);
      const rates = { dropRate: 0.2, duplicateRate: 0.2, reorderRate: 0.5, reorderWindow: 3 };
      const report = await sim.deliverWebhooks(rates);
      return { dropped: report.dropped, duplicated: report.duplicated, sent: report.sent };
    };
    const [a, b] = [await plan(), await plan()];
    expect(a).toEqual(b);
    expect(a.dropped.length).toBeGreaterThan(0);
  });

  it('sends only what happened since the last delivery, and only for linked accounts', async () => {
    const { sim, target } = await setup({ accounts: 3, transactionsPerAccount: 5 });
    const [account] = sim.bank.accounts;
    if (!account) throw new Error('no account');
    expect((await sim.deliverWebhooks()).sent).toEqual([]);

    const { grantId } = await linkFirst(sim, account.fiServiceId);
    await sim.deliverWebhooks();
    const linkedIds = sim.bank.accounts
      .filter((a) => a.fiId === account.fiId)
      .flatMap((a) => a.transactions.map((t) => t.id));
    expect(target.received.map((r) => r.id).sort()).toEqual([...linkedIds].sort());

    const fresh = appendTransactions(account, 3, new Date());
    const report = await sim.deliverWebhooks();
    expect(report.sent.map((s) => s.transactionId)).toEqual(fresh.map((t) => t.id));
    expect(target.received.slice(-3).map((r) => [r.id, r.grantId])).toEqual(fresh.map((t) => [t.id, grantId]));
  });

  it('delivers GRANT webhooks with the same retries', async () => {
    const { sim, target } = await setup({}, (_id, attempt) => (attempt === 1 ? 500 : 200));
    const [{ grantId } = { grantId: '' }] = await linkAll(sim);
    const error = {
      errorType: 'GRANT_ERROR',
      errorCode: 'GRANT_LOGIN_REQUIRED',
      errorMessage: 'Thông tin đăng nhập đã thay đổi',
    };
    const outcome = await sim.deliverGrantWebhook(grantId, 'ERROR', error);
    expect(outcome).toEqual({ delivered: true, attempts: 2 });
    const expected = { environment: 'dev', webhookType: 'GRANT', webhookCode: 'ERROR', error, grantId };
    expect(target.received[0]?.body).toEqual(expected);
  });
});

async function linkFirst(sim: CasSimulator, fiServiceId: string) {
  const client = createBankHubClient({
    baseUrl: sim.url,
    clientId: 'sim-test',
    secretKey: 'sim-test-secret',
    apiVersion: '2023-01-01',
    scopes: 'transactions',
  });
  const { grantToken } = await client.createGrantToken({ redirectUri: 'https://ledger.example/cb', fiServiceId });
  return client.exchangePublicToken(sim.mintPublicToken(grantToken));
}

import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backfillGrant } from '../../src/application/backfill-grant';
import { type HealDeps, healGaps } from '../../src/application/heal-gaps';
import { sha256 } from '../../src/application/digest';
import { recordTransaction } from '../../src/application/ingest-webhook';
import { reingestQuarantined } from '../../src/application/reingest-quarantined';
import { BankHubError, type TransactionsPage, type TransactionsQuery } from '../../src/application/ports/bankhub';
import type { GrantSecrets } from '../../src/application/ports/grant-secrets';
import { type BankTransaction, transactionToJson } from '../../src/domain/bank-transaction';
import { allProjections } from '../../src/projections/all-projections';
import { accountIdOf } from '../../src/projections/ledger.projection';
import { parse } from 'lossless-json';
import { bankTx, breaksOf, createLedgerContext, type LedgerContext } from '../support/ledger';

/** Cas as a test double: the transactions it holds per grant, and a switch to make it fail; linking is not used here. */
function fakeCas() {
  const held = new Map<string, BankTransaction[]>();
  const calls: { token: string; query: TransactionsQuery }[] = [];
  let failure: BankHubError | null = null;
  return {
    held,
    calls,
    fail: (error: BankHubError | null) => (failure = error),
    createGrantToken: () => Promise.reject(new Error('not used by backfill')),
    exchangePublicToken: () => Promise.reject(new Error('not used by backfill')),
    getIdentity: () => Promise.reject(new Error('not used by backfill')),
    async getTransactions(token: string, query: TransactionsQuery): Promise<TransactionsPage> {
      calls.push({ token, query });
      if (failure) throw failure;
      const grantId = token.replace(/^token-/, '');
      const wanted = query.accounts?.map((a) => a.accountNumber);
      const transactions = (held.get(grantId) ?? [])
        .filter((t) => t.transactionDate >= query.fromDate && t.transactionDate <= query.toDate)
        .filter((t) => !wanted || wanted.includes(t.accountNumber))
        .map((t) => transactionToJson(t) as unknown);
      const rawBody = JSON.stringify({ requestId: 'cas-req-1', transactions });
      return { transactions, rawBody, requestId: 'cas-req-1' };
    },
  };
}

const secrets: GrantSecrets = {
  save: async () => {},
  accessTokenOf: async (grantId) => (grantId.startsWith('grant-') ? `token-${grantId}` : null),
};

let ctx: LedgerContext;
let now = new Date('2026-06-01T00:00:00Z');
const cas = fakeCas();
let deps: HealDeps;

beforeAll(async () => {
  // The root's healing, with Cas, its secrets and the clock replaced; the grants read model is there (and empty).
  ctx = await createLedgerContext('heal', {
    env: { BANKHUB_RATE_LIMIT_MS: '0', HEAL_AFTER_SECONDS: '600' },
    overrides: { bankHubClient: cas, grantSecrets: secrets, clock: () => now, projections: allProjections() },
  });
  // The ledger is projected here, in line, rather than by a runner.
  deps = { ...ctx.root.resolve('heal')!, waitForProjection: () => ctx.project() };
});
afterAll(async () => {
  await ctx?.close();
});

const at = (day: number, minute: number) => new Date(Date.parse(`2026-03-0${day}T09:00:00+07:00`) + minute * 60_000).toISOString();

/** Three transactions of a chain; the middle one is what the webhooks lost. */
async function gap(accountNumber: string, grantId: string | null) {
  const acct = { fiId: 'fi-heal', accountNumber };
  const t1 = bankTx({ ...acct, amount: 100n, runningBalance: 100n, transactionDateTime: at(1, 0), transactionDate: '2026-03-01' });
  const t2 = bankTx({ ...acct, amount: 20n, runningBalance: 120n, transactionDateTime: at(2, 0), transactionDate: '2026-03-02' });
  const t3 = bankTx({ ...acct, amount: -50n, runningBalance: 70n, transactionDateTime: at(3, 0), transactionDate: '2026-03-03' });
  for (const tx of [t1, t3]) {
    await recordTransaction(ctx.store, {
      transaction: tx,
      source: 'webhook',
      grantId,
      metadata: { receivedAt: '2026-05-01T00:00:00.000Z', source: 'webhook' },
      attachment: '{}',
    });
  }
  await ctx.project();
  return { acct, t1, t2, t3 };
}

const breakRow = async (accountNumber: string) => {
  const { rows } = await sql<{
    status: string;
    resolved_by_source: string | null;
    heal_attempts: number;
    last_heal_outcome: string | null;
    last_heal_detail: string | null;
  }>`select * from ledger.breaks where account_id = ${accountIdOf('fi-heal', accountNumber)} order by opened_at`.execute(ctx.database.db);
  return rows[0];
};

describe('healing gaps from Cas', () => {
  it('books the lost transaction as backfill and records that the break closed', async () => {
    const { t2 } = await gap('100', 'grant-a');
    cas.held.set('grant-a', [t2]);
    expect(await healGaps(deps)).toEqual({ attempted: 1, closed: 1, notClosed: 0, failed: 0 });
    expect(cas.calls.at(-1)?.query).toEqual({ fromDate: '2026-03-01', toDate: '2026-03-03', accounts: [{ accountNumber: '100', fromReference: '' }] });
    await ctx.project();
    expect(await breakRow('100')).toMatchObject({
      status: 'resolved',
      resolved_by_source: 'backfill',
      heal_attempts: 1,
      last_heal_outcome: 'closed',
      last_heal_detail: 'filled',
    });
    const [booked] = await ctx.store.readStream(`bankTx-${t2.id}`, { withAttachments: true });
    expect(booked?.data).toMatchObject({ source: 'backfill', grantId: 'grant-a' });
    const text = JSON.stringify(transactionToJson(t2));
    expect(booked?.attachment).toBe(text);
    expect(booked?.metadata).toMatchObject({
      source: 'backfill',
      rawSha256: sha256(text),
      casRequestId: 'cas-req-1',
      receivedAt: now.toISOString(),
    });
  });

  it('says not_closed when Cas has nothing that fills it, and asks again only after HEAL_AFTER_SECONDS', async () => {
    await gap('200', 'grant-b');
    expect(await healGaps(deps)).toMatchObject({ attempted: 1, notClosed: 1 });
    await ctx.project();
    expect(await breakRow('200')).toMatchObject({ status: 'open', heal_attempts: 1, last_heal_outcome: 'not_closed' });

    const calls = cas.calls.length;
    now = new Date(now.getTime() + 60_000);
    expect(await healGaps(deps)).toMatchObject({ attempted: 0 });
    expect(cas.calls.length).toBe(calls);

    now = new Date(now.getTime() + 600_000);
    expect(await healGaps(deps)).toMatchObject({ attempted: 1, notClosed: 1 });
    await ctx.project();
    expect(await breakRow('200')).toMatchObject({ heal_attempts: 2 });
  });

  it('says failed with the Cas error code when Cas cannot be asked', async () => {
    await gap('300', 'grant-c');
    cas.fail(new BankHubError({ errorCode: 'GRANT_LOGIN_REQUIRED', errorType: 'GRANT_ERROR', errorMessage: null, requestId: 'x', httpStatus: 400, retryable: false }));
    now = new Date(now.getTime() + 3_600_000);
    const report = await healGaps(deps);
    cas.fail(null);
    expect(report.failed).toBeGreaterThanOrEqual(1);
    await ctx.project();
    expect(await breakRow('300')).toMatchObject({ status: 'open', last_heal_outcome: 'failed', last_heal_detail: 'GRANT_LOGIN_REQUIRED' });
  });

  it('says failed when no grant is known for the account, or none is linked here', async () => {
    await gap('400', null);
    await gap('500', 'elsewhere-linked');
    now = new Date(now.getTime() + 3_600_000);
    await healGaps(deps);
    await ctx.project();
    expect(await breakRow('400')).toMatchObject({ last_heal_outcome: 'failed', last_heal_detail: 'NO_GRANT' });
    expect(await breakRow('500')).toMatchObject({ last_heal_outcome: 'failed', last_heal_detail: 'GRANT_NOT_LINKED' });
  });

  it('does not heal a break younger than HEAL_AFTER_SECONDS', async () => {
    const { acct } = await gap('600', 'grant-f');
    const young = { ...deps, healAfterMs: 365 * 86_400_000 };
    const calls = cas.calls.length;
    expect(await healGaps(young)).toMatchObject({ attempted: 0 });
    expect(cas.calls.length).toBe(calls);
    expect(await breaksOf(ctx, acct.fiId, acct.accountNumber)).toMatchObject([{ status: 'open' }]);
  });
});

describe('backfill of items that fail validation', () => {
  /** A backfill item as an older version quarantined it. */
  const quarantineItem = (text: string, casRequestId: string) =>
    deps.backfill.quarantine.put({
      rawBody: new TextEncoder().encode(text),
      bodySha256: sha256(text),
      contentType: 'application/json',
      problems: [{ field: 'amount', message: 'was refused by an older version' }],
      source: 'backfill',
      requestId: casRequestId,
      remoteAddress: null,
      receivedAt: new Date('2026-05-02T00:00:00Z'),
    });

  it('quarantines them with source backfill, exactly as Cas sent them, and books the rest', async () => {
    const good = bankTx({ fiId: 'fi-q', accountNumber: '700', amount: 5n, runningBalance: 5n });
    const bad = '{"id":"badbadbad","amount":1.5,"runningBalance":12345678901234567890,"accountNumber":700,"fiId":"fi-q","currency":"VND"}';
    const page = parse(`{"requestId":"cas-req-9","transactions":[${JSON.stringify(transactionToJson(good))},${bad}]}`) as {
      transactions: unknown[];
    };
    const result = await backfillGrant(
      { ...deps.backfill, bankHub: { getTransactions: async () => ({ transactions: page.transactions, rawBody: 'raw', requestId: 'cas-req-9' }) } },
      { grantId: 'grant-q', from: '2026-03-01', to: '2026-03-02' },
    );
    expect(result).toEqual({
      ok: true,
      value: {
        fetched: 2,
        accepted: 1,
        duplicates: 0,
        conflicts: 0,
        invalid: 1,
        casRequestId: 'cas-req-9',
        recovered: [{ transactionId: good.id, fiId: 'fi-q', accountNumber: '700', transactionDate: good.transactionDate }],
      },
    });
    const [listed] = (await deps.backfill.quarantine.list({ pendingOnly: false, limit: 10 })).filter((q) => q.source === 'backfill');
    const entry = await deps.backfill.quarantine.get(listed!.id);
    // Every digit as Cas sent it, also past 2^53.
    expect(Buffer.from(entry!.rawBody).toString('utf8')).toBe(bad);
    expect(listed!.byteLength).toBe(Buffer.byteLength(bad));
    expect(entry).toMatchObject({ bodySha256: sha256(bad), requestId: 'cas-req-9' });
    expect(entry!.problems.map((p) => p.field)).toEqual(expect.arrayContaining(['amount', 'transactionDate']));
  });

  it('refuses by the webhook\'s rules what the books cannot hold: out of range, bad dates, NUL, half a surrogate', async () => {
    const good = bankTx({ fiId: 'fi-q', accountNumber: '702', amount: 5n, runningBalance: 5n });
    const item = (change: Record<string, unknown>) => ({ ...transactionToJson(good), ...change });
    const bad = [
      item({ id: 'bf-range', amount: '1000000000000000000000000000000' }),
      item({ id: 'bf-before', amount: '-4611686018427387903', runningBalance: '4611686018427387903' }),
      item({ id: 'bf-year', transactionDate: '0000-01-01' }),
      item({ id: 'bf-utc', transactionDateTime: '0001-01-01T00:00:00+14:00' }),
      item({ id: 'bf-nul', description: 'a\u0000b' }),
      item({ id: 'bf-half', counterAccountName: 'x\ud800' }),
    ];
    const result = await backfillGrant(
      { ...deps.backfill, bankHub: { getTransactions: async () => ({ transactions: [item({}), ...bad], rawBody: 'raw', requestId: 'cas-req-11' }) } },
      { grantId: 'grant-q', from: '2026-03-01', to: '2026-03-02' },
    );
    expect(result).toMatchObject({ ok: true, value: { fetched: 7, accepted: 1, invalid: 6 } });
    const entries = (await deps.backfill.quarantine.list({ pendingOnly: false, limit: 100 })).filter((q) => q.requestId === 'cas-req-11');
    expect(entries.flatMap((e) => e.problems.map((p) => p.field)).sort()).toEqual(
      ['amount', 'counterAccountName', 'description', 'runningBalance', 'transactionDate', 'transactionDateTime'].sort(),
    );
    for (const tx of bad) expect(await ctx.store.readStream(`bankTx-${tx.id}`)).toEqual([]);
  });

  it('re-ingests by the same rules: a quarantined item with NUL stays quarantined', async () => {
    const text = JSON.stringify(transactionToJson(bankTx({ fiId: 'fi-q', accountNumber: '703', amount: 1n, runningBalance: 1n, description: 'x\u0000' })));
    const id = await quarantineItem(text, 'cas-req-12');
    const result = await reingestQuarantined({ eventStore: ctx.store, quarantine: deps.backfill.quarantine }, id, now);
    expect(result).toMatchObject({ status: 'still_invalid', problems: [{ field: 'description', message: expect.stringMatching(/U\+0000/) }] });
  });

  it('books a quarantined backfill item on reingest once it validates, as backfill', async () => {
    const fixed = bankTx({ fiId: 'fi-q', accountNumber: '701', amount: 7n, runningBalance: 7n });
    const text = JSON.stringify(transactionToJson(fixed));
    const id = await quarantineItem(text, 'cas-req-10');
    const result = await reingestQuarantined({ eventStore: ctx.store, quarantine: deps.backfill.quarantine }, id, now);
    expect(result).toMatchObject({ status: 'ingested', outcome: { status: 'accepted' } });
    const [booked] = await ctx.store.readStream(`bankTx-${fixed.id}`, { withAttachments: true });
    expect(booked?.data).toMatchObject({ source: 'backfill' });
    expect(booked?.attachment).toBe(text);
    expect(booked?.metadata).toMatchObject({ receivedAt: '2026-05-02T00:00:00.000Z', casRequestId: 'cas-req-10' });
  });
});

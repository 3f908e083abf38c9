import { LosslessNumber } from 'lossless-json';
import { accountKey, bankBalance, createRng, generateBank, type CasTransaction, type Rng, type SimAccount, type SimBank } from './bank';
import type { CasSimulatorOptions, SimFailure, SimGrant, SimRequestRecord } from './types';

/**
 * What the simulated Cas knows (grant and public tokens, grants, the rate-limit windows, what the deliverer has
 * been handed) and the rules of Cas's calls over it, as functions that throw Cas's errors. The REST API
 * (rest-api.ts) and the webhook deliverer (webhook-deliverer.ts) both work on one state.
 */
export interface SimState {
  readonly options: CasSimulatorOptions;
  readonly bank: SimBank;
  /** Ids and tokens, drawn in request order from the seed. */
  readonly ids: Rng;
  readonly now: () => number;
  readonly grantTokens: Map<string, { redirectUri: string; scopes: string; fiServiceId: string | null; expiresAt: number; used: boolean }>;
  readonly publicTokens: Map<string, { scopes: string; fiId: string; expiresAt: number; used: boolean }>;
  readonly grants: Map<string, SimGrant>;
  readonly grantsByToken: Map<string, SimGrant>;
  /** GET /transactions calls per grant, for the rate limit. */
  readonly transactionCalls: Map<string, number[]>;
  /** Transactions the webhook deliverer has sent, dropped or given up on. */
  readonly handed: Set<string>;
  readonly requestLog: SimRequestRecord[];
  failure: (SimFailure & { remaining: number }) | null;
}

export class CasFailure extends Error {
  constructor(
    readonly status: number,
    readonly errorCode: string,
    readonly errorType: string,
    message: string,
    readonly retryAfterSeconds: number | null = null,
  ) {
    super(message);
  }
}

export const invalidParam = (message: string): CasFailure => new CasFailure(400, 'INVALID_PARAM', 'INVALID_REQUEST', message);

const DATE = /^\d{4}-\d{2}-\d{2}$/;
const HISTORY_MONTHS = 36;

export function createSimState(options: CasSimulatorOptions): SimState {
  return {
    options,
    bank:
      options.bank ??
      generateBank({
        ...options.bankOptions,
        seed: options.seed,
        accounts: options.accounts ?? 3,
        transactionsPerAccount: options.transactionsPerAccount ?? 20,
      }),
    ids: createRng(options.seed, 'ids'),
    now: options.now ?? Date.now,
    grantTokens: new Map(),
    publicTokens: new Map(),
    grants: new Map(),
    grantsByToken: new Map(),
    transactionCalls: new Map(),
    handed: new Set(),
    requestLog: [],
    failure: null,
  };
}

export const uuid = (rng: Rng): string => {
  const h = rng.hex(32);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
};

/** Each bank of the simulated bank's accounts, once. */
export function banksOf(state: SimState): { fiId: string; fiServiceId: string }[] {
  const seen = new Map<string, { fiId: string; fiServiceId: string }>();
  for (const a of state.bank.accounts) {
    if (!seen.has(a.fiId)) seen.set(a.fiId, { fiId: a.fiId, fiServiceId: a.fiServiceId });
  }
  return [...seen.values()];
}

/** An account as /identity (and /transactions) list it. */
export const identityOf = (a: SimAccount): Record<string, unknown> => ({
  accountNumber: a.numericOnWire ? new LosslessNumber(a.accountNumber) : a.accountNumber,
  accountName: a.accountName,
  currency: a.currency,
  balance: bankBalance(a),
  fiId: a.fiId,
  fiName: a.fiName,
});

/** POST /grant/token: a single-use grant token for Cas Link. */
export function issueGrantToken(state: SimState, body: Record<string, unknown>): { grantToken: string; expiresAt: number } {
  const { redirectUri, scopes, fiServiceId, language } = body;
  if (typeof redirectUri !== 'string' || !/^https?:\/\/[^?#\s]+$/.test(redirectUri)) {
    throw invalidParam('redirectUri không hợp lệ (không được có query string)');
  }
  if (state.options.redirectUris !== undefined && !state.options.redirectUris.includes(redirectUri)) {
    throw invalidParam('redirectUri chưa được đăng ký');
  }
  if (typeof scopes !== 'string' || scopes.trim() === '') throw invalidParam('scopes là bắt buộc');
  if (language !== undefined && language !== 'vi' && language !== 'en') throw invalidParam('language không hợp lệ');
  if (fiServiceId !== undefined && fiServiceId !== null) {
    if (typeof fiServiceId !== 'string' || !banksOf(state).some((b) => b.fiServiceId === fiServiceId)) {
      throw new CasFailure(404, 'FI_NOT_FOUND', 'INVALID_REQUEST', 'Không tìm thấy fiServiceId');
    }
  }
  const grantToken = `grant-${state.ids.hex(32)}`;
  const expiresAt = state.now() + (state.options.grantTokenTtlMs ?? 30 * 60_000);
  state.grantTokens.set(grantToken, { redirectUri, scopes, fiServiceId: typeof fiServiceId === 'string' ? fiServiceId : null, expiresAt, used: false });
  return { grantToken, expiresAt };
}

/** What Cas Link does after the user logs in to a bank: a single-use public token for the grant token. */
export function mintPublicToken(state: SimState, grantToken: string, choice: { fiId?: string; fiServiceId?: string } = {}): string {
  const entry = state.grantTokens.get(grantToken);
  if (!entry) throw invalidParam('grantToken không hợp lệ');
  // A grant token is single-use and lives 30 minutes; both failures read as expired.
  if (entry.used || state.now() > entry.expiresAt) {
    throw new CasFailure(400, 'GRANT_TOKEN_EXPIRED', 'GRANT_ERROR', 'grantToken đã hết hạn');
  }
  const all = banksOf(state);
  const wanted = entry.fiServiceId ?? choice.fiServiceId ?? null;
  const linked = new Set([...state.grants.values()].filter((g) => g.status !== 'revoked').map((g) => g.fiId));
  const target =
    wanted !== null || choice.fiId !== undefined
      ? all.find((b) => b.fiServiceId === wanted || b.fiId === choice.fiId)
      : (all.find((b) => !linked.has(b.fiId)) ?? all[0]);
  if (!target) throw new CasFailure(404, 'FI_NOT_FOUND', 'INVALID_REQUEST', 'Không tìm thấy ngân hàng');
  entry.used = true;
  const publicToken = `public-${state.ids.hex(32)}`;
  state.publicTokens.set(publicToken, {
    scopes: entry.scopes,
    fiId: target.fiId,
    expiresAt: state.now() + (state.options.publicTokenTtlMs ?? 30 * 60_000),
    used: false,
  });
  return publicToken;
}

/** POST /grant/exchange: the public token (once) for a grant of the bank's accounts and its access token. */
export function exchangePublicToken(state: SimState, publicToken: unknown): SimGrant {
  if (typeof publicToken !== 'string' || publicToken === '') throw invalidParam('publicToken là bắt buộc');
  const entry = state.publicTokens.get(publicToken);
  // Cas publishes no code for a reused public token; INVALID_PARAM is the simulator's choice.
  if (!entry || entry.used) throw invalidParam('publicToken không hợp lệ hoặc đã được sử dụng');
  if (state.now() > entry.expiresAt) {
    throw new CasFailure(400, 'GRANT_TOKEN_EXPIRED', 'GRANT_ERROR', 'publicToken đã hết hạn');
  }
  entry.used = true;
  const accounts = state.bank.accounts.filter((a) => a.fiId === entry.fiId);
  const grant: SimGrant = {
    grantId: uuid(state.ids),
    accessToken: `access-${state.ids.hex(40)}`,
    fiId: entry.fiId,
    fiServiceId: accounts[0]?.fiServiceId ?? '',
    accountKeys: accounts.map(accountKey),
    scopes: entry.scopes,
    linkedAt: new Date(state.now()),
    status: 'active',
  };
  state.grants.set(grant.grantId, grant);
  state.grantsByToken.set(grant.accessToken, grant);
  return grant;
}

/** The grant an access token (the Authorization header, raw) stands for, as long as it may be used. */
export function grantFor(state: SimState, token: string | undefined): SimGrant {
  if (typeof token !== 'string' || token === '') throw invalidParam('Thiếu header Authorization');
  const grant = state.grantsByToken.get(token);
  if (!grant || grant.status === 'revoked') {
    throw new CasFailure(404, 'GRANT_NOT_FOUND', 'GRANT_ERROR', 'Không tìm thấy grant');
  }
  if (grant.status === 'login_required') {
    throw new CasFailure(400, 'GRANT_LOGIN_REQUIRED', 'GRANT_ERROR', 'Thông tin đăng nhập đã thay đổi');
  }
  return grant;
}

export const accountsOf = (state: SimState, grant: SimGrant): SimAccount[] =>
  state.bank.accounts.filter((a) => grant.accountKeys.includes(accountKey(a)));

/**
 * GET /transactions: the grant's transactions dated in [fromDate, toDate] (36 months back at most), after each
 * account's `fromReference`, within Cas's rate limit per grant.
 */
export function listTransactions(
  state: SimState,
  grant: SimGrant,
  query: Record<string, string | undefined>,
): { transactions: CasTransaction[]; accounts: SimAccount[] } {
  const { fromDate, toDate } = query;
  if (!fromDate || !toDate || !isDate(fromDate) || !isDate(toDate)) {
    throw invalidParam('fromDate và toDate phải có dạng YYYY-MM-DD');
  }
  if (fromDate > toDate) throw invalidParam('fromDate phải trước toDate');
  if (fromDate < monthsBefore(toDate, HISTORY_MONTHS)) throw invalidParam('Chỉ lấy được lịch sử 36 tháng');

  const owned = accountsOf(state, grant);
  const selection = query.accounts === undefined ? owned.map((account) => ({ account, fromReference: '' })) : parseAccountsParam(query.accounts, owned);
  countTransactionsCall(state, grant);

  const transactions: CasTransaction[] = [];
  for (const { account, fromReference } of selection) {
    let history = account.transactions as CasTransaction[];
    if (fromReference !== '') {
      const index = history.findIndex((t) => t.id === fromReference || t.reference === fromReference);
      if (index < 0) throw invalidParam(`fromReference ${fromReference} không tồn tại`);
      history = history.slice(index + 1);
    }
    transactions.push(...history.filter((t) => t.transactionDate >= fromDate && t.transactionDate <= toDate));
  }
  if ((state.options.shapes?.transactionsOrder ?? 'asc') === 'desc') transactions.reverse();
  return { transactions, accounts: selection.map(({ account }) => account) };
}

/** Cas allows about one GET /transactions per grant a minute: past `rateLimitCalls` in the window, RATE_LIMIT. */
function countTransactionsCall(state: SimState, grant: SimGrant): void {
  const { now, options } = state;
  const windowMs = options.rateLimitWindowMs ?? 60_000;
  const calls = (state.transactionCalls.get(grant.grantId) ?? []).filter((at) => at > now() - windowMs);
  if (calls.length >= (options.rateLimitCalls ?? 1)) {
    const waitMs = (calls[0] ?? now()) + windowMs - now();
    throw new CasFailure(
      429,
      'RATE_LIMIT',
      'RATE_LIMIT_ERROR',
      'Vượt quá giới hạn số lần gọi, vui lòng thử lại sau',
      options.retryAfterHeader ? Math.max(1, Math.ceil(waitMs / 1000)) : null,
    );
  }
  calls.push(now());
  state.transactionCalls.set(grant.grantId, calls);
}

/** The live grant that holds an account (the latest linked), or null. */
export function grantIdOf(state: SimState, fiId: string, accountNumber: string): string | null {
  const key = `${fiId}:${accountNumber}`;
  const matching = [...state.grants.values()].filter((g) => g.status !== 'revoked' && g.accountKeys.includes(key));
  return matching.at(-1)?.grantId ?? null;
}

/** The accounts of every grant not revoked. */
export function linkedAccounts(state: SimState): SimAccount[] {
  const keys = new Set([...state.grants.values()].filter((g) => g.status !== 'revoked').flatMap((g) => g.accountKeys));
  return state.bank.accounts.filter((a) => keys.has(accountKey(a)));
}

/** Transactions of the accounts that the deliverer has not yet been handed, in the bank's time order. */
export const pendingTransactions = (state: SimState, accounts: readonly SimAccount[] = state.bank.accounts): CasTransaction[] =>
  accounts
    .flatMap((a) => a.transactions.filter((t) => !state.handed.has(t.id)))
    .map((t, i) => ({ t, i }))
    .sort((x, y) => x.t.transactionDateTime.localeCompare(y.t.transactionDateTime) || x.i - y.i)
    .map(({ t }) => t);

function parseAccountsParam(text: string, owned: readonly SimAccount[]): { account: SimAccount; fromReference: string }[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw invalidParam('accounts phải là JSON');
  }
  if (!Array.isArray(parsed)) throw invalidParam('accounts phải là một mảng');
  return parsed.map((item: unknown) => {
    if (typeof item !== 'object' || item === null) throw invalidParam('accounts[] phải là object');
    const { accountNumber, fromReference } = item as Record<string, unknown>;
    if (typeof fromReference !== 'string') throw invalidParam('fromReference phải là chuỗi');
    if (typeof accountNumber !== 'string' && typeof accountNumber !== 'number') {
      throw invalidParam('accountNumber là bắt buộc');
    }
    const account = owned.find((a) => a.accountNumber === String(accountNumber));
    if (!account) throw invalidParam(`Tài khoản ${String(accountNumber)} không thuộc grant này`);
    return { account, fromReference };
  });
}

function isDate(text: string): boolean {
  if (!DATE.test(text)) return false;
  const date = new Date(`${text}T00:00:00Z`);
  return !Number.isNaN(date.getTime()) && date.toISOString().slice(0, 10) === text;
}

function monthsBefore(date: string, months: number): string {
  const d = new Date(`${date}T00:00:00Z`);
  d.setUTCMonth(d.getUTCMonth() - months);
  return d.toISOString().slice(0, 10);
}

import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify';
import { LosslessNumber } from 'lossless-json';
import {
  accountKey,
  bankBalance,
  createRng,
  generateBank,
  grantWebhook,
  toCasJson,
  transactionWebhook,
  type CasTransaction,
  type CasWebhook,
  type CasWebhookError,
  type Rng,
  type SimAccount,
  type SimBank,
  type SimBankOptions,
} from './bank';

/**
 * A local stand-in for Cas BankHub: the four REST calls in their documented shapes and error codes, Cas Link reduced
 * to one redirect, and a webhook deliverer that retries, duplicates, reorders and drops the way Cas may.
 * Where Cas's public material is silent (HTTP statuses, the code for bad credentials) the choice is marked.
 */

export type SimEndpoint = '/grant/token' | '/grant/exchange' | '/identity' | '/transactions';

export interface SimShapes {
  /** The sandbox answers /grant/token with expiredAt; the docs say expiration. */
  readonly expirationField?: 'expiredAt' | 'expiration';
  readonly expirationFormat?: 'iso' | 'epoch-seconds' | 'epoch-ms';
  /** Wrap /identity and /transactions payloads in `data`. */
  readonly dataEnvelope?: boolean;
  readonly transactionsOrder?: 'asc' | 'desc';
}

export interface WebhookDeliveryOptions {
  readonly targetUrl?: string;
  /** Never delivered; still visible in GET /transactions. */
  readonly dropRate?: number;
  /** Delivered twice (the copy a little later). */
  readonly duplicateRate?: number;
  /** Chance that a webhook is moved up to `reorderWindow` places later. */
  readonly reorderRate?: number;
  readonly reorderWindow?: number;
  /** Waits before each retry; Cas's is Fibonacci in minutes, the default is the same in tens of milliseconds. */
  readonly retryScheduleMs?: readonly number[];
  /** An attempt without an answer in this time counts as failed. */
  readonly timeoutMs?: number;
  /** Attempts in flight at once. */
  readonly concurrency?: number;
}

export interface CasSimulatorOptions {
  readonly port?: number;
  readonly host?: string;
  readonly clientId: string;
  readonly secretKey: string;
  readonly apiVersion?: string;
  readonly seed: number | string;
  readonly accounts?: number;
  readonly transactionsPerAccount?: number;
  readonly bankOptions?: Omit<SimBankOptions, 'seed' | 'accounts' | 'transactionsPerAccount'>;
  /** Use this bank instead of generating one. */
  readonly bank?: SimBank;
  /** Registered redirect URIs; when given, /grant/token refuses others. */
  readonly redirectUris?: readonly string[];
  readonly grantTokenTtlMs?: number;
  readonly publicTokenTtlMs?: number;
  /** GET /transactions calls allowed per grant per window (Cas: about one a minute). */
  readonly rateLimitWindowMs?: number;
  readonly rateLimitCalls?: number;
  /** Cas does not document Retry-After; send it only when a test wants it. */
  readonly retryAfterHeader?: boolean;
  readonly shapes?: SimShapes;
  /** Epoch milliseconds; lets a test move time for token expiry and the rate limit. */
  readonly now?: () => number;
  readonly webhooks?: WebhookDeliveryOptions;
}

export type SimGrantStatus = 'active' | 'login_required' | 'revoked';

export interface SimGrant {
  readonly grantId: string;
  readonly accessToken: string;
  readonly fiId: string;
  readonly fiServiceId: string;
  readonly accountKeys: readonly string[];
  readonly scopes: string;
  readonly linkedAt: Date;
  status: SimGrantStatus;
}

export interface SimFailure {
  readonly endpoint?: SimEndpoint | '*';
  /** How many matching requests fail; default: all until cleared. */
  readonly times?: number;
  /** Answer only after this long (a client with a shorter timeout sees a timeout). */
  readonly delayMs?: number;
  readonly status?: number;
  readonly errorCode?: string;
  readonly errorType?: string;
  readonly errorMessage?: string;
  /** Send this body verbatim (e.g. an HTML 502 page) instead of a Cas error. */
  readonly rawBody?: string;
}

export interface SimRequestRecord {
  readonly method: string;
  readonly path: string;
  readonly status: number;
  readonly errorCode: string | null;
  readonly at: number;
}

export interface DeliveredWebhook {
  readonly transactionId: string;
  readonly fiId: string;
  readonly accountNumber: string;
  readonly grantId: string | null;
  /** 0 for the first copy, 1 for a duplicate. */
  readonly copy: number;
  readonly attempts: number;
}

export interface DeliveryReport {
  readonly delivered: readonly DeliveredWebhook[];
  readonly dropped: readonly string[];
  readonly duplicated: readonly string[];
  /** Copies still failing when the retry schedule ran out: lost to the push channel, as after Cas's 24 h. */
  readonly gaveUp: readonly { transactionId: string; copy: number; attempts: number; lastStatus: number | null }[];
  /** The order the copies were first sent in. */
  readonly sent: readonly { transactionId: string; copy: number }[];
  readonly attempts: number;
}

export interface DeliverWebhooksOptions extends WebhookDeliveryOptions {
  /** Default: the accounts of active grants. Any account may be named; one without a grant gets grantId null. */
  readonly accounts?: readonly SimAccount[];
  /** Deliver exactly these (again, if already sent); default: those of `accounts` not yet handed to the deliverer. */
  readonly transactions?: readonly CasTransaction[];
}

export interface CasSimulator {
  readonly url: string;
  readonly bank: SimBank;
  readonly grants: ReadonlyMap<string, SimGrant>;
  readonly requestLog: readonly SimRequestRecord[];
  close(): Promise<void>;
  setFailure(failure: SimFailure | null): void;
  /** What Cas Link does after the user logs in to a bank: a single-use public token for the grant token. */
  mintPublicToken(grantToken: string, choice?: { fiId?: string; fiServiceId?: string }): string;
  /** The browser URL of the simulated Cas Link. */
  linkUrl(grantToken: string, redirectUri: string): string;
  setGrantStatus(grantId: string, status: SimGrantStatus): void;
  deliverWebhooks(options?: DeliverWebhooksOptions): Promise<DeliveryReport>;
  /** A GRANT webhook (e.g. ERROR / GRANT_LOGIN_REQUIRED), sent with the same retries. */
  deliverGrantWebhook(
    grantId: string,
    webhookCode: string,
    error?: CasWebhookError | null,
    options?: WebhookDeliveryOptions,
  ): Promise<{ delivered: boolean; attempts: number }>;
  /** Transactions of every account that the deliverer has not yet sent, dropped or given up on. */
  pendingTransactions(accounts?: readonly SimAccount[]): CasTransaction[];
}

export const SIM_API_VERSION = '2023-01-01';

/** Fibonacci delays, in `unitMs` steps: Cas's 17 retries over 24 h, shrunk for tests. */
export function fibonacciScheduleMs(retries: number, unitMs: number): number[] {
  const out: number[] = [];
  let [a, b] = [1, 2];
  for (let i = 0; i < retries; i += 1) {
    out.push(a * unitMs);
    [a, b] = [b, a + b];
  }
  return out;
}

class CasFailure extends Error {
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

const invalidParam = (message: string): CasFailure => new CasFailure(400, 'INVALID_PARAM', 'INVALID_REQUEST', message);

const DATE = /^\d{4}-\d{2}-\d{2}$/;
const HISTORY_MONTHS = 36;

export async function startCasSimulator(options: CasSimulatorOptions): Promise<CasSimulator> {
  const apiVersion = options.apiVersion ?? SIM_API_VERSION;
  const now = options.now ?? Date.now;
  const shapes = options.shapes ?? {};
  const grantTokenTtlMs = options.grantTokenTtlMs ?? 30 * 60_000;
  const publicTokenTtlMs = options.publicTokenTtlMs ?? 30 * 60_000;
  const rateLimitWindowMs = options.rateLimitWindowMs ?? 60_000;
  const rateLimitCalls = options.rateLimitCalls ?? 1;
  const bank =
    options.bank ??
    generateBank({
      ...options.bankOptions,
      seed: options.seed,
      accounts: options.accounts ?? 3,
      transactionsPerAccount: options.transactionsPerAccount ?? 20,
    });
  const ids = createRng(options.seed, 'ids');
  let deliveryRound = 0;

  const grantTokens = new Map<
    string,
    { redirectUri: string; scopes: string; fiServiceId: string | null; expiresAt: number; used: boolean }
  >();
  const publicTokens = new Map<string, { scopes: string; fiId: string; expiresAt: number; used: boolean }>();
  const grants = new Map<string, SimGrant>();
  const grantsByToken = new Map<string, SimGrant>();
  const transactionCalls = new Map<string, number[]>();
  const handed = new Set<string>();
  const requestLog: SimRequestRecord[] = [];
  let failure: (SimFailure & { remaining: number }) | null = null;

  const uuid = (rng: Rng): string => {
    const h = rng.hex(32);
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  };
  const banks = (): { fiId: string; fiServiceId: string }[] => {
    const seen = new Map<string, { fiId: string; fiServiceId: string }>();
    for (const a of bank.accounts) {
      if (!seen.has(a.fiId)) seen.set(a.fiId, { fiId: a.fiId, fiServiceId: a.fiServiceId });
    }
    return [...seen.values()];
  };
  const identityOf = (a: SimAccount): Record<string, unknown> => ({
    accountNumber: a.numericOnWire ? new LosslessNumber(a.accountNumber) : a.accountNumber,
    accountName: a.accountName,
    currency: a.currency,
    balance: bankBalance(a),
    fiId: a.fiId,
    fiName: a.fiName,
  });
  const envelope = (payload: Record<string, unknown>, requestId: string): Record<string, unknown> =>
    shapes.dataEnvelope ? { requestId, data: payload } : { requestId, ...payload };
  const formatExpiry = (ms: number): unknown => {
    switch (shapes.expirationFormat ?? 'iso') {
      case 'iso':
        return new Date(ms).toISOString();
      case 'epoch-seconds':
        return BigInt(Math.floor(ms / 1000));
      case 'epoch-ms':
        return BigInt(ms);
    }
  };

  function grantFor(request: FastifyRequest): SimGrant {
    const token = request.headers.authorization;
    if (typeof token !== 'string' || token === '') throw invalidParam('Thiếu header Authorization');
    const grant = grantsByToken.get(token);
    if (!grant || grant.status === 'revoked') {
      throw new CasFailure(404, 'GRANT_NOT_FOUND', 'GRANT_ERROR', 'Không tìm thấy grant');
    }
    if (grant.status === 'login_required') {
      throw new CasFailure(400, 'GRANT_LOGIN_REQUIRED', 'GRANT_ERROR', 'Thông tin đăng nhập đã thay đổi');
    }
    return grant;
  }

  function accountsOf(grant: SimGrant): SimAccount[] {
    return bank.accounts.filter((a) => grant.accountKeys.includes(accountKey(a)));
  }

  function mintPublicToken(grantToken: string, choice: { fiId?: string; fiServiceId?: string } = {}): string {
    const entry = grantTokens.get(grantToken);
    if (!entry) throw invalidParam('grantToken không hợp lệ');
    // A grant token is single-use and lives 30 minutes; both failures read as expired.
    if (entry.used || now() > entry.expiresAt) {
      throw new CasFailure(400, 'GRANT_TOKEN_EXPIRED', 'GRANT_ERROR', 'grantToken đã hết hạn');
    }
    const all = banks();
    const wanted = entry.fiServiceId ?? choice.fiServiceId ?? null;
    const linked = new Set([...grants.values()].filter((g) => g.status !== 'revoked').map((g) => g.fiId));
    const target =
      wanted !== null || choice.fiId !== undefined
        ? all.find((b) => b.fiServiceId === wanted || b.fiId === choice.fiId)
        : (all.find((b) => !linked.has(b.fiId)) ?? all[0]);
    if (!target) throw new CasFailure(404, 'FI_NOT_FOUND', 'INVALID_REQUEST', 'Không tìm thấy ngân hàng');
    entry.used = true;
    const publicToken = `public-${ids.hex(32)}`;
    publicTokens.set(publicToken, {
      scopes: entry.scopes,
      fiId: target.fiId,
      expiresAt: now() + publicTokenTtlMs,
      used: false,
    });
    return publicToken;
  }

  const app = Fastify({ logger: false, forceCloseConnections: true });

  app.addHook('onRequest', async (request) => {
    if (request.url.startsWith('/link')) return;
    // Status codes for these are not published; 400 and 401 are the simulator's choice.
    if (request.headers['x-bankhub-api-version'] !== apiVersion) {
      throw invalidParam(`X-BankHub-Api-Version phải là ${apiVersion}`);
    }
    if (request.headers['x-client-id'] !== options.clientId || request.headers['x-secret-key'] !== options.secretKey) {
      throw new CasFailure(401, 'UNAUTHORIZED', 'AUTH_ERROR', 'x-client-id hoặc x-secret-key không đúng');
    }
    if (failure === null || failure.remaining <= 0) return;
    const path = request.url.split('?')[0] ?? '';
    if (failure.endpoint !== undefined && failure.endpoint !== '*' && failure.endpoint !== path) return;
    const active = failure;
    active.remaining -= 1;
    if (active.delayMs !== undefined) await new Promise((resolve) => setTimeout(resolve, active.delayMs));
    if (active.rawBody !== undefined) {
      throw Object.assign(new CasFailure(active.status ?? 502, '', '', ''), { rawBody: active.rawBody });
    }
    if (active.errorCode !== undefined || active.status !== undefined) {
      const status = active.status ?? 400;
      const code = active.errorCode ?? (status >= 500 ? 'INTERNAL_SERVER_ERROR' : 'INVALID_PARAM');
      throw new CasFailure(status, code, active.errorType ?? 'API_ERROR', active.errorMessage ?? `injected ${code}`);
    }
  });

  app.addHook('onSend', async (request, reply, payload) => {
    const errorCode = (reply.getHeader('x-sim-error-code') as string | undefined) ?? null;
    reply.removeHeader('x-sim-error-code');
    requestLog.push({
      method: request.method,
      path: request.url.split('?')[0] ?? '',
      status: reply.statusCode,
      errorCode,
      at: now(),
    });
    return payload;
  });

  app.setErrorHandler(async (error, _request, reply) => {
    const requestId = uuid(ids);
    if (error instanceof CasFailure) {
      const raw = (error as CasFailure & { rawBody?: string }).rawBody;
      if (raw !== undefined) return reply.code(error.status).type('text/html').send(raw);
      if (error.retryAfterSeconds !== null) reply.header('retry-after', String(error.retryAfterSeconds));
      return reply
        .code(error.status)
        .header('x-sim-error-code', error.errorCode)
        .type('application/json')
        .send(
          toCasJson({ requestId, errorCode: error.errorCode, errorMessage: error.message, errorType: error.errorType }),
        );
    }
    // Malformed JSON bodies and the like: Cas answers these as INVALID_PARAM.
    const status = (error as { statusCode?: number }).statusCode ?? 500;
    const code = status < 500 ? 'INVALID_PARAM' : 'INTERNAL_SERVER_ERROR';
    return reply
      .code(status)
      .header('x-sim-error-code', code)
      .type('application/json')
      .send(toCasJson({ requestId, errorCode: code, errorMessage: 'Yêu cầu không hợp lệ', errorType: 'API_ERROR' }));
  });

  app.setNotFoundHandler(async (request) => {
    throw new CasFailure(404, 'NOT_FOUND', 'API_ERROR', `${request.method} ${request.url.split('?')[0]} không tồn tại`);
  });

  const json = (reply: FastifyReply, body: unknown): FastifyReply =>
    reply.type('application/json').send(toCasJson(body));

  app.post('/grant/token', async (request, reply) => {
    const body = (request.body ?? {}) as Record<string, unknown>;
    const { redirectUri, scopes, fiServiceId, language } = body;
    if (typeof redirectUri !== 'string' || !/^https?:\/\/[^?#\s]+$/.test(redirectUri)) {
      throw invalidParam('redirectUri không hợp lệ (không được có query string)');
    }
    if (options.redirectUris !== undefined && !options.redirectUris.includes(redirectUri)) {
      throw invalidParam('redirectUri chưa được đăng ký');
    }
    if (typeof scopes !== 'string' || scopes.trim() === '') throw invalidParam('scopes là bắt buộc');
    if (language !== undefined && language !== 'vi' && language !== 'en') throw invalidParam('language không hợp lệ');
    if (fiServiceId !== undefined && fiServiceId !== null) {
      if (typeof fiServiceId !== 'string' || !banks().some((b) => b.fiServiceId === fiServiceId)) {
        throw new CasFailure(404, 'FI_NOT_FOUND', 'INVALID_REQUEST', 'Không tìm thấy fiServiceId');
      }
    }
    const grantToken = `grant-${ids.hex(32)}`;
    const expiresAt = now() + grantTokenTtlMs;
    grantTokens.set(grantToken, {
      redirectUri,
      scopes,
      fiServiceId: typeof fiServiceId === 'string' ? fiServiceId : null,
      expiresAt,
      used: false,
    });
    return json(reply, { grantToken, [shapes.expirationField ?? 'expiredAt']: formatExpiry(expiresAt) });
  });

  app.get('/link', async (request, reply) => {
    const query = request.query as Record<string, string | undefined>;
    const grantToken = query.grantToken ?? '';
    const entry = grantTokens.get(grantToken);
    if (entry && query.redirectUri !== undefined && query.redirectUri !== entry.redirectUri) {
      throw invalidParam('redirectUri khác với lúc tạo grantToken');
    }
    const choice = {
      ...(query.fiId === undefined ? {} : { fiId: query.fiId }),
      ...(query.fiServiceId === undefined ? {} : { fiServiceId: query.fiServiceId }),
    };
    const publicToken = mintPublicToken(grantToken, choice);
    return reply.redirect(`${entry?.redirectUri ?? ''}?publicToken=${encodeURIComponent(publicToken)}`, 302);
  });

  app.post('/grant/exchange', async (request, reply) => {
    const { publicToken } = (request.body ?? {}) as Record<string, unknown>;
    if (typeof publicToken !== 'string' || publicToken === '') throw invalidParam('publicToken là bắt buộc');
    const entry = publicTokens.get(publicToken);
    // Cas publishes no code for a reused public token; INVALID_PARAM is the simulator's choice.
    if (!entry || entry.used) throw invalidParam('publicToken không hợp lệ hoặc đã được sử dụng');
    if (now() > entry.expiresAt) {
      throw new CasFailure(400, 'GRANT_TOKEN_EXPIRED', 'GRANT_ERROR', 'publicToken đã hết hạn');
    }
    entry.used = true;
    const accounts = bank.accounts.filter((a) => a.fiId === entry.fiId);
    const grant: SimGrant = {
      grantId: uuid(ids),
      accessToken: `access-${ids.hex(40)}`,
      fiId: entry.fiId,
      fiServiceId: accounts[0]?.fiServiceId ?? '',
      accountKeys: accounts.map(accountKey),
      scopes: entry.scopes,
      linkedAt: new Date(now()),
      status: 'active',
    };
    grants.set(grant.grantId, grant);
    grantsByToken.set(grant.accessToken, grant);
    return json(reply, { accessToken: grant.accessToken, grantId: grant.grantId, requestId: uuid(ids) });
  });

  app.get('/identity', async (request, reply) => {
    const grant = grantFor(request);
    return json(reply, envelope({ accounts: accountsOf(grant).map(identityOf) }, uuid(ids)));
  });

  app.get('/transactions', async (request, reply) => {
    const grant = grantFor(request);
    const query = request.query as Record<string, string | undefined>;
    const { fromDate, toDate } = query;
    if (!fromDate || !toDate || !isDate(fromDate) || !isDate(toDate)) {
      throw invalidParam('fromDate và toDate phải có dạng YYYY-MM-DD');
    }
    if (fromDate > toDate) throw invalidParam('fromDate phải trước toDate');
    if (fromDate < monthsBefore(toDate, HISTORY_MONTHS)) throw invalidParam('Chỉ lấy được lịch sử 36 tháng');

    const owned = accountsOf(grant);
    let selection: { account: SimAccount; fromReference: string }[] = owned.map((account) => ({
      account,
      fromReference: '',
    }));
    if (query.accounts !== undefined) selection = parseAccountsParam(query.accounts, owned);

    const calls = (transactionCalls.get(grant.grantId) ?? []).filter((at) => at > now() - rateLimitWindowMs);
    if (calls.length >= rateLimitCalls) {
      const waitMs = (calls[0] ?? now()) + rateLimitWindowMs - now();
      throw new CasFailure(
        429,
        'RATE_LIMIT',
        'RATE_LIMIT_ERROR',
        'Vượt quá giới hạn số lần gọi, vui lòng thử lại sau',
        options.retryAfterHeader ? Math.max(1, Math.ceil(waitMs / 1000)) : null,
      );
    }
    calls.push(now());
    transactionCalls.set(grant.grantId, calls);

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
    if ((shapes.transactionsOrder ?? 'asc') === 'desc') transactions.reverse();
    return json(
      reply,
      envelope({ transactions, accounts: selection.map(({ account }) => identityOf(account)) }, uuid(ids)),
    );
  });

  // ---- webhooks ----------------------------------------------------------------------------------------------

  const grantIdOf = (fiId: string, accountNumber: string): string | null => {
    const key = `${fiId}:${accountNumber}`;
    const matching = [...grants.values()].filter((g) => g.status !== 'revoked' && g.accountKeys.includes(key));
    return matching.at(-1)?.grantId ?? null;
  };
  const linkedAccounts = (): SimAccount[] => {
    const keys = new Set([...grants.values()].filter((g) => g.status !== 'revoked').flatMap((g) => g.accountKeys));
    return bank.accounts.filter((a) => keys.has(accountKey(a)));
  };
  const pendingTransactions = (accounts: readonly SimAccount[] = bank.accounts): CasTransaction[] =>
    accounts
      .flatMap((a) => a.transactions.filter((t) => !handed.has(t.id)))
      .map((t, i) => ({ t, i }))
      .sort((x, y) => x.t.transactionDateTime.localeCompare(y.t.transactionDateTime) || x.i - y.i)
      .map(({ t }) => t);

  const deliveryDefaults = options.webhooks ?? {};

  async function postWithRetries(
    targetUrl: string,
    body: string,
    settings: Required<Omit<WebhookDeliveryOptions, 'targetUrl'>>,
    gate: Semaphore,
  ): Promise<{ delivered: boolean; attempts: number; lastStatus: number | null }> {
    let lastStatus: number | null = null;
    for (let attempt = 1; ; attempt += 1) {
      await gate.acquire();
      try {
        const response = await fetch(targetUrl, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body,
          signal: AbortSignal.timeout(settings.timeoutMs),
        });
        lastStatus = response.status;
        await response.arrayBuffer().catch(() => undefined);
        if (response.status >= 200 && response.status < 300) return { delivered: true, attempts: attempt, lastStatus };
      } catch {
        lastStatus = null; // no answer in time, or no connection: Cas retries both
      } finally {
        gate.release();
      }
      const wait = settings.retryScheduleMs[attempt - 1];
      if (wait === undefined) return { delivered: false, attempts: attempt, lastStatus };
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }

  function settingsOf(overrides: WebhookDeliveryOptions): Required<Omit<WebhookDeliveryOptions, 'targetUrl'>> & {
    targetUrl: string;
  } {
    const merged = { ...deliveryDefaults, ...overrides };
    if (!merged.targetUrl) throw new Error('no webhook targetUrl configured');
    return {
      targetUrl: merged.targetUrl,
      dropRate: merged.dropRate ?? 0,
      duplicateRate: merged.duplicateRate ?? 0,
      reorderRate: merged.reorderRate ?? 0,
      reorderWindow: merged.reorderWindow ?? 5,
      retryScheduleMs: merged.retryScheduleMs ?? fibonacciScheduleMs(17, 10),
      timeoutMs: merged.timeoutMs ?? 5_000,
      concurrency: Math.max(1, merged.concurrency ?? 1),
    };
  }

  async function deliverWebhooks(deliverOptions: DeliverWebhooksOptions = {}): Promise<DeliveryReport> {
    const settings = settingsOf(deliverOptions);
    const rng = createRng(options.seed, 'webhooks', deliveryRound);
    deliveryRound += 1;
    const chosen = deliverOptions.transactions ?? pendingTransactions(deliverOptions.accounts ?? linkedAccounts());

    const dropped: string[] = [];
    const duplicated: string[] = [];
    const plan: { key: number; transaction: CasTransaction; copy: number }[] = [];
    chosen.forEach((transaction, index) => {
      handed.add(transaction.id);
      // Every roll is drawn for every transaction so one rate never shifts another's choices.
      const [drop, duplicate, reorder, shift, copyShift] = [rng.next(), rng.next(), rng.next(), rng.next(), rng.next()];
      if (drop < settings.dropRate) {
        dropped.push(transaction.id);
        return;
      }
      const moved = reorder < settings.reorderRate ? shift * (settings.reorderWindow + 1) : 0;
      plan.push({ key: index + moved, transaction, copy: 0 });
      if (duplicate < settings.duplicateRate) {
        duplicated.push(transaction.id);
        plan.push({ key: index + moved + 0.5 + copyShift * (settings.reorderWindow + 1), transaction, copy: 1 });
      }
    });
    plan.sort((a, b) => a.key - b.key);

    const gate = new Semaphore(settings.concurrency);
    const results = await Promise.all(
      plan.map(async ({ transaction, copy }) => {
        const accountNumber = transaction.accountNumber.toString();
        const grantId = grantIdOf(transaction.fiId, accountNumber);
        const body = toCasJson(transactionWebhook(transaction, grantId));
        const outcome = await postWithRetries(settings.targetUrl, body, settings, gate);
        return { transaction, copy, accountNumber, grantId, ...outcome };
      }),
    );
    return {
      delivered: results
        .filter((r) => r.delivered)
        .map((r) => ({
          transactionId: r.transaction.id,
          fiId: r.transaction.fiId,
          accountNumber: r.accountNumber,
          grantId: r.grantId,
          copy: r.copy,
          attempts: r.attempts,
        })),
      dropped,
      duplicated,
      gaveUp: results
        .filter((r) => !r.delivered)
        .map((r) => ({
          transactionId: r.transaction.id,
          copy: r.copy,
          attempts: r.attempts,
          lastStatus: r.lastStatus,
        })),
      sent: plan.map(({ transaction, copy }) => ({ transactionId: transaction.id, copy })),
      attempts: results.reduce((sum, r) => sum + r.attempts, 0),
    };
  }

  async function deliverGrantWebhook(
    grantId: string,
    webhookCode: string,
    error: CasWebhookError | null = null,
    overrides: WebhookDeliveryOptions = {},
  ): Promise<{ delivered: boolean; attempts: number }> {
    const settings = settingsOf(overrides);
    const body: CasWebhook = grantWebhook(grantId, webhookCode, error);
    const outcome = await postWithRetries(settings.targetUrl, toCasJson(body), settings, new Semaphore(1));
    return { delivered: outcome.delivered, attempts: outcome.attempts };
  }

  await app.listen({ port: options.port ?? 0, host: options.host ?? '127.0.0.1' });
  const address = app.server.address();
  if (address === null || typeof address === 'string') throw new Error('the simulator has no TCP address');
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}`;

  return {
    url,
    bank,
    grants,
    requestLog,
    close: () => app.close(),
    setFailure: (next) => {
      failure = next === null ? null : { ...next, remaining: next.times ?? Number.POSITIVE_INFINITY };
    },
    mintPublicToken: (grantToken, choice) => mintPublicToken(grantToken, choice),
    linkUrl: (grantToken, redirectUri) =>
      `${url}/link?${new URLSearchParams({ grantToken, redirectUri }).toString()}`,
    setGrantStatus: (grantId, status) => {
      const grant = grants.get(grantId);
      if (!grant) throw new Error(`no grant ${grantId}`);
      grant.status = status;
    },
    deliverWebhooks,
    deliverGrantWebhook,
    pendingTransactions: (accounts) => pendingTransactions(accounts),
  };
}

function parseAccountsParam(
  text: string,
  owned: readonly SimAccount[],
): { account: SimAccount; fromReference: string }[] {
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

class Semaphore {
  private free: number;
  private readonly waiting: (() => void)[] = [];
  constructor(size: number) {
    this.free = size;
  }
  async acquire(): Promise<void> {
    if (this.free > 0) {
      this.free -= 1;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }
  release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.free += 1;
  }
}

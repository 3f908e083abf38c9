import { isLosslessNumber, parse as parseLossless, type LosslessNumber } from 'lossless-json';
import { z } from 'zod';
import {
  BankHubError,
  type BankHubClient,
  type CreateGrantTokenInput,
  type ExchangedGrant,
  type GrantToken,
  type Identity,
  type TransactionsPage,
  type TransactionsQuery,
} from '../../application/ports/bankhub';
import { parseMinorUnits } from '../../domain/money';

export interface BankHubClientOptions {
  readonly baseUrl: string;
  readonly clientId: string;
  readonly secretKey: string;
  /** Sent as X-BankHub-Api-Version, e.g. 2023-01-01. */
  readonly apiVersion: string;
  /** Default scopes for /grant/token; a list is sent comma-separated. */
  readonly scopes: string | readonly string[];
  /** Per attempt, including reading the body. */
  readonly timeoutMs?: number;
  /** Retries after the first attempt, for 429, 5xx, RATE_LIMIT, timeouts and network errors. */
  readonly maxRetries?: number;
  readonly baseDelayMs?: number;
  readonly maxDelayMs?: number;
  /** Wait before retrying a RATE_LIMIT without Retry-After (Cas allows about one call per grant per minute). */
  readonly rateLimitDelayMs?: number;
  readonly fetch?: typeof fetch;
  readonly sleep?: (ms: number) => Promise<void>;
  /** In [0, 1); only jitters the backoff. */
  readonly random?: () => number;
  readonly now?: () => Date;
  /** Observability hook (log it with a redacting logger); the error never carries a token. */
  readonly onRetry?: (info: { operation: string; attempt: number; delayMs: number; error: BankHubError }) => void;
}

const DEFAULTS = {
  timeoutMs: 15_000,
  maxRetries: 3,
  baseDelayMs: 250,
  maxDelayMs: 10_000,
  rateLimitDelayMs: 60_000,
} as const;
const MAX_RETRY_AFTER_MS = 5 * 60_000;
/** Cas documents a grant token as valid for 30 minutes; used only when the response carries no expiry. */
const GRANT_TOKEN_VALIDITY_MS = 30 * 60_000;

export function createBankHubClient(options: BankHubClientOptions): BankHubClient {
  const baseUrl = options.baseUrl.replace(/\/+$/, '');
  const doFetch = options.fetch ?? fetch;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const random = options.random ?? Math.random;
  const now = options.now ?? (() => new Date());
  const timeoutMs = options.timeoutMs ?? DEFAULTS.timeoutMs;
  const maxRetries = options.maxRetries ?? DEFAULTS.maxRetries;
  const baseDelayMs = options.baseDelayMs ?? DEFAULTS.baseDelayMs;
  const maxDelayMs = options.maxDelayMs ?? DEFAULTS.maxDelayMs;
  const rateLimitDelayMs = options.rateLimitDelayMs ?? DEFAULTS.rateLimitDelayMs;

  interface Call {
    readonly method: 'GET' | 'POST';
    readonly path: string;
    readonly query?: URLSearchParams;
    readonly body?: unknown;
    readonly accessToken?: string;
  }
  interface Answer {
    readonly status: number;
    readonly text: string;
    readonly body: unknown;
  }

  async function attempt(call: Call, operation: string): Promise<Answer> {
    const headers: Record<string, string> = {
      accept: 'application/json',
      'X-BankHub-Api-Version': options.apiVersion,
      'x-client-id': options.clientId,
      'x-secret-key': options.secretKey,
    };
    // Cas wants the raw token, without a Bearer prefix.
    if (call.accessToken !== undefined) headers.authorization = call.accessToken;
    if (call.body !== undefined) headers['content-type'] = 'application/json';
    const url = `${baseUrl}${call.path}${call.query && call.query.size > 0 ? `?${call.query.toString()}` : ''}`;
    const secrets = [options.secretKey, call.accessToken];

    let status: number;
    let text: string;
    let retryAfterMs: number | null = null;
    try {
      const response = await doFetch(url, {
        method: call.method,
        headers,
        body: call.body === undefined ? undefined : JSON.stringify(call.body),
        signal: AbortSignal.timeout(timeoutMs),
        redirect: 'manual',
      });
      status = response.status;
      retryAfterMs = parseRetryAfter(response.headers.get('retry-after'), now());
      text = await response.text();
    } catch (error) {
      const timedOut = error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError');
      throw new BankHubError({
        errorCode: timedOut ? 'TIMEOUT' : 'NETWORK_ERROR',
        errorType: 'TRANSPORT_ERROR',
        errorMessage: timedOut ? `no answer within ${timeoutMs} ms` : redact(describeCause(error), secrets),
        requestId: null,
        httpStatus: null,
        retryable: true,
        operation,
        cause: timedOut ? undefined : error,
      });
    }

    let body: unknown;
    try {
      body = text.trim() === '' ? null : parseLossless(text);
    } catch {
      body = undefined;
    }
    const casError = casErrorSchema.safeParse(unwrapData(body));
    const transient = status === 429 || status >= 500;
    if (casError.success) {
      const e = casError.data;
      throw new BankHubError({
        errorCode: e.errorCode,
        errorType: e.errorType ?? null,
        errorMessage: e.errorMessage == null ? null : redact(e.errorMessage, secrets),
        requestId: e.requestId ?? null,
        httpStatus: status,
        retryable: transient || e.errorCode === 'RATE_LIMIT',
        retryAfterMs,
        operation,
      });
    }
    if (status < 200 || status >= 300 || body === undefined) {
      throw new BankHubError({
        errorCode: 'UNEXPECTED_RESPONSE',
        errorType: 'PROTOCOL_ERROR',
        errorMessage: body === undefined ? 'the body is not JSON' : 'no Cas error body',
        requestId: null,
        httpStatus: status,
        retryable: transient,
        retryAfterMs,
        operation,
      });
    }
    return { status, text, body };
  }

  async function request(call: Call): Promise<Answer> {
    const operation = `${call.method} ${call.path}`;
    for (let retry = 0; ; retry += 1) {
      try {
        return await attempt(call, operation);
      } catch (error) {
        if (!(error instanceof BankHubError) || !error.retryable || retry >= maxRetries) throw error;
        const delayMs = retryDelay(error, retry);
        options.onRetry?.({ operation, attempt: retry + 1, delayMs, error });
        await sleep(delayMs);
      }
    }
  }

  function retryDelay(error: BankHubError, retry: number): number {
    if (error.retryAfterMs !== null) return Math.min(error.retryAfterMs, MAX_RETRY_AFTER_MS);
    // Backing off by milliseconds is pointless against a per-minute limit: wait for the window, jittered upwards.
    if (error.errorCode === 'RATE_LIMIT') return Math.round(rateLimitDelayMs * (1 + random() * 0.25));
    const exponential = Math.min(maxDelayMs, baseDelayMs * 2 ** retry);
    return Math.round(exponential / 2 + (random() * exponential) / 2);
  }

  function read<T>(schema: z.ZodType<T>, answer: Answer, operation: string): T {
    const result = schema.safeParse(answer.body);
    if (result.success) return result.data;
    // Issue paths and codes only: values could be tokens.
    const where = result.error.issues.map((i) => `${i.path.join('.') || '(root)'} ${i.code}`).join('; ');
    throw new BankHubError({
      errorCode: 'UNEXPECTED_RESPONSE',
      errorType: 'PROTOCOL_ERROR',
      errorMessage: `unexpected response shape: ${where}`,
      requestId: requestIdOf(answer.body),
      httpStatus: answer.status,
      retryable: false,
      operation,
    });
  }

  return {
    async createGrantToken(input: CreateGrantTokenInput): Promise<GrantToken> {
      const scopes = input.scopes ?? options.scopes;
      const answer = await request({
        method: 'POST',
        path: '/grant/token',
        body: {
          scopes: typeof scopes === 'string' ? scopes : scopes.join(','),
          redirectUri: input.redirectUri,
          ...(input.language === undefined ? {} : { language: input.language }),
          ...(input.fiServiceId === undefined ? {} : { fiServiceId: input.fiServiceId }),
        },
      });
      const body = read(grantTokenSchema, answer, 'POST /grant/token');
      const expiry = body.expiration ?? body.expiredAt ?? null;
      return {
        grantToken: body.grantToken,
        expiresAt: expiry ?? new Date(now().getTime() + GRANT_TOKEN_VALIDITY_MS),
      };
    },

    async exchangePublicToken(publicToken: string): Promise<ExchangedGrant> {
      const answer = await request({ method: 'POST', path: '/grant/exchange', body: { publicToken } });
      const body = read(exchangeSchema, answer, 'POST /grant/exchange');
      return { accessToken: body.accessToken, grantId: body.grantId, requestId: body.requestId ?? null };
    },

    async getIdentity(accessToken: string): Promise<Identity> {
      const answer = await request({ method: 'GET', path: '/identity', accessToken });
      const body = read(identitySchema, answer, 'GET /identity');
      return { accounts: body.accounts, requestId: body.requestId ?? null };
    },

    async getTransactions(accessToken: string, query: TransactionsQuery): Promise<TransactionsPage> {
      const params = new URLSearchParams({ fromDate: query.fromDate, toDate: query.toDate });
      if (query.accounts !== undefined) {
        const cursors = query.accounts.map((a) => ({ accountNumber: a.accountNumber, fromReference: a.fromReference }));
        params.set('accounts', JSON.stringify(cursors));
      }
      const answer = await request({ method: 'GET', path: '/transactions', query: params, accessToken });
      const body = read(transactionsSchema, answer, 'GET /transactions');
      return { transactions: body.transactions, rawBody: answer.text, requestId: body.requestId ?? null };
    },
  };
}

// ---- lenient response shapes -------------------------------------------------------------------------------------

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value) && !isLosslessNumber(value);

/** Some Cas responses wrap their payload in `data`; the requestId may sit on either level. */
function unwrapData(body: unknown): unknown {
  if (!isRecord(body)) return body;
  const { data, ...rest } = body;
  if (isRecord(data)) return { ...rest, ...data, requestId: data.requestId ?? rest.requestId };
  if (Array.isArray(data) && rest.transactions === undefined) return { ...rest, transactions: data };
  return body;
}

const requestIdOf = (body: unknown): string | null => {
  const inner = unwrapData(body);
  return isRecord(inner) && typeof inner.requestId === 'string' ? inner.requestId : null;
};

const jsonNumber = z.custom<LosslessNumber>((value) => isLosslessNumber(value), 'expected a JSON number');
const optionalText = z
  .union([z.string(), jsonNumber, z.null()])
  .optional()
  .transform((v) => (v == null ? null : v.toString()));
const requestId = optionalText;

const casErrorSchema = z.object({
  errorCode: z.string().min(1),
  errorType: z.string().nullish(),
  errorMessage: z.string().nullish(),
  requestId: z.string().nullish(),
});

/** An ISO-8601 string, or epoch seconds / milliseconds (as a number or a string of digits). */
const instant = z.union([z.string(), jsonNumber]).transform((value, ctx) => {
  const text = value.toString().trim();
  let date: Date;
  if (/^\d+(\.\d+)?$/.test(text)) {
    const epoch = Number(text);
    date = new Date(epoch < 1e11 ? epoch * 1000 : epoch); // below 1e11 is seconds (until the year 5138)
  } else {
    date = new Date(text);
  }
  if (Number.isNaN(date.getTime())) {
    ctx.addIssue({ code: 'custom', message: 'not a date' });
    return z.NEVER;
  }
  return date;
});

const grantTokenSchema = z.preprocess(
  unwrapData,
  z.object({ grantToken: z.string().min(1), expiration: instant.nullish(), expiredAt: instant.nullish() }),
);

const exchangeSchema = z.preprocess(
  unwrapData,
  z.object({ accessToken: z.string().min(1), grantId: z.string().min(1), requestId: z.string().nullish() }),
);

const accountNumber = z.union([z.string().min(1), jsonNumber]).transform((v) => v.toString());

/** Exact whole minor units from the JSON text; anything else (fractions, text) is no balance rather than a guess. */
const balance = z
  .union([jsonNumber, z.string(), z.null()])
  .optional()
  .transform((v) => {
    if (v == null) return null;
    const parsed = parseMinorUnits(v.toString().trim());
    return parsed.ok ? parsed.value : null;
  });

const identitySchema = z.preprocess(
  unwrapData,
  z.object({
    requestId,
    accounts: z.array(
      z.object({ accountNumber, accountName: optionalText, currency: optionalText, balance, fiId: optionalText }),
    ),
  }),
);

const transactionsSchema = z.preprocess(
  unwrapData,
  z.object({ requestId, transactions: z.array(z.unknown()) }),
);

// ---- helpers -----------------------------------------------------------------------------------------------------

function parseRetryAfter(header: string | null, now: Date): number | null {
  if (header === null || header.trim() === '') return null;
  const text = header.trim();
  if (/^\d+(\.\d+)?$/.test(text)) return Math.round(Number(text) * 1000);
  const at = Date.parse(text);
  return Number.isNaN(at) ? null : Math.max(0, at - now.getTime());
}

function describeCause(error: unknown): string {
  if (!(error instanceof Error)) return 'request failed';
  const cause = error.cause instanceof Error ? `: ${error.cause.message}` : '';
  return `${error.message}${cause}`;
}

/** Cas's messages are echoed into ours; make sure no credential of this call rides along. */
function redact(text: string, secrets: readonly (string | undefined)[]): string {
  let out = text;
  for (const secret of secrets) {
    if (secret !== undefined && secret.length >= 4) out = out.split(secret).join('[redacted]');
  }
  return out;
}

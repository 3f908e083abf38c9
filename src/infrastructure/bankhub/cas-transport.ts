import { parse as parseLossless } from 'lossless-json';
import { z } from 'zod';
import { BankHubError } from '../../application/ports/bankhub';
import { requestIdOf, unwrapData } from './cas-responses';

/** How the client reaches Cas: where, with which credentials, and how patiently. */
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

/**
 * One Cas call over HTTP: credentials in the headers, an exact JSON reading of the answer, Cas's error bodies and
 * transport failures turned into BankHubError (never carrying a credential), and retries with backoff for what may
 * pass (429, 5xx, RATE_LIMIT, timeouts, network errors).
 */
export interface CasCall {
  readonly method: 'GET' | 'POST';
  readonly path: string;
  readonly query?: URLSearchParams;
  readonly body?: unknown;
  readonly accessToken?: string;
}

export interface CasAnswer {
  readonly status: number;
  readonly text: string;
  readonly body: unknown;
}

const DEFAULTS = {
  timeoutMs: 15_000,
  maxRetries: 3,
  baseDelayMs: 250,
  maxDelayMs: 10_000,
  rateLimitDelayMs: 60_000,
} as const;
const MAX_RETRY_AFTER_MS = 5 * 60_000;

/** The client's options with every default filled in. */
export interface CasTransport {
  readonly options: BankHubClientOptions;
  readonly baseUrl: string;
  readonly fetch: typeof fetch;
  readonly sleep: (ms: number) => Promise<void>;
  readonly random: () => number;
  readonly now: () => Date;
  readonly timeoutMs: number;
  readonly maxRetries: number;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
  readonly rateLimitDelayMs: number;
}

export function casTransport(options: BankHubClientOptions): CasTransport {
  return {
    options,
    baseUrl: options.baseUrl.replace(/\/+$/, ''),
    fetch: options.fetch ?? fetch,
    sleep: options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))),
    random: options.random ?? Math.random,
    now: options.now ?? (() => new Date()),
    timeoutMs: options.timeoutMs ?? DEFAULTS.timeoutMs,
    maxRetries: options.maxRetries ?? DEFAULTS.maxRetries,
    baseDelayMs: options.baseDelayMs ?? DEFAULTS.baseDelayMs,
    maxDelayMs: options.maxDelayMs ?? DEFAULTS.maxDelayMs,
    rateLimitDelayMs: options.rateLimitDelayMs ?? DEFAULTS.rateLimitDelayMs,
  };
}

/** The call, tried again while it fails in a way that may pass, up to `maxRetries` times. */
export async function callCas(t: CasTransport, call: CasCall): Promise<CasAnswer> {
  const operation = `${call.method} ${call.path}`;
  for (let retry = 0; ; retry += 1) {
    try {
      return await attempt(t, call, operation);
    } catch (error) {
      if (!(error instanceof BankHubError) || !error.retryable || retry >= t.maxRetries) throw error;
      const delayMs = retryDelay(t, error, retry);
      t.options.onRetry?.({ operation, attempt: retry + 1, delayMs, error });
      await t.sleep(delayMs);
    }
  }
}

/** The answer's body in the shape `schema` reads, or a non-retryable protocol error naming what did not fit. */
export function readAnswer<T>(schema: z.ZodType<T>, answer: CasAnswer, operation: string): T {
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

async function attempt(t: CasTransport, call: CasCall, operation: string): Promise<CasAnswer> {
  const { options } = t;
  const headers: Record<string, string> = {
    accept: 'application/json',
    'X-BankHub-Api-Version': options.apiVersion,
    'x-client-id': options.clientId,
    'x-secret-key': options.secretKey,
  };
  // Cas wants the raw token, without a Bearer prefix.
  if (call.accessToken !== undefined) headers.authorization = call.accessToken;
  if (call.body !== undefined) headers['content-type'] = 'application/json';
  const url = `${t.baseUrl}${call.path}${call.query && call.query.size > 0 ? `?${call.query.toString()}` : ''}`;
  const secrets = [options.secretKey, call.accessToken];

  let status: number;
  let text: string;
  let retryAfterMs: number | null = null;
  try {
    const response = await t.fetch(url, {
      method: call.method,
      headers,
      body: call.body === undefined ? undefined : JSON.stringify(call.body),
      signal: AbortSignal.timeout(t.timeoutMs),
      redirect: 'manual',
    });
    status = response.status;
    retryAfterMs = parseRetryAfter(response.headers.get('retry-after'), t.now());
    text = await response.text();
  } catch (error) {
    const timedOut = error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError');
    throw new BankHubError({
      errorCode: timedOut ? 'TIMEOUT' : 'NETWORK_ERROR',
      errorType: 'TRANSPORT_ERROR',
      errorMessage: timedOut ? `no answer within ${t.timeoutMs} ms` : redact(describeCause(error), secrets),
      requestId: null,
      httpStatus: null,
      retryable: true,
      operation,
      cause: timedOut ? undefined : error,
    });
  }
  return checkAnswer({ status, text, retryAfterMs, secrets, operation });
}

/** Cas's own error body wins; otherwise anything but a 2xx JSON answer is unexpected. */
function checkAnswer(a: { status: number; text: string; retryAfterMs: number | null; secrets: readonly (string | undefined)[]; operation: string }): CasAnswer {
  const { status, text, retryAfterMs, operation } = a;
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
      errorMessage: e.errorMessage == null ? null : redact(e.errorMessage, a.secrets),
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

function retryDelay(t: CasTransport, error: BankHubError, retry: number): number {
  if (error.retryAfterMs !== null) return Math.min(error.retryAfterMs, MAX_RETRY_AFTER_MS);
  // Backing off by milliseconds is pointless against a per-minute limit: wait for the window, jittered upwards.
  if (error.errorCode === 'RATE_LIMIT') return Math.round(t.rateLimitDelayMs * (1 + t.random() * 0.25));
  const exponential = Math.min(t.maxDelayMs, t.baseDelayMs * 2 ** retry);
  return Math.round(exponential / 2 + (t.random() * exponential) / 2);
}

const casErrorSchema = z.object({
  errorCode: z.string().min(1),
  errorType: z.string().nullish(),
  errorMessage: z.string().nullish(),
  requestId: z.string().nullish(),
});

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

import ipaddr from 'ipaddr.js';
import { z } from 'zod';

const cidrList = z
  .string()
  .transform((text) => text.split(',').map((s) => s.trim()).filter(Boolean))
  .superRefine((items, ctx) => {
    for (const item of items) {
      try {
        if (item.includes('/')) ipaddr.parseCIDR(item);
        else ipaddr.parse(item);
      } catch {
        ctx.addIssue({ code: 'custom', message: `"${item}" is not an IP address or CIDR range` });
      }
    }
  });

const emptyAsUndefined = (v: unknown) => (v === '' ? undefined : v);

/**
 * Requests a minute that one key (one source address for the Cas Link redirect) may make of the routes that are
 * dear to answer; 0 lifts the limit. The webhook has none: Cas must never be refused for volume.
 */
export const RATE_LIMITS = {
  statements: { env: 'RATE_LIMIT_STATEMENTS', perMinute: 600, per: 'key', routes: 'statements (JSON and CSV), statement digest checks' },
  export: { env: 'RATE_LIMIT_EXPORT', perMinute: 600, per: 'key', routes: 'pages of the audit log and of one account\'s events' },
  verify: { env: 'RATE_LIMIT_VERIFY', perMinute: 6, per: 'key', routes: 'POST /audit/verify (a replay of the whole log)' },
  backfill: { env: 'RATE_LIMIT_BACKFILL', perMinute: 30, per: 'key', routes: 'POST /grants/{grantId}/backfill' },
  callback: { env: 'RATE_LIMIT_CALLBACK', perMinute: 30, per: 'address', routes: 'GET /links/callback (open: counted per source address)' },
} as const;
export type RateLimitClass = keyof typeof RATE_LIMITS;
const rateLimitFields = Object.fromEntries(
  Object.values(RATE_LIMITS).map((c) => [c.env, z.coerce.number().int().min(0).max(1_000_000).default(c.perMinute)]),
) as Record<(typeof RATE_LIMITS)[RateLimitClass]['env'], z.ZodDefault<z.ZodCoercedNumber<unknown>>>;
const httpUrl = z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' });

const envSchema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  HOST: z.string().min(1).default('127.0.0.1'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  DATABASE_URL: z.preprocess(emptyAsUndefined, z.url({ protocol: /^postgres(ql)?$/, error: 'must be a postgres:// URL' }).optional()),
  DATA_DIR: z.string().min(1).default('./data'),
  DB_POOL_SIZE: z.coerce.number().int().min(2).max(200).default(20),
  DB_READ_POOL_SIZE: z.coerce.number().int().min(1).max(200).default(8),
  DB_READ_STATEMENT_TIMEOUT_MS: z.coerce.number().int().min(0).max(3_600_000).default(20_000),
  STATEMENT_CACHE_MB: z.coerce.number().int().min(0).max(4096).default(32),
  DB_IDLE_IN_TRANSACTION_TIMEOUT_MS: z.coerce.number().int().min(0).max(3_600_000).default(60_000),
  HTTP_REQUEST_TIMEOUT_MS: z.coerce.number().int().min(1).max(3_600_000).default(30_000),
  HTTP_HEADERS_TIMEOUT_MS: z.coerce.number().int().min(1).max(3_600_000).default(10_000),
  HTTP_KEEP_ALIVE_TIMEOUT_MS: z.coerce.number().int().min(1).max(3_600_000).default(72_000),
  HTTP_CONNECTION_TIMEOUT_MS: z.coerce.number().int().min(1).max(86_400_000).default(300_000),
  DRAIN_DELAY_MS: z.coerce.number().int().min(0).max(600_000).default(5_000),
  DRAIN_TIMEOUT_MS: z.coerce.number().int().min(1).max(600_000).default(25_000),
  EVENTSTORE_URL: z.preprocess(
    emptyAsUndefined,
    z.string().regex(/^esdb(\+discover)?:\/\//, 'must be an esdb:// connection string').optional(),
  ),
  WEBHOOK_TOKEN: z.preprocess(
    emptyAsUndefined,
    z.string().min(16, 'must be at least 16 characters: a long random secret').optional(),
  ),
  WEBHOOK_ALLOWED_IPS: z.preprocess(emptyAsUndefined, cidrList.optional()),
  API_TOKEN: z.preprocess(emptyAsUndefined, z.string().min(16, 'must be at least 16 characters: a long random secret').optional()),
  ALLOW_INSECURE: z.preprocess(emptyAsUndefined, z.enum(['true', 'false']).default('false')).transform((v) => v === 'true'),
  ...rateLimitFields,
  TRUST_PROXY: z.preprocess(emptyAsUndefined, cidrList.optional()),
  // A Cas webhook is about 1 KB; 256 KB leaves room for long descriptions and bounds the work one request can ask for.
  WEBHOOK_BODY_LIMIT: z.coerce.number().int().min(1024).max(64 * 1024 * 1024).default(256 * 1024),
  RUN_PROJECTIONS: z.enum(['true', 'false']).default('true').transform((v) => v === 'true'),
  PROJECTION_BATCH_SIZE: z.coerce.number().int().min(1).max(50_000).default(5000),
  PROJECTION_SETTLE_MS: z.coerce.number().int().min(0).max(1000).default(250),
  BANKHUB_BASE_URL: z.preprocess(emptyAsUndefined, httpUrl.default('https://sandbox.bankhub.dev')),
  // The sandbox's Cas Link; production's is given by Cas.
  BANKHUB_LINK_URL: z.preprocess(emptyAsUndefined, httpUrl.default('https://dev.link.bankhub.dev')),
  BANKHUB_CLIENT_ID: z.preprocess(emptyAsUndefined, z.string().trim().min(1).optional()),
  BANKHUB_SECRET_KEY: z.preprocess(emptyAsUndefined, z.string().trim().min(1).optional()),
  BANKHUB_API_VERSION: z.preprocess(emptyAsUndefined, z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'must be a date like 2023-01-01').default('2023-01-01')),
  // The docs disagree on the scope that turns Balance Hook on (`transactions` in prose, `qrpay`/`virtual_account` in code).
  BANKHUB_SCOPES: z.preprocess(emptyAsUndefined, z.string().regex(/^[a-z_]+(,[a-z_]+)*$/, 'must be comma-separated scope names').default('transactions')),
  BANKHUB_REDIRECT_URI: z.preprocess(
    emptyAsUndefined,
    httpUrl.refine((u) => !/[?#]/.test(u), 'must carry no query string or fragment (Cas requires it registered as is)').optional(),
  ),
  BANKHUB_RATE_LIMIT_MS: z.coerce.number().int().min(0).max(3_600_000).default(60_000),
  SECRETS_KEY: z.preprocess(
    emptyAsUndefined,
    z.string().regex(/^[0-9a-fA-F]{64}$/, 'must be 64 hex characters (32 random bytes, e.g. `openssl rand -hex 32`)').optional(),
  ),
  HEAL_AFTER_SECONDS: z.coerce.number().positive().max(30 * 86_400).default(600),
  HEAL_INTERVAL_SECONDS: z.coerce.number().positive().max(86_400).default(60),
  LOG_FORMAT: z.preprocess(emptyAsUndefined, z.enum(['pretty', 'json']).optional()),
  // `ledger project` serves GET /metrics here (the service serves it on PORT); unset: the projector listens nowhere.
  METRICS_PORT: z.preprocess(emptyAsUndefined, z.coerce.number().int().min(0).max(65535).optional()),
  ALERT_WEBHOOK_URL: z.preprocess(emptyAsUndefined, httpUrl.optional()),
  ALERT_WEBHOOK_FORMAT: z.preprocess(emptyAsUndefined, z.enum(['full', 'text']).default('full')),
  ALERT_BREAK_AFTER_SECONDS: z.coerce.number().positive().max(30 * 86_400).default(900),
  ALERT_LAG_SECONDS: z.coerce.number().positive().max(30 * 86_400).default(300),
  ALERT_INTERVAL_SECONDS: z.coerce.number().positive().max(3_600).default(15),
  SWEEP_AT: z.preprocess(
    emptyAsUndefined,
    z
      .string()
      .regex(/^(off|([01]\d|2[0-3]):[0-5]\d)$/, 'must be a time HH:MM (bank time, UTC+7) or off')
      .default('03:00'),
  ),
}).superRefine((env, ctx) => {
  // Node refuses a server whose headers may take longer than the whole request.
  if (env.HTTP_HEADERS_TIMEOUT_MS > env.HTTP_REQUEST_TIMEOUT_MS) {
    ctx.addIssue({ code: 'custom', path: ['HTTP_HEADERS_TIMEOUT_MS'], message: 'must not exceed HTTP_REQUEST_TIMEOUT_MS' });
  }
  if (env.DRAIN_DELAY_MS >= env.DRAIN_TIMEOUT_MS) {
    ctx.addIssue({ code: 'custom', path: ['DRAIN_DELAY_MS'], message: 'must be less than DRAIN_TIMEOUT_MS, which bounds the whole shutdown' });
  }
  // Access tokens are stored only encrypted: a linking setup without a key must not start.
  if (env.BANKHUB_CLIENT_ID && env.BANKHUB_SECRET_KEY && !env.SECRETS_KEY) {
    ctx.addIssue({
      code: 'custom',
      path: ['SECRETS_KEY'],
      message: 'is required when BANKHUB_CLIENT_ID and BANKHUB_SECRET_KEY are set: Cas access tokens are encrypted with it',
    });
  }
});

export type Config = Readonly<{
  port: number;
  host: string;
  logLevel: z.infer<typeof envSchema>['LOG_LEVEL'];
  databaseUrl: string | undefined;
  dataDir: string;
  dbPoolSize: number;
  /** The query routes' own pool and the cancel time of their statements (0 = never). */
  dbReadPoolSize: number;
  dbReadStatementTimeoutMs: number;
  /** Bytes of JSON statements the web process keeps to answer again while their accounts are unchanged; 0: none. */
  statementCacheBytes: number;
  dbIdleInTransactionTimeoutMs: number;
  http: Readonly<{ requestTimeoutMs: number; headersTimeoutMs: number; keepAliveTimeoutMs: number; connectionTimeoutMs: number }>;
  /** After SIGTERM/SIGINT: how long /ready says 503 while still serving, and the bound of the whole shutdown. */
  drain: Readonly<{ delayMs: number; timeoutMs: number }>;
  eventStoreUrl: string | undefined;
  webhookToken: string | undefined;
  webhookAllowedIps: readonly string[] | undefined;
  apiToken: string | undefined;
  /** Start on a non-loopback HOST without the webhook token or any API key. */
  allowInsecure: boolean;
  /** Requests a minute per key (per address for the callback); 0: no limit. */
  rateLimits: Readonly<Record<RateLimitClass, number>>;
  trustProxy: readonly string[] | undefined;
  webhookBodyLimit: number;
  runProjections: boolean;
  projectionBatchSize: number;
  /** While this process keeps appending, its projection runners read the log at most once in this many ms. */
  projectionSettleMs: number;
  bankHub: Readonly<{
    baseUrl: string;
    /** Cas Link, opened by the customer's browser with `?grantToken=…&redirectUri=…`. */
    linkUrl: string;
    apiVersion: string;
    scopes: string;
    redirectUri: string | undefined;
    /** The least time between two GET /transactions of one grant. */
    rateLimitMs: number;
    /** undefined: linking, backfill and healing are off. */
    credentials: Readonly<{ clientId: string; secretKey: string }> | undefined;
    /** The variables still missing for linking (names only), empty when it is configured. */
    missing: readonly string[];
  }>;
  /** 64 hex characters: the AES-256-GCM key of access tokens at rest. */
  secretsKey: string | undefined;
  healAfterSeconds: number;
  healIntervalSeconds: number;
  /** pretty: colourised lines for a person; json: one JSON object a line; undefined: pretty when stdout is a terminal. */
  logFormat: 'pretty' | 'json' | undefined;
  /** Where `ledger project` serves GET /metrics; undefined: nowhere. */
  metricsPort: number | undefined;
  alerts: Readonly<{
    /** undefined: alerting is off (nothing is detected, nothing is sent). */
    webhookUrl: string | undefined;
    /** full: the whole alert as JSON; text: `{text}` only (chat webhooks that refuse unknown fields). */
    format: 'full' | 'text';
    breakAfterSeconds: number;
    lagSeconds: number;
    intervalSeconds: number;
  }>;
  /** The daily sweep's time of day in the bank's zone (UTC+7), minutes after midnight; null: off. */
  sweepAtMinutes: number | null;
}>;

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/**
 * The only reader of process.env. One schema; defaults only where harmless; a bad value stops start-up with a
 * message that names the variable.
 */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`invalid configuration:\n  ${lines.join('\n  ')}`);
  }
  const e = parsed.data;
  return Object.freeze({
    port: e.PORT,
    host: e.HOST,
    logLevel: e.LOG_LEVEL,
    databaseUrl: e.DATABASE_URL,
    dataDir: e.DATA_DIR,
    dbPoolSize: e.DB_POOL_SIZE,
    dbReadPoolSize: e.DB_READ_POOL_SIZE,
    dbReadStatementTimeoutMs: e.DB_READ_STATEMENT_TIMEOUT_MS,
    statementCacheBytes: e.STATEMENT_CACHE_MB * 1024 * 1024,
    dbIdleInTransactionTimeoutMs: e.DB_IDLE_IN_TRANSACTION_TIMEOUT_MS,
    http: Object.freeze({
      requestTimeoutMs: e.HTTP_REQUEST_TIMEOUT_MS,
      headersTimeoutMs: e.HTTP_HEADERS_TIMEOUT_MS,
      keepAliveTimeoutMs: e.HTTP_KEEP_ALIVE_TIMEOUT_MS,
      connectionTimeoutMs: e.HTTP_CONNECTION_TIMEOUT_MS,
    }),
    drain: Object.freeze({ delayMs: e.DRAIN_DELAY_MS, timeoutMs: e.DRAIN_TIMEOUT_MS }),
    eventStoreUrl: e.EVENTSTORE_URL,
    webhookToken: e.WEBHOOK_TOKEN,
    webhookAllowedIps: e.WEBHOOK_ALLOWED_IPS,
    apiToken: e.API_TOKEN,
    allowInsecure: e.ALLOW_INSECURE,
    rateLimits: Object.freeze(
      Object.fromEntries(Object.entries(RATE_LIMITS).map(([name, c]) => [name, e[c.env]])) as Record<RateLimitClass, number>,
    ),
    trustProxy: e.TRUST_PROXY,
    webhookBodyLimit: e.WEBHOOK_BODY_LIMIT,
    runProjections: e.RUN_PROJECTIONS,
    projectionBatchSize: e.PROJECTION_BATCH_SIZE,
    projectionSettleMs: e.PROJECTION_SETTLE_MS,
    bankHub: Object.freeze({
      baseUrl: e.BANKHUB_BASE_URL,
      linkUrl: e.BANKHUB_LINK_URL,
      apiVersion: e.BANKHUB_API_VERSION,
      scopes: e.BANKHUB_SCOPES,
      redirectUri: e.BANKHUB_REDIRECT_URI,
      rateLimitMs: e.BANKHUB_RATE_LIMIT_MS,
      credentials:
        e.BANKHUB_CLIENT_ID && e.BANKHUB_SECRET_KEY
          ? Object.freeze({ clientId: e.BANKHUB_CLIENT_ID, secretKey: e.BANKHUB_SECRET_KEY })
          : undefined,
      missing: [
        ...(e.BANKHUB_CLIENT_ID ? [] : ['BANKHUB_CLIENT_ID']),
        ...(e.BANKHUB_SECRET_KEY ? [] : ['BANKHUB_SECRET_KEY']),
      ],
    }),
    secretsKey: e.SECRETS_KEY,
    healAfterSeconds: e.HEAL_AFTER_SECONDS,
    healIntervalSeconds: e.HEAL_INTERVAL_SECONDS,
    logFormat: e.LOG_FORMAT,
    metricsPort: e.METRICS_PORT,
    alerts: Object.freeze({
      webhookUrl: e.ALERT_WEBHOOK_URL,
      format: e.ALERT_WEBHOOK_FORMAT,
      breakAfterSeconds: e.ALERT_BREAK_AFTER_SECONDS,
      lagSeconds: e.ALERT_LAG_SECONDS,
      intervalSeconds: e.ALERT_INTERVAL_SECONDS,
    }),
    sweepAtMinutes: e.SWEEP_AT === 'off' ? null : Number(e.SWEEP_AT.slice(0, 2)) * 60 + Number(e.SWEEP_AT.slice(3, 5)),
  });
}

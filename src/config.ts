import ipaddr from 'ipaddr.js';
import { z } from 'zod';

/**
 * The only reader of process.env. One schema; defaults only where harmless; a bad value stops start-up with a
 * message that names the variable.
 */
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

const envSchema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  HOST: z.string().min(1).default('127.0.0.1'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  DATABASE_URL: z.preprocess(emptyAsUndefined, z.url({ protocol: /^postgres(ql)?$/, error: 'must be a postgres:// URL' }).optional()),
  DATA_DIR: z.string().min(1).default('./data'),
  DB_POOL_SIZE: z.coerce.number().int().min(2).max(200).default(20),
  EVENTSTORE_URL: z.preprocess(
    emptyAsUndefined,
    z.string().regex(/^esdb(\+discover)?:\/\//, 'must be an esdb:// connection string').optional(),
  ),
  WEBHOOK_TOKEN: z.preprocess(
    emptyAsUndefined,
    z.string().min(16, 'must be at least 16 characters: a long random secret').optional(),
  ),
  WEBHOOK_ALLOWED_IPS: z.preprocess(emptyAsUndefined, cidrList.optional()),
  TRUST_PROXY: z.preprocess(emptyAsUndefined, cidrList.optional()),
  WEBHOOK_BODY_LIMIT: z.coerce.number().int().min(1024).max(64 * 1024 * 1024).default(1024 * 1024),
  RUN_PROJECTIONS: z.enum(['true', 'false']).default('true').transform((v) => v === 'true'),
});

export type Config = Readonly<{
  port: number;
  host: string;
  logLevel: z.infer<typeof envSchema>['LOG_LEVEL'];
  databaseUrl: string | undefined;
  dataDir: string;
  dbPoolSize: number;
  eventStoreUrl: string | undefined;
  webhookToken: string | undefined;
  webhookAllowedIps: readonly string[] | undefined;
  trustProxy: readonly string[] | undefined;
  webhookBodyLimit: number;
  runProjections: boolean;
}>;

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

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
    eventStoreUrl: e.EVENTSTORE_URL,
    webhookToken: e.WEBHOOK_TOKEN,
    webhookAllowedIps: e.WEBHOOK_ALLOWED_IPS,
    trustProxy: e.TRUST_PROXY,
    webhookBodyLimit: e.WEBHOOK_BODY_LIMIT,
    runProjections: e.RUN_PROJECTIONS,
  });
}

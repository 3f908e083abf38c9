import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config';

describe('configuration', () => {
  it('runs with nothing set: embedded store, port 3000, open webhook', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({ port: 3000, databaseUrl: undefined, dataDir: './data', webhookToken: undefined });
    expect(Object.isFrozen(config)).toBe(true);
  });

  it.each([
    [{ PORT: 'eighty' }, 'PORT'],
    [{ PORT: '70000' }, 'PORT'],
    [{ DATABASE_URL: 'mysql://x@y/z' }, 'DATABASE_URL'],
    [{ WEBHOOK_TOKEN: 'short' }, 'WEBHOOK_TOKEN'],
    [{ WEBHOOK_ALLOWED_IPS: '10.0.0.0/8,not-an-ip' }, 'WEBHOOK_ALLOWED_IPS'],
    [{ TRUST_PROXY: '300.1.1.1' }, 'TRUST_PROXY'],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL'],
    [{ EVENTSTORE_URL: 'http://localhost:2113' }, 'EVENTSTORE_URL'],
    [{ BANKHUB_BASE_URL: 'sandbox.bankhub.dev' }, 'BANKHUB_BASE_URL'],
    [{ BANKHUB_REDIRECT_URI: 'https://shop.example/cas?from=link' }, 'BANKHUB_REDIRECT_URI'],
    [{ SECRETS_KEY: 'ab'.repeat(16) }, 'SECRETS_KEY'],
    [{ BANKHUB_CLIENT_ID: 'id', BANKHUB_SECRET_KEY: 'secret' }, 'SECRETS_KEY'],
    [{ HEAL_AFTER_SECONDS: '0' }, 'HEAL_AFTER_SECONDS'],
    [{ ALLOW_INSECURE: 'yes' }, 'ALLOW_INSECURE'],
    [{ RATE_LIMIT_STATEMENTS: '-1' }, 'RATE_LIMIT_STATEMENTS'],
    [{ RATE_LIMIT_CALLBACK: 'many' }, 'RATE_LIMIT_CALLBACK'],
    [{ DB_READ_STATEMENT_TIMEOUT_MS: '-1' }, 'DB_READ_STATEMENT_TIMEOUT_MS'],
    [{ HTTP_HEADERS_TIMEOUT_MS: '40000' }, 'HTTP_HEADERS_TIMEOUT_MS'],
    [{ DRAIN_DELAY_MS: '25000' }, 'DRAIN_DELAY_MS'],
    [{ LOG_FORMAT: 'colour' }, 'LOG_FORMAT'],
    [{ METRICS_PORT: '99999' }, 'METRICS_PORT'],
    [{ ALERT_WEBHOOK_URL: 'hooks.slack.example/x' }, 'ALERT_WEBHOOK_URL'],
    [{ ALERT_WEBHOOK_FORMAT: 'slack' }, 'ALERT_WEBHOOK_FORMAT'],
    [{ ALERT_BREAK_AFTER_SECONDS: '0' }, 'ALERT_BREAK_AFTER_SECONDS'],
    [{ ALERT_LAG_SECONDS: '-5' }, 'ALERT_LAG_SECONDS'],
    [{ ALERT_INTERVAL_SECONDS: 'often' }, 'ALERT_INTERVAL_SECONDS'],
    [{ SWEEP_AT: '3am' }, 'SWEEP_AT'],
    [{ SWEEP_AT: '24:00' }, 'SWEEP_AT'],
  ])('refuses %o and names %s', (env, variable) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(new RegExp(`^invalid configuration:\\n  ${variable}: `));
  });

  it('reads the rate limits per class, 0 lifting one', () => {
    expect(loadConfig({}).rateLimits).toEqual({ statements: 600, export: 600, verify: 6, backfill: 30, callback: 30 });
    expect(loadConfig({ RATE_LIMIT_VERIFY: '0', RATE_LIMIT_BACKFILL: '5' }).rateLimits).toMatchObject({ verify: 0, backfill: 5 });
    expect(loadConfig({ ALLOW_INSECURE: 'true' }).allowInsecure).toBe(true);
  });

  it('names every bad variable at once', () => {
    const error = (() => {
      try {
        loadConfig({ PORT: 'x', WEBHOOK_TOKEN: 'y' });
      } catch (e) {
        return e as Error;
      }
    })();
    expect(error?.message).toContain('PORT');
    expect(error?.message).toContain('WEBHOOK_TOKEN');
  });

  it('bounds every connection, statement and shutdown by default', () => {
    expect(loadConfig({})).toMatchObject({
      dbPoolSize: 20,
      dbReadPoolSize: 8,
      dbReadStatementTimeoutMs: 20_000,
      dbIdleInTransactionTimeoutMs: 60_000,
      http: { requestTimeoutMs: 30_000, headersTimeoutMs: 10_000, keepAliveTimeoutMs: 72_000, connectionTimeoutMs: 300_000 },
      drain: { delayMs: 5_000, timeoutMs: 25_000 },
    });
  });

  it('reads lists of networks', () => {
    expect(loadConfig({ WEBHOOK_ALLOWED_IPS: ' 20.2.69.168 , 10.0.0.0/8' }).webhookAllowedIps).toEqual(['20.2.69.168', '10.0.0.0/8']);
  });

  it('leaves Cas BankHub off without credentials, naming what is missing', () => {
    const { bankHub, secretsKey, healAfterSeconds } = loadConfig({ BANKHUB_CLIENT_ID: 'id' });
    expect(bankHub).toMatchObject({
      baseUrl: 'https://sandbox.bankhub.dev',
      linkUrl: 'https://dev.link.bankhub.dev',
      apiVersion: '2023-01-01',
      scopes: 'transactions',
      credentials: undefined,
      missing: ['BANKHUB_SECRET_KEY'],
    });
    expect(secretsKey).toBeUndefined();
    expect(healAfterSeconds).toBe(600);
  });

  it('turns Cas BankHub on with credentials and a 32-byte key', () => {
    const key = '0f'.repeat(32);
    const config = loadConfig({ BANKHUB_CLIENT_ID: 'id', BANKHUB_SECRET_KEY: 'secret', SECRETS_KEY: key, BANKHUB_SCOPES: 'qrpay,virtual_account' });
    expect(config.bankHub).toMatchObject({ credentials: { clientId: 'id', secretKey: 'secret' }, missing: [], scopes: 'qrpay,virtual_account' });
    expect(config.secretsKey).toBe(key);
  });

  it('leaves alerting off and sweeps at 03:00 bank time by default', () => {
    expect(loadConfig({})).toMatchObject({
      logFormat: undefined,
      metricsPort: undefined,
      alerts: { webhookUrl: undefined, format: 'full', breakAfterSeconds: 900, lagSeconds: 300, intervalSeconds: 15 },
      sweepAtMinutes: 180,
    });
    const set = loadConfig({ ALERT_WEBHOOK_URL: 'https://chat.example/hook?key=k', SWEEP_AT: '23:45', METRICS_PORT: '9464', LOG_FORMAT: 'pretty' });
    expect(set).toMatchObject({ alerts: { webhookUrl: 'https://chat.example/hook?key=k' }, sweepAtMinutes: 23 * 60 + 45, metricsPort: 9464, logFormat: 'pretty' });
    expect(loadConfig({ SWEEP_AT: 'off' }).sweepAtMinutes).toBeNull();
  });
});

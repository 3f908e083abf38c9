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
  ])('refuses %o and names %s', (env, variable) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(new RegExp(`^invalid configuration:\\n  ${variable}: `));
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

  it('reads lists of networks', () => {
    expect(loadConfig({ WEBHOOK_ALLOWED_IPS: ' 20.2.69.168 , 10.0.0.0/8' }).webhookAllowedIps).toEqual(['20.2.69.168', '10.0.0.0/8']);
  });
});

import { describe, expect, it } from 'vitest';
import { exposureRefusal, isLoopbackHost } from '../../src/infrastructure/exposure';

describe('where the service can be reached', () => {
  it.each([
    ['127.0.0.1', true],
    ['127.8.9.10', true],
    ['localhost', true],
    ['::1', true],
    ['[::1]', true],
    ['::ffff:127.0.0.1', true],
    ['0.0.0.0', false],
    ['::', false],
    ['10.1.2.3', false],
    ['192.168.1.20', false],
    ['ledger.example', false],
  ])('%s is loopback: %s', (host, loopback) => {
    expect(isLoopbackHost(host)).toBe(loopback);
  });
});

describe('closed by default where it can be reached', () => {
  const secret = 'x'.repeat(32);
  const base = { host: '0.0.0.0', webhookToken: undefined, apiToken: undefined, liveKeys: 0, allowInsecure: false };

  it('starts on loopback with nothing set', () => {
    expect(exposureRefusal({ ...base, host: '127.0.0.1' })).toBeNull();
  });

  it.each([
    [{}, ['WEBHOOK_TOKEN', 'API_TOKEN', 'keys create']],
    [{ webhookToken: secret }, ['API_TOKEN', 'keys create']],
    [{ apiToken: secret }, ['WEBHOOK_TOKEN']],
    [{ liveKeys: 2 }, ['WEBHOOK_TOKEN']],
  ])('refuses %o elsewhere, naming %o', (set, named) => {
    const refusal = exposureRefusal({ ...base, ...set });
    for (const name of named) expect(refusal).toContain(name);
    expect(refusal).toContain('ALLOW_INSECURE=true');
  });

  it.each([[{ webhookToken: secret, apiToken: secret }], [{ webhookToken: secret, liveKeys: 1 }], [{ allowInsecure: true }]])(
    'starts with %o',
    (set) => {
      expect(exposureRefusal({ ...base, ...set })).toBeNull();
    },
  );
});

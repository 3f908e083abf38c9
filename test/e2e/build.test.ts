import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sample } from '../support/app';
import { createTestDatabase, type TestDatabase } from '../support/postgres';
import { ROOT, spawnProcess, startService, stopService, waitFor } from '../support/service';

const TOKEN = 'e2e-webhook-token-0123456789abcdef';
const API_TOKEN = 'e2e-api-token-0123456789abcdef';

/**
 * What production runs: the build (tools/build.mjs, as `npm start`, `npm run ledger`, prepare and the Dockerfile run
 * it) on plain Node, no loader. The other tests run the sources through tsx; this one proves the bundle works.
 */
describe('the build (dist/main.js, dist/cli.js) on PostgreSQL', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    const build = spawnSync(process.execPath, [join(ROOT, 'tools', 'build.mjs')], { cwd: ROOT, encoding: 'utf8' });
    expect(build.status, build.stderr).toBe(0);
    db = await createTestDatabase('build');
  });
  afterAll(async () => {
    await db?.drop();
  });

  it('starts, answers /health, books a webhook, serves the console, and projects it', async () => {
    const service = await startService({ DATABASE_URL: db.url, WEBHOOK_TOKEN: TOKEN, API_TOKEN, DRAIN_DELAY_MS: '0' }, { compiled: true });
    try {
      expect(service.child.spawnargs).not.toContain('tsx');
      const health = await fetch(`${service.url}/health`);
      expect(health.status).toBe(200);
      expect(await health.json()).toMatchObject({ status: 'ok' });

      const res = await fetch(`${service.url}/webhooks/bankhub`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-webhook-token': TOKEN },
        body: sample('transaction-webhook.json'),
      });
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ status: 'accepted' });

      // The console is found beside the bundle (dist/console), as it is beside the sources.
      const console = await fetch(`${service.url}/`);
      expect(console.status).toBe(200);

      const headers = { authorization: `Bearer ${API_TOKEN}` };
      await waitFor(
        'the webhook to be projected',
        async () => {
          const body = (await (await fetch(`${service.url}/accounts`, { headers })).json()) as { accounts: { accountNumber: string }[] };
          return body.accounts.some((a) => a.accountNumber === '867623232');
        },
        15_000,
      );
      // Projected by the bundle's own thread (dist/projection-thread.js), not through tsx.
      expect(service.output()).toContain('projection runners started on their own thread');
    } finally {
      expect(await stopService(service)).toBe(0);
    }
  });

  it('runs the compiled CLI: `ledger status` over the same database', async () => {
    const cli = spawnProcess(['dist/cli.js', 'status'], { DATABASE_URL: db.url, LOG_LEVEL: 'warn' }, { compiled: true });
    expect(await cli.exited).toBe(0);
    expect(cli.output()).toContain('"ledger"');
  });
});

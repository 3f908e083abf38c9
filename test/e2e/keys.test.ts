import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, eventually, type TestDatabase } from '../support/postgres';
import { ROOT, type ServiceProcess, startService, stopService } from '../support/service';

const run = promisify(execFile);
const WEBHOOK_TOKEN = 'e2e-webhook-token-0123456789abcdef';
const API_TOKEN = 'e2e-bootstrap-admin-token-0123456789';

let db: TestDatabase;
const ledger = (...args: string[]) =>
  run(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], { cwd: ROOT, env: { PATH: process.env.PATH ?? '', DATABASE_URL: db.url } });
const failing = (...args: string[]) => ledger(...args).then(() => ({ code: 0, stderr: '' }), (e: { code: number; stderr: string }) => e);

/** The checks of issue 12, from outside: keys made by the CLI, two service processes on one database. */
describe('API keys made by `ledger keys create`, on two running services', () => {
  const keys: Record<'accountant' | 'auditor' | 'operator', string> = { accountant: '', auditor: '', operator: '' };
  let a: ServiceProcess;
  let b: ServiceProcess;

  beforeAll(async () => {
    db = await createTestDatabase('keys');
    for (const role of ['accountant', 'auditor', 'operator'] as const) {
      const { stdout, stderr } = await ledger('keys', 'create', '--role', role, '--name', `${role}-console`);
      // The key is the only line on standard output, so that `$(ledger keys create …)` captures exactly it.
      expect(stdout).toMatch(/^bl_[A-Za-z0-9_-]{43}\n$/);
      expect(stderr).toContain(`role ${role}`);
      keys[role] = stdout.trim();
    }
    // One with API_TOKEN on loopback; one on 0.0.0.0 whose only way in is the keys (it may start: a live key exists).
    [a, b] = await Promise.all([
      startService({ DATABASE_URL: db.url, WEBHOOK_TOKEN, API_TOKEN }),
      startService({ DATABASE_URL: db.url, WEBHOOK_TOKEN, HOST: '0.0.0.0', RUN_PROJECTIONS: 'false' }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([a && stopService(a), b && stopService(b)]);
    await db?.drop();
  });

  const call = (service: ServiceProcess, method: string, path: string, key?: string, body?: object) =>
    fetch(`${service.url}${path}`, {
      method,
      headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    }).then((r) => r.status);
  const backfill = { from: '2026-01-01', to: '2026-01-02' };

  it('refuses a second live key of the same name, and a role that does not exist', async () => {
    const taken = await failing('keys', 'create', '--role', 'admin', '--name', 'auditor-console');
    expect(taken.code).not.toBe(0);
    expect(taken.stderr).toContain('already named auditor-console');
    const role = await failing('keys', 'create', '--role', 'root', '--name', 'x');
    expect(role.code).not.toBe(0);
    expect(role.stderr).toContain('accountant');
  });

  it('gives each role exactly its routes, on both processes', async () => {
    for (const s of [a, b]) {
      expect(await call(s, 'GET', '/accounts')).toBe(401);
      expect(await call(s, 'GET', '/accounts', keys.accountant)).toBe(200);
      expect(await call(s, 'GET', '/audit/events', keys.accountant)).toBe(403);
      expect(await call(s, 'POST', '/audit/verify', keys.accountant)).toBe(403);
      expect(await call(s, 'POST', '/links', keys.accountant, {})).toBe(403);
      expect(await call(s, 'GET', '/audit/events', keys.auditor)).toBe(200);
      expect(await call(s, 'POST', '/grants/g-1/backfill', keys.auditor, backfill)).toBe(403);
      expect(await call(s, 'GET', '/grants', keys.operator)).toBe(200);
      expect(await call(s, 'GET', '/audit/events', keys.operator)).toBe(403);
    }
    for (const [method, path, body] of [
      ['GET', '/accounts'],
      ['GET', '/audit/events'],
      ['POST', '/audit/verify'],
      ['GET', '/grants'],
      ['GET', '/projections'],
      ['POST', '/links', {}],
      ['POST', '/grants/g-1/backfill', backfill],
    ] as [string, string, object?][]) {
      const status = await call(a, method, path, API_TOKEN, body);
      expect([401, 403], `${method} ${path} with API_TOKEN`).not.toContain(status);
    }
  });

  it('lists the keys without the keys, and a revoke reaches every process within a second', async () => {
    const listed = (await ledger('keys', 'list')).stdout;
    for (const role of Object.keys(keys)) expect(listed).toContain(`${role}-console\t${role}`);
    for (const key of Object.values(keys)) expect(listed).not.toContain(key.slice(3));

    await ledger('keys', 'revoke', 'accountant-console');
    const revokedAt = Date.now();
    await Promise.all(
      [a, b].map((s) => eventually(async () => expect(await call(s, 'GET', '/accounts', keys.accountant)).toBe(401), { timeoutMs: 1000, intervalMs: 10 })),
    );
    expect(Date.now() - revokedAt).toBeLessThan(1000);
    for (const s of [a, b]) {
      expect(await call(s, 'GET', '/audit/events', keys.auditor)).toBe(200);
      expect(await call(s, 'GET', '/grants', keys.operator)).toBe(200);
    }
    const after = (await ledger('keys', 'list')).stdout.split('\n').find((l) => l.includes('accountant-console'))!;
    const [, , , created, lastUsed, revoked] = after.split('\t');
    expect(Date.parse(created!)).not.toBeNaN();
    expect(Date.parse(lastUsed!)).not.toBeNaN();
    expect(Date.parse(revoked!)).not.toBeNaN();
  });

  it('keeps no key in a pg_dump of the database', async () => {
    const { stdout } = await run('pg_dump', ['--no-owner', db.url], { maxBuffer: 256 * 1024 * 1024 });
    expect(stdout).toContain('api_keys');
    expect(stdout).toContain('accountant-console');
    for (const key of [...Object.values(keys), API_TOKEN]) {
      expect(stdout).not.toContain(key);
      expect(stdout).not.toContain(key.slice(3, 23));
    }
  });

  it('logs the key id on each request line and never a key', () => {
    const output = a.output() + b.output();
    expect(output).toMatch(/"keyId":"[0-9a-f-]{36}"/);
    for (const key of [...Object.values(keys), API_TOKEN]) expect(output).not.toContain(key);
  });
});

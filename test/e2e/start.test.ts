import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { sample } from '../support/app';
import { createTestDatabase, type TestDatabase } from '../support/postgres';

const ROOT = join(import.meta.dirname, '..', '..');
const TOKEN = 'e2e-webhook-token-0123456789abcdef';

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** `npm start` as a newcomer runs it: the composition root in a process of its own. */
async function start(env: Record<string, string>): Promise<{ url: string; child: ChildProcess; output: () => string }> {
  const port = await freePort();
  let output = '';
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', PORT: String(port), LOG_LEVEL: 'info', ...env },
  });
  child.stdout?.on('data', (d) => (output += d));
  child.stderr?.on('data', (d) => (output += d));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the service exited: ${output}`);
    if ((await fetch(`${url}/ready`).catch(() => null))?.ok) return { url, child, output: () => output };
    if (Date.now() > deadline) throw new Error(`the service did not get ready: ${output}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function stop(child: ChildProcess): Promise<number | null> {
  child.kill('SIGTERM');
  if (child.exitCode === null) await new Promise((r) => child.once('exit', r));
  return child.exitCode;
}

const post = (url: string, body: Buffer | string, token = TOKEN) =>
  fetch(`${url}/webhooks/bankhub?token=${token}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });

describe('npm start on PostgreSQL (DATABASE_URL)', () => {
  let db: TestDatabase;
  afterAll(async () => {
    await db?.drop();
  });

  it('serves: 20 simultaneous deliveries of the sample give one accepted and 19 duplicates; bad input is refused and kept', async () => {
    db = await createTestDatabase('start');
    const { url, child, output } = await start({ DATABASE_URL: db.url, WEBHOOK_TOKEN: TOKEN });
    try {
      const answers = await Promise.all(
        Array.from({ length: 20 }, () => post(url, sample('transaction-webhook.json')).then((r) => r.json() as Promise<{ status: string }>)),
      );
      const statuses = answers.map((a) => a.status).sort();
      expect(statuses.filter((s) => s === 'accepted')).toHaveLength(1);
      expect(statuses.filter((s) => s === 'duplicate')).toHaveLength(19);

      const bad = await post(url, '{"webhookType":"TRANSACTIONS","webhookCode":"DEFAULT_UPDATE","transaction":{"id":"x1","amount":1.5}}');
      expect(bad.status).toBe(400);
      const problem = (await bad.json()) as { errors: { field: string }[]; quarantineId?: string };
      expect(problem.errors.map((e) => e.field)).toContain('transaction.amount');
      expect(problem.quarantineId).toBeDefined();

      const unauthorised = await post(url, sample('transaction-webhook.json'), 'wrong-token');
      expect(unauthorised.status).toBe(401);

      // The projection runs in-process: it books the one accepted transaction.
      const deadline = Date.now() + 15_000;
      let projected = '0';
      while (projected !== '1' && Date.now() < deadline) {
        const { projections } = (await (await fetch(`${url}/projections`)).json()) as { projections: { projection: string; eventsProjected: string }[] };
        projected = projections.find((p) => p.projection === 'ledger')?.eventsProjected ?? '0';
        if (projected !== '1') await new Promise((r) => setTimeout(r, 50));
      }
      expect(projected).toBe('1');
      expect(output()).not.toContain(TOKEN);
    } finally {
      expect(await stop(child)).toBe(0);
    }
  });
});

describe('npm start with no configuration', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'balance-ledger-start-'));
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it('runs on the embedded store, warns that the webhook is open, and accepts the sample', async () => {
    const { url, child, output } = await start({ DATA_DIR: dataDir });
    try {
      const res = await post(url, sample('transaction-webhook.json'), '');
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ status: 'accepted' });
      expect(output()).toContain('WEBHOOK_TOKEN is not set');
      expect(output()).toContain('embedded PGlite');
      // Read side on the embedded store: paged accounts, and the statement CSV streamed over its one connection.
      const deadline = Date.now() + 30_000;
      let accounts: { id: string }[] = [];
      while (accounts.length === 0 && Date.now() < deadline) {
        accounts = ((await (await fetch(`${url}/accounts?limit=10`)).json()) as { accounts: { id: string }[] }).accounts;
        if (accounts.length === 0) await new Promise((r) => setTimeout(r, 100));
      }
      const csv = await fetch(`${url}/accounts/${accounts[0]!.id}/statement?from=2000-01-01&to=2099-12-31&format=csv`);
      expect(csv.status).toBe(200);
      const rows = (await csv.text()).trim().split('\r\n');
      expect(rows.filter((r) => r.startsWith('line,'))).toHaveLength(1);
      expect(rows.at(-1)).toMatch(/^closing,/);
    } finally {
      expect(await stop(child)).toBe(0);
    }
  });
});

describe('a bad configuration', () => {
  it('stops start-up with a message that names the variable', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], { cwd: ROOT, env: { PATH: process.env.PATH ?? '', PORT: 'eighty' } });
    let output = '';
    child.stderr.on('data', (d) => (output += d));
    const code = await new Promise<number | null>((r) => child.once('exit', r));
    expect(code).toBe(78);
    expect(output).toContain('PORT');
  });
});

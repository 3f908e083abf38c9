import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { sample } from '../support/app';
import { createTestDatabase, type TestDatabase } from '../support/postgres';
import { runServiceToExit, startService, stopService, waitFor } from '../support/service';

const TOKEN = 'e2e-webhook-token-0123456789abcdef';

/** `npm start` as a newcomer runs it: the composition root in a process of its own (no drain delay at SIGTERM). */
const start = (env: Record<string, string>) => startService({ LOG_LEVEL: 'info', DRAIN_DELAY_MS: '0', ...env });
const stop = stopService;

const post = (url: string, body: Buffer | string, token = TOKEN) =>
  fetch(`${url}/webhooks/bankhub?token=${token}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });

describe('npm start on PostgreSQL (DATABASE_URL)', () => {
  let db: TestDatabase;
  afterAll(async () => {
    await db?.drop();
  });

  it('serves: 20 simultaneous deliveries of the sample give one accepted and 19 duplicates; bad input is refused and kept', async () => {
    db = await createTestDatabase('start');
    const service = await start({ DATABASE_URL: db.url, WEBHOOK_TOKEN: TOKEN });
    const { url, output } = service;
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

      // The projection runs in the process, on a thread of its own: it books the one accepted transaction, and the
      // process's /projections reports the thread's runner, active.
      const deadline = Date.now() + 15_000;
      let ledger: { eventsProjected: string; active: boolean } | undefined;
      while (ledger?.eventsProjected !== '1' && Date.now() < deadline) {
        const { projections } = (await (await fetch(`${url}/projections`)).json()) as { projections: { projection: string; eventsProjected: string; active: boolean }[] };
        ledger = projections.find((p) => p.projection === 'ledger');
        if (ledger?.eventsProjected !== '1') await new Promise((r) => setTimeout(r, 50));
      }
      expect(ledger).toMatchObject({ eventsProjected: '1', active: true });
      expect(output()).toMatch(/"thread":"projections".*"msg":"projection runners started on their own thread"/);
      expect(output()).not.toContain(TOKEN);
    } finally {
      expect(await stop(service)).toBe(0);
    }
    // Lines are written once per turn of the event loop: the last ones before the exit are not lost, and every
    // webhook answered has its one line.
    await waitFor('the last log line', () => output().includes('drained; exiting'), 5_000);
    const lines = output().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { msg: string; route?: string });
    expect(lines.filter((l) => l.msg === 'request completed' && l.route === '/webhooks/bankhub')).toHaveLength(22);
    expect(lines.at(-1)?.msg).toBe('drained; exiting');
  });
});

describe('npm start with no configuration', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'balance-ledger-start-'));
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it('runs on the embedded store, warns that the webhook is open, and accepts the sample', async () => {
    const service = await start({ DATA_DIR: dataDir });
    const { url, output } = service;
    try {
      const res = await post(url, sample('transaction-webhook.json'), '');
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ status: 'accepted' });
      expect(output()).toContain('WEBHOOK_TOKEN is not set');
      expect(output()).toContain('embedded PGlite');
      expect(output()).not.toContain('on their own thread'); // PGlite lives in the main thread's heap
      // Read side on the embedded store: paged accounts, the statement (its page of lines comes as PGlite's bytes),
      // and the statement CSV streamed over its one connection.
      const deadline = Date.now() + 30_000;
      let accounts: { id: string }[] = [];
      while (accounts.length === 0 && Date.now() < deadline) {
        accounts = ((await (await fetch(`${url}/accounts?limit=10`)).json()) as { accounts: { id: string }[] }).accounts;
        if (accounts.length === 0) await new Promise((r) => setTimeout(r, 100));
      }
      const json = await fetch(`${url}/accounts/${accounts[0]!.id}/statement?from=2000-01-01&to=2099-12-31`);
      expect(json.status).toBe(200);
      expect(((await json.json()) as { lines: { transactionId: string }[] }).lines).toHaveLength(1);
      const csv = await fetch(`${url}/accounts/${accounts[0]!.id}/statement?from=2000-01-01&to=2099-12-31&format=csv`);
      expect(csv.status).toBe(200);
      const rows = (await csv.text()).trim().split('\r\n');
      expect(rows.filter((r) => r.startsWith('line,'))).toHaveLength(1);
      expect(rows.at(-1)).toMatch(/^closing,/);
    } finally {
      expect(await stop(service)).toBe(0);
    }
  });
});

describe('a bad configuration', () => {
  it('stops start-up with a message that names the variable', async () => {
    const { code, output } = await runServiceToExit({ PORT: 'eighty' });
    expect(code).toBe(78);
    expect(output).toContain('PORT');
  });
});

describe('HOST=0.0.0.0 (reachable from other machines)', () => {
  let db: TestDatabase;
  afterAll(async () => {
    await db?.drop();
  });

  it('refuses to start without the secrets, naming them; serves with them, closed', async () => {
    db = await createTestDatabase('exposed');
    const bare = await runServiceToExit({ HOST: '0.0.0.0', DATABASE_URL: db.url });
    expect(bare.code).not.toBe(0);
    expect(bare.output).toContain('WEBHOOK_TOKEN');
    expect(bare.output).toContain('API_TOKEN');
    expect(bare.output).toContain('keys create');

    const noKey = await runServiceToExit({ HOST: '0.0.0.0', DATABASE_URL: db.url, WEBHOOK_TOKEN: TOKEN });
    expect(noKey.code).not.toBe(0);
    expect(noKey.output).toContain('API_TOKEN');
    expect(noKey.output).not.toContain('WEBHOOK_TOKEN is not set');

    const apiToken = 'e2e-api-token-0123456789abcdef';
    const service = await start({ HOST: '0.0.0.0', DATABASE_URL: db.url, WEBHOOK_TOKEN: TOKEN, API_TOKEN: apiToken });
    const { url, output } = service;
    try {
      expect((await fetch(`${url}/accounts`)).status).toBe(401);
      expect((await fetch(`${url}/accounts`, { headers: { authorization: `Bearer ${apiToken}` } })).status).toBe(200);
      expect((await post(url, sample('transaction-webhook.json'))).status).toBe(200);
    } finally {
      expect(await stop(service)).toBe(0);
    }
  });

  it('starts open when ALLOW_INSECURE=true says the operator means it, and says so', async () => {
    const service = await start({ HOST: '0.0.0.0', DATABASE_URL: db.url, ALLOW_INSECURE: 'true' });
    const { url, output } = service;
    try {
      expect((await fetch(`${url}/accounts`)).status).toBe(200);
      expect(output()).toContain('ALLOW_INSECURE=true');
    } finally {
      expect(await stop(service)).toBe(0);
    }
  });
});

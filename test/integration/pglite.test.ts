import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ingestWebhook } from '../../src/application/ingest-webhook';
import { openRoot } from '../../src/composition-root';
import { loadConfig } from '../../src/config';
import { sample } from '../support/app';

describe('embedded PGlite store (npm start with no DATABASE_URL)', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'balance-ledger-pglite-'));
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it('migrates, books the sample webhook once, and keeps it across a restart', async () => {
    const config = loadConfig({ DATA_DIR: dataDir, LOG_LEVEL: 'silent' });
    const delivery = { body: sample('transaction-webhook.json'), contentType: 'application/json', receivedAt: new Date(), requestId: 'r1', remoteAddress: null };
    let root = await openRoot(config);
    expect(root.resolve('database').kind).toBe('pglite');
    const first = await ingestWebhook({ eventStore: root.resolve('eventStore'), quarantine: root.resolve('quarantine') }, delivery);
    expect(first).toMatchObject({ ok: true, value: { status: 'accepted' } });
    await root.close();

    root = await openRoot(config);
    try {
      const again = await ingestWebhook({ eventStore: root.resolve('eventStore'), quarantine: root.resolve('quarantine') }, delivery);
      expect(again).toMatchObject({ ok: true, value: { status: 'duplicate' } });
      const page = await root.resolve('eventStore').readAll({ after: null, maxCount: 10 });
      expect(page.events.map((e) => e.type)).toEqual(['BalanceChanged']);
    } finally {
      await root.close();
    }
  });
});

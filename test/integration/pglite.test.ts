import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { ingestWebhook } from '../../src/application/ingest-webhook';
import { loadConfig } from '../../src/config';
import { openStores } from '../../src/infrastructure/runtime';
import { sample } from '../support/app';

describe('embedded PGlite store (npm start with no DATABASE_URL)', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'balance-ledger-pglite-'));
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it('migrates, books the sample webhook once, and keeps it across a restart', async () => {
    const config = loadConfig({ DATA_DIR: dataDir });
    const delivery = { body: sample('transaction-webhook.json'), contentType: 'application/json', receivedAt: new Date(), requestId: 'r1', remoteAddress: null };
    let stores = await openStores(config, pino({ level: 'silent' }));
    expect(stores.database.kind).toBe('pglite');
    const first = await ingestWebhook({ eventStore: stores.eventStore, quarantine: stores.quarantine }, delivery);
    expect(first).toMatchObject({ ok: true, value: { status: 'accepted' } });
    await stores.close();

    stores = await openStores(config, pino({ level: 'silent' }));
    try {
      const again = await ingestWebhook({ eventStore: stores.eventStore, quarantine: stores.quarantine }, delivery);
      expect(again).toMatchObject({ ok: true, value: { status: 'duplicate' } });
      const page = await stores.eventStore.readAll({ after: null, maxCount: 10 });
      expect(page.events.map((e) => e.type)).toEqual(['BalanceChanged']);
    } finally {
      await stores.close();
    }
  });
});

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { loadConfig } from '../src/config';
import { createBankHubServices } from '../src/infrastructure/bankhub/bankhub-services';
import { buildServer } from '../src/infrastructure/http/server';
import { verifyProjections } from '../src/infrastructure/read-model-maintenance';
import { openStores } from '../src/infrastructure/runtime';
import { allProjections } from '../src/projections/all-projections';

/**
 * Writes the OpenAPI document exactly as GET /openapi.json serves it, from `buildServer` on an embedded store in a
 * scratch folder, without listening: `npm run lint:openapi` lints what this writes.
 *   tsx tools/openapi.ts <file>
 */
const out = process.argv[2];
if (!out) throw new Error('usage: tsx tools/openapi.ts <file>');
const dataDir = mkdtempSync(join(tmpdir(), 'balance-ledger-openapi-'));
try {
  const config = loadConfig({ DATA_DIR: dataDir, LOG_LEVEL: 'silent' });
  const logger = pino({ level: 'silent' });
  const stores = await openStores(config, logger);
  try {
    const app = await buildServer({
      logger,
      ingest: { eventStore: stores.eventStore, quarantine: stores.quarantine },
      webhook: { token: undefined, allowedIps: undefined, bodyLimit: config.webhookBodyLimit },
      trustProxy: undefined,
      apiKeys: stores.apiKeys,
      rateLimits: config.rateLimits,
      readinessChecks: {},
      readModels: { db: stores.database.db, schema: 'ledger' },
      verify: () => verifyProjections({ db: stores.database.db, eventStore: stores.eventStore }, allProjections()),
      runners: [],
      now: () => new Date(),
      links: createBankHubServices({ config, stores, logger, now: () => new Date() }).links,
    });
    const res = await app.inject({ url: '/openapi.json' });
    if (res.statusCode !== 200) throw new Error(`GET /openapi.json answered ${res.statusCode}`);
    writeFileSync(out, `${JSON.stringify(res.json(), null, 2)}\n`);
    await app.close();
  } finally {
    await stores.close();
  }
} finally {
  rmSync(dataDir, { recursive: true, force: true });
}

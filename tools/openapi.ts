import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { loadConfig } from '../src/config';
import { createBankHubServices } from '../src/infrastructure/bankhub/bankhub-services';
import { createAlerting } from '../src/infrastructure/alerts/alerting';
import { buildServer } from '../src/infrastructure/http/server';
import { createMetrics } from '../src/infrastructure/metrics';
import { openStores, serverDeps } from '../src/infrastructure/runtime';

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
    const now = () => new Date();
    const links = createBankHubServices({ config, stores, logger, now }).links;
    const metrics = createMetrics({ logger, processMetrics: false });
    const alerting = createAlerting({ config, stores, runners: [], logger, now });
    const app = await buildServer(serverDeps({ config, stores, logger, now, runners: [], links, metrics, alerting }));
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

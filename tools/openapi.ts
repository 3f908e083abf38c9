import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildService, openRoot } from '../src/composition-root';
import { loadConfig } from '../src/config';

/**
 * Writes the OpenAPI document exactly as GET /openapi.json serves it, from the service the composition root builds on
 * an embedded store in a scratch folder, without listening: `npm run lint:openapi` lints what this writes.
 *   tsx tools/openapi.ts <file>
 */
const out = process.argv[2];
if (!out) throw new Error('usage: tsx tools/openapi.ts <file>');
const dataDir = mkdtempSync(join(tmpdir(), 'balance-ledger-openapi-'));
try {
  const service = await buildService(await openRoot(loadConfig({ DATA_DIR: dataDir, LOG_LEVEL: 'silent' })));
  try {
    const res = await service.app.inject({ url: '/openapi.json' });
    if (res.statusCode !== 200) throw new Error(`GET /openapi.json answered ${res.statusCode}`);
    writeFileSync(out, `${JSON.stringify(res.json(), null, 2)}\n`);
  } finally {
    await service.close();
  }
} finally {
  rmSync(dataDir, { recursive: true, force: true });
}

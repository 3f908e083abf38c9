import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readCheckpoint } from '../../src/infrastructure/projection-store';
import { bankTx, createLedgerContext, type LedgerContext } from '../support/ledger';

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '..', '..');
const TSX = join(ROOT, 'node_modules', '.bin', 'tsx');
/** The runner as one process (node with the tsx loader), so that SIGKILL reaches the process that does the work. */
const projectProcess = (env: NodeJS.ProcessEnv) =>
  spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'project'], { cwd: ROOT, env, stdio: 'ignore' });

let ctx: LedgerContext;
const env = () => ({ ...process.env, DATABASE_URL: ctx.testDb.url, LOG_LEVEL: 'warn' });
const ledger = (...args: string[]) => run(TSX, ['src/cli.ts', ...args], { cwd: ROOT, env: env(), maxBuffer: 64 * 1024 * 1024 });

beforeAll(async () => {
  ctx = await createLedgerContext('cli');
  let balance = 0n;
  for (let i = 0; i < 1500; i++) {
    balance += 7n;
    await ctx.deliver(bankTx({ fiId: 'fi-cli', accountNumber: String(i % 20), amount: 7n, runningBalance: balance }));
  }
});
afterAll(async () => {
  await ctx?.close();
});

describe('ledger CLI', () => {
  it('survives being killed mid-projection: after a restart the read models equal a rebuild', async () => {
    let child: ChildProcess = projectProcess({ ...env(), LOG_LEVEL: 'silent', PROJECTION_BATCH_SIZE: '100' });
    // Kill it hard as soon as it has committed something but not everything.
    const deadline = Date.now() + 60_000;
    for (;;) {
      const { events } = await readCheckpoint(ctx.database.db, 'ledger', 'ledger').catch(() => ({ events: 0n }));
      if (events > 0n) break;
      if (Date.now() > deadline) throw new Error('the runner never committed a batch');
      await new Promise((r) => setTimeout(r, 5));
    }
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const { events } = await readCheckpoint(ctx.database.db, 'ledger', 'ledger');
    expect(events).toBeLessThan(1500n);

    child = projectProcess({ ...env(), LOG_LEVEL: 'silent', PROJECTION_BATCH_SIZE: '100' });
    try {
      for (;;) {
        if ((await readCheckpoint(ctx.database.db, 'ledger', 'ledger')).events === 1500n) break;
        if (Date.now() > deadline) throw new Error('the restarted runner did not catch up');
        await new Promise((r) => setTimeout(r, 20));
      }
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
    const { stdout } = await ledger('verify');
    expect(JSON.parse(stdout.slice(stdout.indexOf('{')))).toMatchObject({ ok: true, differences: [] });
  });

  it('exports the whole log, and one account, as NDJSON', async () => {
    const { stdout, stderr } = await ledger('export');
    const lines = stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines).toHaveLength(1500);
    expect(stderr).toContain('exported 1500 events');
    expect(lines[0]).toMatchObject({ type: 'BalanceChanged', revision: '0', data: { transaction: { amount: '7' } } });
    const { accountIdOf } = await import('../../src/projections/ledger.projection');
    const account = await ledger('export', '--account', accountIdOf('fi-cli', '7'), '--from', '2026-03-01', '--to', '2026-03-01');
    const mine = account.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(mine).toHaveLength(75);
    expect(mine.every((e) => e.data.transaction.accountNumber === '7')).toBe(true);
    const none = await ledger('export', '--account', accountIdOf('fi-cli', '7'), '--from', '2026-04-01', '--to', '2026-04-30');
    expect(none.stdout).toBe('');
  });

  it('verify exits 1 and names the row when a read model was altered by hand; rebuild mends it', async () => {
    await sql`update ledger.accounts set balance = balance - 1 where account_number = '3'`.execute(ctx.database.db);
    const failed = await ledger('verify').then(
      () => null,
      (error: { code: number; stdout: string }) => error,
    );
    expect(failed?.code).toBe(1);
    const report = JSON.parse(failed!.stdout.slice(failed!.stdout.indexOf('{')));
    expect(report.differences).toMatchObject([{ table: 'accounts', kind: 'changed' }]);
    const rebuilt = await ledger('rebuild');
    expect(rebuilt.stdout).toMatch(/ledger: rebuilt from 1500 events/);
    expect(rebuilt.stdout).toMatch(/grants: rebuilt from 0 events/);
    await ledger('verify');
  });
});

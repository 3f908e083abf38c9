import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accountIdOf } from '../../src/projections/ledger.projection';
import { appendStoredTransaction, bankTx, createLedgerContext, type LedgerContext } from '../support/ledger';

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '..', '..');
const TSX = join(ROOT, 'node_modules', '.bin', 'tsx');

let ctx: LedgerContext;
const ledger = (...args: string[]) =>
  run(TSX, ['src/cli.ts', ...args], { cwd: ROOT, env: { ...process.env, DATABASE_URL: ctx.testDb.url, LOG_LEVEL: 'warn' } });
const failing = (...args: string[]) =>
  ledger(...args).then(
    () => {
      throw new Error(`ledger ${args.join(' ')} succeeded`);
    },
    (error: { code: number; stdout: string; stderr: string }) => error,
  );

const acct = { fiId: 'fi-cli-park', accountNumber: '1' };
let poison: string;
let blocked: string;

const appendStored = (tx: ReturnType<typeof bankTx>) => appendStoredTransaction(ctx.store, tx);

beforeAll(async () => {
  ctx = await createLedgerContext('parkcli');
  // A stray line holds cp3's transaction id (a hand edit): cp3 cannot be applied until it is removed.
  await sql`
    insert into ledger.statement_lines (transaction_id, account_id, event_id, instant, group_seq, transaction_date,
      transaction_date_time, amount, late, received_at, source, log_position)
    values ('cp3', ${randomUUID()}, ${randomUUID()}, now(), 0, '2026-03-10', 'x', 1, false, now(), 'webhook',
      '0000000000000000-0000000000000000')`.execute(ctx.database.db);
  await appendStored(bankTx({ ...acct, id: 'cp1', amount: 10n, runningBalance: 10n, transactionDateTime: '2026-03-10T09:00:00+07:00', transactionDate: '2026-03-10' }));
  poison = await appendStored(bankTx({ ...acct, id: 'cp2', amount: 10n ** 30n, runningBalance: 10n ** 30n, transactionDateTime: '2026-03-10T10:00:00+07:00', transactionDate: '2026-03-10' }));
  blocked = await appendStored(bankTx({ ...acct, id: 'cp3', amount: 5n, runningBalance: 15n, transactionDateTime: '2026-03-10T11:00:00+07:00', transactionDate: '2026-03-10' }));
  await appendStored(bankTx({ ...acct, id: 'cp4', amount: 5n, runningBalance: 20n, transactionDateTime: '2026-03-10T12:00:00+07:00', transactionDate: '2026-03-10' }));
  await ctx.project();
});
afterAll(async () => {
  await ctx?.close();
});

describe('ledger parked', () => {
  it('status shows the parked count; parked list names each event, what it concerns and why', async () => {
    const { stdout } = await ledger('status');
    const statuses = stdout.split(/\n(?=\{)/).map((s) => JSON.parse(s));
    expect(statuses.find((s) => s.projection === 'ledger')).toMatchObject({ parked: 2, eventsBehind: '0' });
    const list = (await ledger('parked', 'list')).stdout.trim().split('\n');
    expect(list).toHaveLength(2);
    expect(list[0]).toContain(poison);
    expect(list[0]).toContain(accountIdOf(acct.fiId, acct.accountNumber));
    expect(list[0]).toMatch(/out of range for type bigint/);
    expect(list[1]).toContain(blocked);
    expect(list[1]).toMatch(/duplicate key/);
  });

  it('retry re-applies after the fix: the applied one leaves the list, the other stays with one more try (exit 1)', async () => {
    const before = await failing('parked', 'retry', blocked);
    expect(before.code).toBe(1);
    expect(JSON.parse(before.stdout)).toMatchObject({ eventId: blocked, outcome: 'failed_again', tries: 2 });
    // The fix: the stray row goes.
    await sql`delete from ledger.statement_lines where transaction_id = 'cp3' and account_id <> ${accountIdOf(acct.fiId, acct.accountNumber)}`.execute(
      ctx.database.db,
    );
    const all = await failing('parked', 'retry');
    const outcomes = all.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(outcomes).toEqual([
      expect.objectContaining({ eventId: poison, outcome: 'failed_again' }),
      expect.objectContaining({ eventId: blocked, outcome: 'applied', error: null }),
    ]);
    const list = (await ledger('parked', 'list')).stdout.trim().split('\n');
    expect(list).toHaveLength(1);
    expect(list[0]).toContain(poison);
    const { rows } = await sql<{ transaction_id: string }>`
      select transaction_id from ledger.statement_lines where account_id = ${accountIdOf(acct.fiId, acct.accountNumber)} order by instant`.execute(ctx.database.db);
    expect(rows.map((r) => r.transaction_id)).toEqual(['cp1', 'cp3', 'cp4']);
    expect((await failing('parked', 'retry', randomUUID())).stderr).toContain('no parked event');
    // Rebuild equals live, parked events included.
    const { stdout } = await ledger('verify');
    expect(JSON.parse(stdout.slice(stdout.indexOf('{')))).toMatchObject({ ok: true, differences: [] });
  });
});

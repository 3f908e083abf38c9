import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordTransaction } from '../../src/application/ingest-webhook';
import { accountIdOf } from '../../src/projections/ledger.projection';
import { bankTx, createLedgerContext, type LedgerContext } from '../support/ledger';

const ROOT = join(import.meta.dirname, '..', '..');
const LINES = 100_000;
const acct = { fiId: 'fi-big', accountNumber: '100000' };
const DAY = 86_400_000;
const FIRST = Date.parse('2016-01-01T00:00:00+07:00');
const SPAN = Date.parse('2026-01-01T00:00:00+07:00') - FIRST;

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** The process's peak resident memory so far, in MB (Linux). */
const peakRss = (pid: number) => {
  const kb = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return kb ? Math.round(Number(kb) / 1024) : null;
};

let ctx: LedgerContext;
let service: ChildProcess;
let url: string;
let output = '';
let closing = 0n;

beforeAll(async () => {
  ctx = await createLedgerContext('bigcsv');
  // Ten years of one account, stored through the port (group commit takes them in big batches).
  const inFlight = 2_000;
  let balance = 0n;
  const txs = Array.from({ length: LINES }, (_, i) => {
    const amount = i % 10 === 9 ? -45_000n : 10_000n;
    balance += amount;
    const at = FIRST + Math.floor((i * SPAN) / LINES);
    const local = new Date(at + 7 * 3_600_000).toISOString();
    return bankTx({
      ...acct,
      id: `big${String(i).padStart(7, '0')}`,
      amount,
      runningBalance: balance,
      transactionDate: local.slice(0, 10),
      transactionDateTime: `${local.slice(0, 19)}+07:00`,
      description: `Thanh toán hoá đơn số ${i}, "kỳ ${Math.floor(at / (30 * DAY))}"`,
    });
  });
  closing = balance;
  for (let i = 0; i < txs.length; i += inFlight) {
    await Promise.all(
      txs.slice(i, i + inFlight).map((transaction) =>
        recordTransaction(ctx.store, { transaction, source: 'webhook', grantId: null, metadata: { receivedAt: new Date().toISOString(), source: 'webhook' }, attachment: '{}' }),
      ),
    );
  }
  // The service as `npm start` runs it: its own process, the same memory cap, projecting in-process.
  const port = await freePort();
  url = `http://127.0.0.1:${port}`;
  service = spawn(process.execPath, ['--max-old-space-size=192', '--import', 'tsx', 'src/main.ts'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', PORT: String(port), DATABASE_URL: ctx.testDb.url, LOG_LEVEL: 'warn' },
  });
  service.stdout?.on('data', (d) => (output += d));
  service.stderr?.on('data', (d) => (output += d));
  const deadline = Date.now() + 300_000;
  for (;;) {
    if (service.exitCode !== null) throw new Error(`the service exited: ${output}`);
    const res = await fetch(`${url}/projections`).catch(() => null);
    const ledger = res?.ok ? ((await res.json()) as { projections: { projection: string; eventsBehind: string }[] }).projections.find((p) => p.projection === 'ledger') : null;
    if (ledger?.eventsBehind === '0') break;
    if (Date.now() > deadline) throw new Error(`the projection did not catch up: ${output}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}, 600_000);

afterAll(async () => {
  if (service && service.exitCode === null) {
    service.kill('SIGTERM');
    await new Promise((r) => service.once('exit', r));
  }
  await ctx?.close();
});

describe('a ten-year CSV of a 100 000-line account', () => {
  it('streams from a service under its memory cap: every line, then the closing balance', async () => {
    const id = accountIdOf(acct.fiId, acct.accountNumber);
    const peakBefore = peakRss(service.pid!);
    const res = await fetch(`${url}/accounts/${id}/statement?from=2016-01-01&to=2025-12-31&format=csv`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    // Counted as it arrives: the test does not hold the file either.
    const decoder = new TextDecoder('utf-8', { ignoreBOM: true }); // keep the BOM, to see it is there
    let rest = '';
    let rows = 0;
    let lines = 0;
    let last = '';
    let first = '';
    for await (const chunk of res.body!) {
      const text = rest + decoder.decode(chunk as Uint8Array, { stream: true });
      const parts = text.split('\r\n');
      rest = parts.pop()!;
      for (const row of parts) {
        if (rows === 0) first = row;
        rows += 1;
        if (row.startsWith('line,')) lines += 1;
        last = row;
      }
    }
    expect(rest).toBe('');
    expect(first.startsWith('\uFEFFrow,transactionId,')).toBe(true);
    expect(lines).toBe(LINES);
    expect(rows).toBe(LINES + 3); // header, opening, lines, closing
    expect(last).toBe(`closing,,2025-12-31,,,,,${closing},,Closing balance,,,,,,,`);
    // Alive and well after it.
    expect(service.exitCode).toBeNull();
    expect((await fetch(`${url}/health`)).ok).toBe(true);
    // Measured, not asserted: the heap cap is what the test holds the service to.
    console.info(`[measured] service peak RSS ${peakBefore} MB after projecting, ${peakRss(service.pid!)} MB after the ${LINES}-line CSV`);
  }, 300_000);
});

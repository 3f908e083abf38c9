import { createHash } from 'node:crypto';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { openRoot } from '../src/composition-root';
import { loadConfig } from '../src/config';
import { ingestWebhook } from '../src/application/ingest-webhook';
import { accountIdOf } from '../src/projections/ledger.projection';
import { seedEvents } from './generate';

/**
 * Two readers' answers before and after a change of the read model's indexes, compared by digest:
 * `tsx bench/reader-answers.ts seed <url>` fills an empty database as the bench seeds it (200 000 events, 1 000
 * accounts) plus deliveries that the seed has none of (bank dates far from their times, late lines, same-instant
 * groups, lines without running balance, conflicting repeats, accounts whose only lines lie far apart);
 * `tsx bench/reader-answers.ts answers <url> <tree>` then asks the statements (`statementPage`) and the auditor's
 * account view (`accountEventRefs`) of the sources in <tree> many questions over the `ledger` schema (rebuilt by that
 * tree's build: `node dist/cli.js rebuild`), and prints the SHA-256 of each reader's answers and how many there were.
 */
const FI = '3c26a8ed-efb5-11ed-8620-0ae7e48c82d8';
const LABEL = 'ra';
const ACCOUNTS = 1000;
const EVENTS = 200_000;
/** Seeded accounts that also get the odd deliveries, and accounts that have only those. */
const ODD = Array.from({ length: 50 }, (_, i) => i * 20 + 3);
const ONLY_ODD = [5001, 5002, 5003];
const number = (n: number) => String(n).padStart(12, '0');

function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const localDate = (ms: number) => new Date(ms + 7 * 3_600_000).toISOString().slice(0, 10);
const localTime = (ms: number) => new Date(ms + 7 * 3_600_000).toISOString().slice(0, 19) + '+07:00';
const shifted = (date: string, days: number) => new Date(Date.parse(`${date}T00:00:00Z`) + days * 86_400_000).toISOString().slice(0, 10);

function body(tx: { id: string; account: string; date: string; at: string; amount: number; running: number | null }): Uint8Array {
  return Buffer.from(
    JSON.stringify({
      environment: 'dev', webhookType: 'TRANSACTIONS', webhookCode: 'DEFAULT_UPDATE', error: null, grantId: '4c657924-13f3-11ee-a4bb-42010a40001b',
      transaction: {
        id: tx.id, transactionCode: null, reference: null, transactionDate: tx.date, transactionDateTime: tx.at, bookingDate: tx.date,
        amount: tx.amount, description: 'odd', runningBalance: tx.running, accountNumber: tx.account, virtualAccountNumber: null,
        virtualAccountName: null, paymentChannel: null, counterAccountNumber: null, counterAccountName: null, counterAccountBankId: null,
        counterAccountBankName: null, paymentMeta: null, fiId: FI, fiName: 'VietinBank', fiServiceId: null, fiServiceName: null, currency: 'VND',
      },
    }),
  );
}

async function seed(url: string): Promise<void> {
  const root = await openRoot(loadConfig({ DATABASE_URL: url, DB_POOL_SIZE: '4', LOG_LEVEL: 'silent' }));
  await seedEvents(root.resolve('database').db as Kysely<any>, EVENTS, ACCOUNTS, LABEL);
  const deps = { eventStore: root.resolve('eventStore'), quarantine: root.resolve('quarantine') };
  const next = random(13);
  const start = Date.parse('2025-01-01T01:00:00Z');
  const year = 365 * 86_400_000;
  let k = 0;
  const deliver = async (tx: Parameters<typeof body>[0]) => {
    k += 1;
    const outcome = await ingestWebhook(deps, { body: body(tx), contentType: 'application/json', receivedAt: new Date(Date.parse('2026-02-01T00:00:00Z') + k * 1000), requestId: null, remoteAddress: null });
    if (!outcome.ok) throw new Error(`refused: ${JSON.stringify(outcome.error)}`);
  };
  const line = (account: number, at: number, shift: number, n: number) => {
    const running = next() < 1 / 3 ? null : 1_000_000_000 + Math.round((next() - 0.5) * 2e7);
    return { id: `odd-${account}-${n}`, account: number(account), date: shifted(localDate(at), shift), at: localTime(at), amount: Math.round((next() - 0.5) * 2e6), running };
  };
  for (const account of [...ODD, ...ONLY_ODD]) {
    const base = ONLY_ODD.includes(account) ? Date.parse('2023-03-01T01:00:00Z') : start;
    let n = 0;
    // Lines inside the history (late), bank dates up to 40 days either side of their times, a few far beyond.
    for (let i = 0; i < 8; i++) {
      const far = next() < 0.15 ? (next() < 0.5 ? -400 : 400) : 0;
      await deliver(line(account, base + Math.floor(next() * year), Math.round((next() - 0.5) * 80) + far, n++));
    }
    // A same-instant group, delivered out of order.
    const group = base + Math.floor(next() * year);
    for (let i = 0; i < 3; i++) await deliver(line(account, group, i - 1, n++));
    // Lines after the history (not late), dated far from their times, and lines years later for empty periods.
    await deliver(line(account, start + year + 20 * 86_400_000, 60, n++));
    await deliver(line(account, start + year + 30 * 86_400_000, -90, n++));
    await deliver(line(account, start + 3 * year, 0, n++));
    // Conflicting repeats: of a seeded transaction (a seeded account's) and of one of these lines.
    if (!ONLY_ODD.includes(account)) {
      const seeded = account + ACCOUNTS * Math.floor(next() * (EVENTS / ACCOUNTS));
      await deliver({ id: `${LABEL}${seeded.toString(16).padStart(20, '0')}`, account: number(account), date: '2025-06-01', at: '2025-06-01T10:00:00+07:00', amount: 1, running: null });
    }
    await deliver({ ...line(account, base + 1000, 0, 0), amount: 7 });
  }
  await root.close();
}

async function answers(url: string, tree: string): Promise<void> {
  const { statementPage, encodeCursor } = await import(`${tree}/src/projections/ledger.queries.ts`);
  const { accountEventRefs } = await import(`${tree}/src/projections/audit.queries.ts`);
  const { readModelIn } = await import(`${tree}/src/projections/read-model.ts`);
  const db = new Kysely<any>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: url, max: 1 }) }) });
  const rm = readModelIn(db, 'ledger');
  const statements = createHash('sha256');
  const audits = createHash('sha256');
  let nStatements = 0;
  let nAudits = 0;
  const noVersion = (_key: string, v: unknown) => (typeof v === 'bigint' ? v.toString() : v);
  const ask = async (accountId: string, from: string, to: string, limit: number | 'all', pages: number) => {
    let cursor = null;
    for (let p = 0; p < pages; p++) {
      const page = await statementPage(rm, accountId, { from, to, limit, cursor });
      // The version names the writing transaction and the read model's table: a rebuild's, not an answer's.
      const { account, version: _, ...rest } = page ?? { account: null, version: null };
      const shown = account === null ? null : { ...account, version: undefined };
      statements.update(`${accountId} ${from} ${to} ${limit} ${p}\n${JSON.stringify({ ...rest, account: shown }, noVersion)}\n`);
      nStatements += 1;
      if (!page?.nextCursor) break;
      cursor = decode(page.nextCursor);
    }
  };
  const decode = (text: string) => {
    const [at, seq] = Buffer.from(text, 'base64url').toString('utf8').split('~');
    return { instant: new Date(at!), seq: Number(seq) };
  };
  void encodeCursor;
  const refs = async (accountId: string, after: string | null, limit: number, pages: number, period?: { from: string; to: string }) => {
    let cursor = after;
    for (let p = 0; p < pages; p++) {
      const got = await accountEventRefs(rm, accountId, { after: cursor, limit, ...(period ?? {}) });
      audits.update(`${accountId} ${cursor} ${limit} ${JSON.stringify(period ?? null)}\n${JSON.stringify(got)}\n`);
      nAudits += 1;
      if (got.length < limit) break;
      cursor = got[got.length - 1].position;
    }
  };
  const positions: string[] = (await db.selectFrom('ledger.statement_lines').select('log_position').orderBy('log_position').execute()).map((r) => r.log_position);
  const pick = random(7);
  const anyPosition = () => positions[Math.floor(pick() * positions.length)]!;
  const months = Array.from({ length: 16 }, (_, i) => {
    const first = new Date(Date.UTC(2024, 11 + i, 1));
    const last = new Date(Date.UTC(2024, 12 + i, 0));
    return [first.toISOString().slice(0, 10), last.toISOString().slice(0, 10)] as const;
  });
  const accounts = [
    ...Array.from({ length: ACCOUNTS / 5 }, (_, i) => i * 5),
    ...ODD,
    ...ONLY_ODD,
    BUSY,
  ];
  for (const n of accounts) {
    const id = accountIdOf(FI, number(n));
    const odd = ODD.includes(n) || ONLY_ODD.includes(n);
    if (n === BUSY) {
      for (const [from, to] of months) await ask(id, from, to, 500, 3);
      await refs(id, null, 100, 1_000_000);
      for (let c = 0; c < 40; c++) await refs(id, anyPosition(), 1 + Math.floor(pick() * 100), 2);
      for (const [from, to] of months) await refs(id, null, 1000, 1_000, { from, to });
      continue;
    }
    for (const [from, to] of months) {
      await ask(id, from, to, 100, 1);
      await ask(id, from, to, 7, odd ? 4 : 2);
    }
    await ask(id, '2025-01-01', '2025-12-31', 500, 1);
    await ask(id, '2020-01-01', '2030-12-31', 'all', 1);
    await ask(id, '2025-03-10', '2025-03-12', 1, 3);
    const days = odd ? 122 : 6;
    for (let d = 0; d < days; d++) {
      const day = shifted('2022-12-01', Math.floor(pick() * 365 * 5));
      await ask(id, day, day, 50, 1);
    }
    await refs(id, null, 50, 1_000);
    await refs(id, null, odd ? 7 : 61, 1_000);
    for (let c = 0; c < (odd ? 40 : 4); c++) await refs(id, anyPosition(), 1 + Math.floor(pick() * 30), 2);
    await refs(id, '0000000000000000-0000000000000000', 10, 1);
    await refs(id, 'ffffffffffffffff-ffffffffffffffff', 10, 1);
    for (const [from, to] of odd ? months : months.slice(3, 5)) await refs(id, null, 13, 1_000, { from, to });
    if (odd) for (let c = 0; c < 10; c++) await refs(id, anyPosition(), 5, 2, { from: '2025-01-01', to: '2025-06-30' });
  }
  await ask('00000000-0000-4000-8000-000000000000', '2025-01-01', '2025-01-31', 10, 1);
  await refs('00000000-0000-4000-8000-000000000000', null, 10, 1);
  process.stdout.write(`statements ${nStatements} ${statements.digest('hex')}\nauditor ${nAudits} ${audits.digest('hex')}\n`);
  await db.destroy();
}

/** One account with 100 000 lines (as the bench's busy account), a few of them late, dated far off or repeated. */
async function seedBusy(url: string): Promise<void> {
  const root = await openRoot(loadConfig({ DATABASE_URL: url, DB_POOL_SIZE: '4', LOG_LEVEL: 'silent' }));
  await seedEvents(root.resolve('database').db as Kysely<any>, 100_000, 1, 'busy', BUSY);
  const deps = { eventStore: root.resolve('eventStore'), quarantine: root.resolve('quarantine') };
  const next = random(17);
  for (let i = 0; i < 30; i++) {
    const at = Date.parse('2025-01-01T01:00:00Z') + Math.floor(next() * 365 * 86_400_000);
    const tx = { id: `busy-odd-${i}`, account: number(BUSY), date: shifted(localDate(at), Math.round((next() - 0.5) * 20)), at: localTime(at), amount: 1000 + i, running: null };
    await ingestWebhook(deps, { body: body(tx), contentType: 'application/json', receivedAt: new Date(Date.parse('2026-03-01T00:00:00Z') + i * 1000), requestId: null, remoteAddress: null });
    if (i % 10 === 0) {
      await ingestWebhook(deps, { body: body({ ...tx, amount: 1 }), contentType: 'application/json', receivedAt: new Date(Date.parse('2026-03-02T00:00:00Z') + i * 1000), requestId: null, remoteAddress: null });
    }
  }
  await root.close();
}
const BUSY = 1000;

const [mode, url, tree] = process.argv.slice(2);
if (mode === 'seed') await seed(url!);
else if (mode === 'seed-busy') await seedBusy(url!);
else if (mode === 'answers') await answers(url!, tree!);
else throw new Error('usage: reader-answers.ts seed <url> | answers <url> <tree>');

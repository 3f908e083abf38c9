import { createHash, randomInt } from 'node:crypto';
import fc from 'fast-check';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accountIdOf } from '../../src/projections/ledger.projection';
import { sample } from '../support/app';
import { type FuzzCase, fuzzRecipe } from '../support/fuzz-webhooks';
import { createTestDatabase, eventually, type TestDatabase } from '../support/postgres';
import { type ServiceProcess, startService, stopService } from '../support/service';

/**
 * The service as production runs it (`src/main.ts`, its own process, the local PostgreSQL), fed over real HTTP with
 * what Cas might send and what it never should. A new seed each run; FUZZ_SEED=<n> replays one, FUZZ_RUNS=<n> sizes it.
 */
const SEED = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : randomInt(2 ** 31);
const RUNS = Number(process.env.FUZZ_RUNS ?? 3_000);
const CONCURRENCY = 8;
const TOKEN = 'fuzz-webhook-token-0123456789abcdef';
const REPLAY = `FUZZ_SEED=${SEED} npx vitest run test/e2e/ingest-fuzz.test.ts`;

interface Answer {
  readonly status: number;
  readonly json: { status?: string; eventId?: string; quarantineId?: string | number; errors?: unknown[] } | null;
}

const sha256 = (body: Buffer) => createHash('sha256').update(body).digest('hex');

let db: TestDatabase;
let service: ServiceProcess;
let sql: pg.Client;

beforeAll(async () => {
  db = await createTestDatabase('fuzz');
  service = await startService({ DATABASE_URL: db.url, WEBHOOK_TOKEN: TOKEN, LOG_LEVEL: 'error', DRAIN_DELAY_MS: '0' });
  sql = new pg.Client({ connectionString: db.url });
  await sql.connect();
}, 90_000);
afterAll(async () => {
  await sql?.end();
  if (service) await stopService(service);
  await db?.drop();
});

async function post(body: Buffer): Promise<Answer> {
  const res = await fetch(`${service.url}/webhooks/bankhub?token=${TOKEN}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
  });
  const text = await res.text();
  let json: Answer['json'] = null;
  try {
    json = JSON.parse(text);
  } catch {}
  return { status: res.status, json };
}

/** Posts every body, `CONCURRENCY` at a time, and keeps the answers in order. */
async function postAll(bodies: readonly Buffer[]): Promise<Answer[]> {
  const answers: Answer[] = new Array(bodies.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < bodies.length) {
        const i = next++;
        answers[i] = await post(bodies[i]!);
      }
    }),
  );
  return answers;
}

/** Every projection has nothing behind and no error (polled: projections are asynchronous). */
async function projectionsLive(): Promise<void> {
  await eventually(
    async () => {
      const { projections } = (await (await fetch(`${service.url}/projections`)).json()) as {
        projections: { projection: string; eventsBehind: string | null; lastError: string | null }[];
      };
      expect(projections.length).toBeGreaterThan(0);
      for (const p of projections) expect({ projection: p.projection, eventsBehind: p.eventsBehind, lastError: p.lastError }).toEqual({ projection: p.projection, eventsBehind: '0', lastError: null });
    },
    { timeoutMs: 60_000, intervalMs: 100 },
  );
}

/** SHA-256 → whether the stored bytes still hash to it (they are exactly what was sent). */
async function quarantine(): Promise<Map<string, boolean>> {
  const { rows } = await sql.query<{ body_sha256: string; exact: boolean }>(
    `select body_sha256, encode(sha256(raw_body), 'hex') = body_sha256 as exact from quarantine`,
  );
  return new Map(rows.map((r) => [r.body_sha256, r.exact]));
}

async function storedEventIds(): Promise<Set<string>> {
  const { rows } = await sql.query<{ event_id: string }>('select event_id::text from events');
  return new Set(rows.map((r) => r.event_id));
}

async function bookedEventIds(): Promise<Set<string>> {
  const { rows } = await sql.query<{ event_id: string }>('select event_id::text from ledger.statement_lines');
  return new Set(rows.map((r) => r.event_id));
}

describe('ingest fuzz over real HTTP', () => {
  it(`books every valid body, quarantines every invalid one, answers no 5xx, and the projections stay live`, async () => {
    console.log(`[fuzz] seed ${SEED}, ${RUNS} bodies, ${CONCURRENCY} at a time; replay: ${REPLAY}`);
    const recipes = fc.sample(fuzzRecipe, { seed: SEED, numRuns: RUNS });
    const cases: FuzzCase[] = recipes.map((recipe, i) => recipe(`fz${i.toString(36)}`));
    // Cas repeats deliveries: some bodies again, byte for byte, in the same stream of requests.
    const repeats = cases.filter((_, i) => i % 17 === 0);
    const all = [...cases, ...repeats];
    const started = Date.now();
    const answers = await postAll(all.map((c) => c.body));
    console.log(`[fuzz] posted ${all.length} bodies in ${Date.now() - started} ms`);

    const where = (i: number) => `${all[i]!.label}: ${all[i]!.body.subarray(0, 160).toString('utf8')} (${REPLAY})`;
    const serverErrors = answers.flatMap((a, i) => (a.status >= 500 || ![200, 400].includes(a.status) ? [`${a.status} for ${where(i)}`] : []));
    expect(serverErrors).toEqual([]);

    const wrong: string[] = [];
    const byTransaction = new Map<string, string[]>();
    answers.forEach((answer, i) => {
      const c = all[i]!;
      if (c.expect === 'valid' && answer.status !== 200) wrong.push(`valid but ${answer.status} ${JSON.stringify(answer.json)}: ${where(i)}`);
      if (c.expect === 'invalid' && answer.status !== 400) wrong.push(`invalid but ${answer.status} ${JSON.stringify(answer.json)}: ${where(i)}`);
      if (answer.status === 200 && c.transactionId) byTransaction.set(c.transactionId, [...(byTransaction.get(c.transactionId) ?? []), answer.json!.status!]);
    });
    expect(wrong).toEqual([]);
    // Each valid transaction: accepted once; its repeats are duplicates.
    for (const [id, statuses] of byTransaction) {
      expect({ id, statuses: statuses.sort() }).toEqual({ id, statuses: ['accepted', ...Array<string>(statuses.length - 1).fill('duplicate')] });
    }

    // Every refused body is in the quarantine by its SHA-256, byte for byte.
    const held = await quarantine();
    const missing = answers.flatMap((a, i) => (a.status === 400 && held.get(sha256(all[i]!.body)) !== true ? [where(i)] : []));
    expect(missing).toEqual([]);
    // Every acknowledged event is stored; after the projections have caught up, every booked transaction is on the books.
    const stored = await storedEventIds();
    const lost = answers.flatMap((a, i) => (a.status === 200 && a.json?.eventId && !stored.has(a.json.eventId) ? [where(i)] : []));
    expect(lost).toEqual([]);
    await projectionsLive();
    const booked = await bookedEventIds();
    const unbooked = answers.flatMap((a, i) =>
      a.status === 200 && all[i]!.transactionId && a.json?.status === 'accepted' && !booked.has(a.json.eventId!) ? [where(i)] : [],
    );
    expect(unbooked).toEqual([]);

    const tally = new Map<string, number>();
    answers.forEach((a, i) => tally.set(`${all[i]!.label} → ${a.status}`, (tally.get(`${all[i]!.label} → ${a.status}`) ?? 0) + 1));
    console.log(`[fuzz] ${[...tally].sort().map(([k, n]) => `${k}: ${n}`).join('; ')}`);
  }, 180_000);
});

describe('one poison in a burst of good webhooks', () => {
  const base = JSON.parse(sample('transaction-webhook.json').toString('utf8'));
  const FI = '3c26a8ed-efb5-11ed-8620-0ae7e48c82d8';
  /** The sample as text with one transaction field written as raw JSON. */
  const webhook = (id: string, accountNumber: string, fields: Record<string, string> = {}) => {
    let text = JSON.stringify({ ...base, transaction: { ...base.transaction, id, accountNumber } });
    for (const [key, value] of Object.entries(fields)) {
      const before = text;
      text = text.replace(new RegExp(`"${key}":("[^"]*"|-?[0-9]+|null)`), `"${key}":${value}`);
      if (text === before) throw new Error(`no ${key} in the sample`);
    }
    return text;
  };
  const POISONS: [string, (id: string) => string][] = [
    ['NUL in a description', (id) => webhook(id, 'poison1', { description: '"Chuyển\\u0000khoản"' })],
    ['an unpaired surrogate', (id) => webhook(id, 'poison2', { description: '"cảm ơn \\ud83d"' })],
    ['amount 1e30', (id) => webhook(id, 'poison3', { amount: '1e30' })],
    ['runningBalance 2^63', (id) => webhook(id, 'poison4', { runningBalance: '9223372036854775808' })],
    ['year 0000', (id) => webhook(id, 'poison5', { transactionDate: '"0000-12-05"' })],
    ['a duplicated key', (id) => webhook(id, 'poison6').replace('"amount":10000,', '"amount":10000,"amount":-10000,')],
  ];
  const goodAccounts: string[] = [];

  it.each(POISONS)('%s: that one is answered 400 and quarantined, the 15 sent with it all 200', async (name, poison) => {
    const k = POISONS.findIndex(([n]) => n === name);
    const good = Array.from({ length: 15 }, (_, i) => {
      const accountNumber = `burst${k}${String(i).padStart(2, '0')}`;
      goodAccounts.push(accountNumber);
      return webhook(`burst${k}x${i}`, accountNumber);
    });
    const bad = poison(`burst${k}poison`);
    const bodies = [...good.slice(0, 8), bad, ...good.slice(8)];
    const answers = await Promise.all(bodies.map((b) => post(Buffer.from(b))));
    const refused = answers.splice(8, 1)[0]!;
    expect(refused.status).toBe(400);
    expect(refused.json?.quarantineId).toBeDefined();
    expect((await quarantine()).get(sha256(Buffer.from(bad)))).toBe(true);
    expect(answers.map((a) => [a.status, a.json?.status])).toEqual(good.map(() => [200, 'accepted']));
  });

  it('afterwards every projection has no error and nothing behind, and the good webhooks\' accounts are on the books', async () => {
    expect(goodAccounts).toHaveLength(15 * POISONS.length);
    await projectionsLive();
    for (const accountNumber of goodAccounts) {
      const res = await fetch(`${service.url}/accounts/${accountIdOf(FI, accountNumber)}`);
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ accountNumber, balance: '3330000' });
    }
    for (const n of [1, 2, 3, 4, 5, 6]) {
      expect((await fetch(`${service.url}/accounts/${accountIdOf(FI, `poison${n}`)}`)).status).toBe(404);
    }
  });
});

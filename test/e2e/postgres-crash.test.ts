import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canStartPgCluster, type PgCluster, startPgCluster } from '../support/pg-cluster';
import { type ServiceProcess, spawnProcess, startService, waitFor } from '../support/service';
import { postWebhook, startWebhookLoad, timedFetch } from '../support/webhook-load';
import { booksOf, caughtUp, repostAll } from '../support/books';

const TOKEN = 'crash-webhook-token-0123456789abcdef';
/** The manual check keeps PostgreSQL down for 15 s; the suite uses less to stay near a minute. */
const OUTAGE_MS = Number(process.env.TEST_PG_OUTAGE_MS ?? 5_000);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function get(url: string) {
  const { text: _body, ...answer } = await timedFetch(url, {}, 15_000);
  return { route: new URL(url).pathname, ...answer };
}

if (!canStartPgCluster()) {
  console.info('postgres-crash: skipped, no PostgreSQL server binaries (initdb, pg_ctl) found; install them or set TEST_PG_BIN');
}

/** Where the projections run while PostgreSQL crashes: both shapes the README describes. */
const SHAPES = [
  { name: 'npm start (projections in the service)', projectorProcess: false },
  { name: 'compose (RUN_PROJECTIONS=false, `ledger project` beside)', projectorProcess: true },
] as const;

describe.skipIf(!canStartPgCluster())("PostgreSQL crashes under load (a cluster of the test's own, stop -m immediate)", () => {
  let cluster: PgCluster | undefined;
  const processes: Omit<ServiceProcess, 'url'>[] = [];

  beforeAll(async () => {
    cluster = await startPgCluster('crash');
  });
  afterAll(async () => {
    for (const p of processes) p.child.kill('SIGKILL');
    await cluster?.destroy();
  });

  it.each(SHAPES)('$name: every process stays alive, answers only 200 or 503 with Retry-After, recovers, and loses nothing', { timeout: 180_000 }, async (shape) => {
    const env = {
      DATABASE_URL: await cluster!.createDatabase(shape.projectorProcess ? 'compose_shape' : 'start_shape'),
      WEBHOOK_TOKEN: TOKEN,
      LOG_LEVEL: 'warn',
      // The healer runs too (it holds an advisory lock on a connection of its own); nothing is old enough to heal.
      BANKHUB_CLIENT_ID: 'crash-test',
      BANKHUB_SECRET_KEY: 'crash-test',
      BANKHUB_BASE_URL: 'http://127.0.0.1:9',
      SECRETS_KEY: '0'.repeat(64),
      HEAL_INTERVAL_SECONDS: '0.5',
      HEAL_AFTER_SECONDS: '3600',
    };
    const service = await startService({ ...env, RUN_PROJECTIONS: String(!shape.projectorProcess) });
    processes.push(service);
    const projectors: ReturnType<typeof spawnProcess>[] = [];
    const startProjector = () => {
      const projector = spawnProcess(['src/cli.ts', 'project'], { ...env, LOG_LEVEL: 'info' });
      processes.push(projector);
      projectors.push(projector);
      return projector;
    };
    const allAlive = () => {
      for (const p of [service, ...projectors]) expect(p.alive(), p.output()).toBe(true);
    };
    if (shape.projectorProcess) {
      const projector = startProjector();
      await waitFor('the projector process', () => projector.output().includes('projection runners started'), 60_000);
    }
    const load = startWebhookLoad({ url: service.url, token: TOKEN, clients: 8 });
    await waitFor('webhooks acknowledged before the crash', () => load.acknowledged.size >= 150, 60_000);
    let accountId = '';
    await waitFor('an account on the books', async () => {
      const res = await fetch(`${service.url}/accounts`);
      accountId = ((await res.json()) as { accounts: { id: string }[] }).accounts[0]?.id ?? '';
      return accountId !== '';
    }, 30_000);

    const crashedAt = Date.now();
    await cluster!.crash();
    const reads: Awaited<ReturnType<typeof get>>[] = [];
    while (Date.now() < crashedAt + OUTAGE_MS) {
      allAlive();
      const answers = await Promise.all([
        get(`${service.url}/accounts`),
        get(`${service.url}/projections`),
        get(`${service.url}/ready`),
        get(`${service.url}/accounts/${accountId}/statement?from=2026-01-01&to=2026-12-31`),
      ]);
      reads.push(...answers);
      await sleep(200);
    }
    // A projector started while PostgreSQL is away waits for it rather than exiting.
    const late = shape.projectorProcess ? startProjector() : null;
    if (late) await waitFor('the late projector to find PostgreSQL away', () => late.output().includes('the stores are unreachable'), 30_000);
    await cluster!.start();
    const restartedAt = Date.now();
    await waitFor('a webhook accepted after PostgreSQL is back', () => load.answers.some((a) => a.at > restartedAt && a.status === 200), 30_000);
    const acceptedAgainAfterMs = load.answers.find((a) => a.at > restartedAt && a.status === 200)!.at - restartedAt;
    const ackedBefore = load.acknowledged.size;
    await waitFor('more webhooks acknowledged after the return', () => load.acknowledged.size >= ackedBefore + 100, 60_000);
    await load.stop();

    allAlive();
    // Every answer: 200, or 503 with Retry-After while the store was gone; never another status, a hang or a reset.
    const wrong = load.answers.filter((a) => !(a.status === 200 || (a.status === 503 && a.retryAfter !== null)));
    expect(wrong).toEqual([]);
    const during = load.answers.filter((a) => a.at > crashedAt && a.at < restartedAt);
    expect(during.filter((a) => a.status === 503).length).toBeGreaterThan(0);
    expect(acceptedAgainAfterMs).toBeLessThan(30_000);
    // The read routes: 503 with Retry-After while the store is gone (readiness says not ready), never a hang.
    const wrongReads = reads.filter((r) => !(r.status === 503 && (r.retryAfter !== null || r.route === '/ready')));
    expect(wrongReads).toEqual([]);
    expect(reads.length).toBeGreaterThan(0);
    console.info(
      `postgres-crash (${shape.name}): ${load.acknowledged.size} acknowledged, ${load.answers.filter((a) => a.status === 503).length} × 503 during a ${OUTAGE_MS} ms outage; accepting again ${acceptedAgainAfterMs} ms after the restart`,
    );

    // Everything acknowledged is stored: posted again, each one is a duplicate.
    const again = await repostAll(service.url, TOKEN, load.acknowledged);
    expect(again.filter((a) => a.ack !== 'duplicate')).toEqual([]);
    // The projections catch up (nothing behind, no error) and the books hold each acknowledged transaction once:
    // the runners that were projecting took their locks again after the crash (in the service, or in a projector).
    await caughtUp(service.url, 60_000);
    const books = await booksOf(service.url);
    expect([...load.acknowledged.keys()].filter((id) => books.get(id) !== 1)).toEqual([]);
    expect([...books.values()].every((n) => n === 1)).toBe(true);
    if (late) await waitFor('the late projector to start', () => late.output().includes('projection runners started'), 30_000);
    // Still the same processes, serving.
    allAlive();
    expect((await postWebhook(service.url, TOKEN, '{}', 5_000)).ack).toBe('ping');
  });
});

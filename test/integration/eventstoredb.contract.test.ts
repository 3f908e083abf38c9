import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { type Socket, connect } from 'node:net';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { createEventStoreDbEventStore } from '../../src/infrastructure/eventstore/eventstoredb-event-store';
import { describeEventStoreContract } from './event-store.contract';

/**
 * The shared event-store contract on EventStoreDB: on the server EVENTSTORE_TEST_URL names, or on a throw-away
 * container when a Docker engine answers; otherwise skipped, saying so in one line.
 */
const IMAGE = 'eventstore/eventstore:24.10';
const HOW_TO_RUN = 'EVENTSTORE_TEST_URL=esdb://localhost:2113?tls=false npm test';

type Server = { readonly url: string; readonly stop: () => Promise<void> };
type Target = { readonly start: () => Promise<Server> } | { readonly skip: string };

const target = await chooseTarget();

if ('skip' in target) {
  console.warn(`[skipped] event store contract on EventStoreDB: ${target.skip}; to run it: ${HOW_TO_RUN}`);
  describe.skip('event store contract: EventStoreDB', () => {
    it('needs an EventStoreDB server (EVENTSTORE_TEST_URL) or a Docker engine', () => {});
  });
} else {
  let server: Server | undefined;
  // Pulling the image can take longer than the contract's own set-up hook allows.
  beforeAll(async () => {
    server = await target.start();
  }, 300_000);
  afterAll(async () => {
    await server?.stop();
  });
  describeEventStoreContract('EventStoreDB', async () => {
    if (!server) throw new Error('EventStoreDB did not start');
    const store = createEventStoreDbEventStore({ connectionString: server.url });
    // Larger than the server's default maximum append size (1 MiB).
    const poison = () => ({ eventId: randomUUID(), type: 'Poison', data: { text: 'x'.repeat(2 * 1024 * 1024) }, metadata: {} });
    return { store, cleanup: () => store.close(), poison };
  });
}

async function chooseTarget(): Promise<Target> {
  const url = process.env.EVENTSTORE_TEST_URL;
  if (url) return { start: async () => ({ url, stop: async () => {} }) };
  if (!(await dockerAnswers())) return { skip: 'EVENTSTORE_TEST_URL is not set and no Docker engine answered' };
  let testcontainers: typeof import('testcontainers');
  try {
    testcontainers = await import('testcontainers');
  } catch (error) {
    // A testcontainers that needs a newer Node than this one would fail here: say so instead of failing the run.
    return { skip: `a Docker engine answered but testcontainers did not load on Node ${process.versions.node} (${String(error)})` };
  }
  const { GenericContainer, Wait } = testcontainers;
  return {
    start: async () => {
      const container = await new GenericContainer(IMAGE)
        .withEnvironment({
          EVENTSTORE_INSECURE: 'true',
          EVENTSTORE_MEM_DB: 'true',
          EVENTSTORE_RUN_PROJECTIONS: 'None',
        })
        .withExposedPorts(2113)
        .withWaitStrategy(Wait.forHttp('/health/live', 2113))
        .withStartupTimeout(120_000)
        .start();
      return {
        url: `esdb://${container.getHost()}:${container.getMappedPort(2113)}?tls=false`,
        stop: async () => {
          await container.stop();
        },
      };
    },
  };
}

/** A cheap look for a Docker engine: connect to the sockets it usually listens on, giving each a second. */
async function dockerAnswers(): Promise<boolean> {
  const candidates: (() => Socket)[] = [];
  const host = process.env.DOCKER_HOST;
  if (host?.startsWith('unix://')) candidates.push(() => connect(host.slice('unix://'.length)));
  if (host?.startsWith('tcp://')) {
    const { hostname, port } = new URL(host.replace(/^tcp:/, 'http:'));
    candidates.push(() => connect(Number(port || 2375), hostname));
  }
  const sockets = [
    '/var/run/docker.sock',
    join(homedir(), '.docker', 'run', 'docker.sock'),
    ...(process.env.XDG_RUNTIME_DIR ? [join(process.env.XDG_RUNTIME_DIR, 'docker.sock')] : []),
  ];
  for (const path of sockets) if (existsSync(path)) candidates.push(() => connect(path));
  const answers = await Promise.all(candidates.map(reachable));
  return answers.includes(true);
}

function reachable(open: () => Socket): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = open();
    const done = (answer: boolean) => {
      socket.destroy();
      resolve(answer);
    };
    socket.setTimeout(1_000, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

import 'reflect-metadata';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { DestinationStream, Logger } from 'pino';
import { container, type DependencyContainer, type FactoryProvider } from 'tsyringe';
import { type BackfillDeps, backfillGrant } from './application/backfill-grant';
import { createGrantCallQueue } from './application/grant-call-queue';
import type { HealDeps } from './application/heal-gaps';
import { completeLink, type LinkingDeps, startLink } from './application/link-grant';
import type { ApiKeys } from './application/ports/api-keys';
import type { BankHubClient } from './application/ports/bankhub';
import { type EventStore, EventStoreUnavailable } from './application/ports/event-store';
import type { GrantSecrets } from './application/ports/grant-secrets';
import type { Quarantine } from './application/ports/quarantine';
import type { SweepDeps } from './application/sweep';
import type { Config } from './config';
import { type AlertDetector, createAlertDetector } from './infrastructure/alerts/alert-detector';
import { type AlertDispatcher, createAlertDispatcher } from './infrastructure/alerts/alert-dispatcher';
import { type AlertLoop, createAlertLoop } from './infrastructure/alerts/alert-loop';
import { type BankHubClientOptions, createBankHubClient } from './infrastructure/bankhub/bankhub-client';
import { createPostgresEventStore } from './infrastructure/eventstore/postgres-event-store';
import { createHealLoop, type HealLoop, waitForCheckpoint } from './infrastructure/heal-loop';
import { buildMetricsServer } from './infrastructure/http/metrics-server';
import { buildServer, type ServerDeps } from './infrastructure/http/server';
import { createStatementCache, type StatementCache } from './infrastructure/http/statement-cache';
import { reconnectDelayMs } from './infrastructure/locked-loop';
import { createLogger, logFormatFor } from './infrastructure/logger';
import { countedBankHub, createMetrics, type Metrics } from './infrastructure/metrics';
import { createParkedEvents, type ParkedEvents } from './infrastructure/parked-events';
import { type AlertOutboxRepository, createAlertOutboxRepository } from './infrastructure/postgres/alert-outbox-repository';
import { createApiKeyRepository } from './infrastructure/postgres/api-key-repository';
import { type Database, openDatabase } from './infrastructure/postgres/database';
import { isUnavailableError } from './infrastructure/postgres/errors';
import { createGrantSecretsRepository } from './infrastructure/postgres/grant-secrets-repository';
import { migrateToLatest } from './infrastructure/postgres/migrations';
import { createQuarantineRepository } from './infrastructure/postgres/quarantine-repository';
import { createProjectionRunner, type ProjectionRunner } from './infrastructure/projection-runner';
import { createProjectionThread, type ProjectionThreadHandle } from './infrastructure/projection-thread';
import { ensureProjectionSchema } from './infrastructure/projection-store';
import { createTokenCipher } from './infrastructure/secrets/token-cipher';
import { createSweepLoop, type SweepLoop } from './infrastructure/sweep-loop';
import { cleanUpAfterCrashedVerifies, createVerifier, type Verifier } from './infrastructure/verify-runs';
import { allProjections } from './projections/all-projections';
import { GRANTS_SCHEMA } from './projections/grants.projection';
import { findGrantOfAccount, listGrants } from './projections/grants.queries';
import { breakStatuses, findBreaksToHeal } from './projections/heal.queries';
import { createLedgerProjection } from './projections/ledger.projection';
import type { Projection } from './projections/projection';
import { readModelIn } from './projections/read-model';
import { activeGrants, bankNames } from './projections/sweep.queries';

/**
 * THE composition root: the one module that knows tsyringe. Each port is registered once against its adapter (an
 * explicit token, a factory, no decorators); the service (main.ts), the CLI (src/cli/), the tests, the benchmarks and
 * tools/openapi.ts all build their object graph here and receive plain objects. A test replaces registrations by
 * passing overrides, which are registered in a child container of the graph's own.
 */

export type Clock = () => Date;

/** Set once the process drains (SIGTERM): GET /ready then answers 503 while everything else is still served. */
export interface Drain {
  readonly draining: () => boolean;
  begin(): void;
}

/** Everything the root can build, by name. Each is made once per graph, on first use. */
export interface Graph {
  readonly config: Config;
  /** Where log lines go; null: standard output. One-shot commands print their results there, so they log to standard error. */
  readonly logDestination: DestinationStream | null;
  readonly logger: Logger;
  readonly clock: Clock;
  /** PostgreSQL (or embedded PGlite): the write pool and the read pool. */
  readonly database: Database;
  readonly eventStore: EventStore;
  /** The same log read through the read pool (the auditors' routes): reads never take a write connection. */
  readonly logReader: EventStore;
  readonly quarantine: Quarantine;
  readonly apiKeys: ApiKeys;
  /** Every read model: what the runners follow and what rebuild, verify and parking cover. */
  readonly projections: readonly Projection[];
  /** One runner per projection; in every process, so that GET /projections reports the lag wherever they run. */
  readonly runners: readonly ProjectionRunner[];
  /** The web process's projections on a thread of their own (on a PostgreSQL server, RUN_PROJECTIONS on); else null. */
  readonly projectionThread: ProjectionThreadHandle | null;
  readonly verifier: Verifier;
  readonly parkedEvents: ParkedEvents;
  /** Null where SECRETS_KEY is unset. */
  readonly grantSecrets: GrantSecrets | null;
  /** Null where Cas BankHub is not configured (BANKHUB_CLIENT_ID, BANKHUB_SECRET_KEY). */
  readonly bankHubClient: BankHubClient | null;
  /** The same client without retries: the public token is single-use, so a retry after a lost answer could only fail. */
  readonly bankHubExchange: Pick<BankHubClient, 'exchangePublicToken'> | null;
  /** Linking, backfill and healing: null unless both Cas and the grant secrets are there. */
  readonly linking: LinkingDeps | null;
  readonly backfill: BackfillDeps | null;
  readonly heal: Omit<HealDeps, 'shouldStop'> | null;
  readonly healLoop: HealLoop | null;
  /** This process's Prometheus metrics (GET /metrics): counters of its own work, and counts of the read models read at scrape time. */
  readonly metrics: Metrics;
  /** Node's process metrics (heap, event-loop lag, GC) in GET /metrics; tests, with many graphs in one process, leave them out. */
  readonly processMetrics: boolean;
  /** The alert outbox: GET /alerts lists it whether or not alerting is on. */
  readonly alertOutbox: AlertOutboxRepository;
  /** Detection (read models → outbox) and delivery (outbox → ALERT_WEBHOOK_URL): null where ALERT_WEBHOOK_URL is unset. */
  readonly alertDetector: AlertDetector | null;
  readonly alertDispatcher: AlertDispatcher | null;
  /** Detects and delivers every ALERT_INTERVAL_SECONDS, one process at a time; null where alerting is off. */
  readonly alertLoop: AlertLoop | null;
  /** The daily sweep (yesterday and today of every active grant, asked of Cas): null unless backfill is possible. */
  readonly sweep: Omit<SweepDeps, 'shouldStop'> | null;
  /** The sweep at SWEEP_AT, and by hand (`ledger sweep`); null without Cas, like `sweep`. */
  readonly sweepLoop: SweepLoop | null;
  readonly drain: Drain;
  /** Where `npm run build:console` wrote the accountants' console. */
  readonly consoleDir: string;
  /** The web process's statements answered while nothing changed (STATEMENT_CACHE_MB; null when 0). */
  readonly statementCache: StatementCache | null;
  readonly serverDeps: ServerDeps;
}

/** Registrations a caller replaces (tests: a logger that records, a clock ahead, a test double of Cas…). */
export type Overrides = Partial<Graph>;

/** Explicit tokens, one per registration. */
const TOKENS: { readonly [K in keyof Graph]: symbol } = {
  config: Symbol('Config'),
  logDestination: Symbol('LogDestination'),
  logger: Symbol('Logger'),
  clock: Symbol('Clock'),
  database: Symbol('Database'),
  eventStore: Symbol('EventStore'),
  logReader: Symbol('LogReader'),
  quarantine: Symbol('Quarantine'),
  apiKeys: Symbol('ApiKeys'),
  projections: Symbol('Projections'),
  runners: Symbol('ProjectionRunners'),
  projectionThread: Symbol('ProjectionThread'),
  verifier: Symbol('Verifier'),
  parkedEvents: Symbol('ParkedEvents'),
  grantSecrets: Symbol('GrantSecrets'),
  bankHubClient: Symbol('BankHubClient'),
  bankHubExchange: Symbol('BankHubExchange'),
  linking: Symbol('Linking'),
  backfill: Symbol('Backfill'),
  heal: Symbol('Heal'),
  healLoop: Symbol('HealLoop'),
  metrics: Symbol('Metrics'),
  processMetrics: Symbol('ProcessMetrics'),
  alertOutbox: Symbol('AlertOutbox'),
  alertDetector: Symbol('AlertDetector'),
  alertDispatcher: Symbol('AlertDispatcher'),
  alertLoop: Symbol('AlertLoop'),
  sweep: Symbol('Sweep'),
  sweepLoop: Symbol('SweepLoop'),
  drain: Symbol('Drain'),
  consoleDir: Symbol('ConsoleDir'),
  statementCache: Symbol('StatementCache'),
  serverDeps: Symbol('ServerDeps'),
};

type Get = <K extends keyof Graph>(name: K) => Graph[K];
type Factories = { readonly [K in keyof Graph]?: (get: Get) => Graph[K] };

/** The ledger's read model lives in this schema; the query routes, export and healing read it. */
export const LEDGER_SCHEMA = 'ledger';

/** Where `npm run build:console` writes the console (vite.config.ts in console/ says the same). */
export const CONSOLE_DIR = join(import.meta.dirname, '..', 'dist', 'console');

/** One instance per container: a child container with overrides builds its own, never borrows its parent's. */
function single<T>(make: (get: Get) => T): FactoryProvider<T> {
  const made = new WeakMap<DependencyContainer, T>();
  return {
    useFactory: (c) => {
      if (!made.has(c)) made.set(c, make((name) => c.resolve(TOKENS[name])));
      return made.get(c) as T;
    },
  };
}

/** The adapters of the ports, and the close of each one opened. */
function storeFactories(config: Config, opened: Closable[], eventStoreDb: EventStoreDbModule | null): Factories {
  return {
    logDestination: () => null,
    logger: (get) => createLogger(config.logLevel, get('logDestination') ?? undefined, logFormatFor(config.logFormat)),
    clock: () => () => new Date(),
    database: (get) =>
      closing(
        opened,
        openDatabase({
          databaseUrl: config.databaseUrl,
          dataDir: config.dataDir,
          poolSize: config.dbPoolSize,
          readPoolSize: config.dbReadPoolSize,
          readStatementTimeoutMs: config.dbReadStatementTimeoutMs,
          idleInTransactionTimeoutMs: config.dbIdleInTransactionTimeoutMs,
          logger: get('logger'),
        }),
      ),
    eventStore: (get) => {
      if (!eventStoreDb || !config.eventStoreUrl) return closing(opened, createPostgresEventStore(get('database').db, { settleMs: config.projectionSettleMs }));
      const logger = get('logger').child({ component: 'eventstoredb' });
      return closing(opened, eventStoreDb.createEventStoreDbEventStore({ connectionString: config.eventStoreUrl, logger }));
    },
    logReader: (get) => {
      const database = get('database');
      return config.eventStoreUrl || database.kind === 'pglite' ? get('eventStore') : createPostgresEventStore(database.readDb);
    },
    quarantine: (get) => createQuarantineRepository(get('database').db),
    apiKeys: (get) => createApiKeyRepository(get('database').db),
    grantSecrets: (get) => (config.secretsKey ? createGrantSecretsRepository(get('database').db, createTokenCipher(config.secretsKey)) : null),
  };
}

/** The read side: projections, their runners, verify and the parked events. */
function readSideFactories(config: Config, projectionThread: URL | undefined): Factories {
  const runnerOf = (get: Get, projection: Projection) =>
    createProjectionRunner({
      database: get('database'),
      eventStore: get('eventStore'),
      projection,
      logger: get('logger'),
      now: get('clock'),
      batchSize: config.projectionBatchSize,
    });
  return {
    projections: () => allProjections(),
    runners: (get) => get('projectionThread')?.runners ?? get('projections').map((p) => runnerOf(get, p)),
    projectionThread: (get) => {
      // PGlite lives in this thread's heap: only a server can be shared with a thread of the runners' own. With
      // RUN_PROJECTIONS=false another process projects: this one's runners, never started, report the checkpoint.
      if (!projectionThread || !config.runProjections || get('database').kind === 'pglite') return null;
      const standIns = get('projections').map((p) => runnerOf(get, p));
      const logger = get('logger').child({ component: 'projection-thread' });
      return createProjectionThread({ entry: projectionThread, standIns, logger, env: { LOG_FORMAT: logFormatFor(config.logFormat) } });
    },
    verifier: (get) => createVerifier({ database: get('database'), eventStore: get('eventStore'), projections: get('projections'), now: get('clock') }),
    // Retrying a parked event writes the read models: the write pool, not the read pool.
    parkedEvents: (get) =>
      createParkedEvents({ db: get('database').db, eventStore: get('eventStore'), projections: get('projections'), now: get('clock') }),
  };
}

/** Everything that talks to Cas BankHub: off (null) unless it is configured. */
function casFactories(config: Config): Factories {
  const { credentials } = config.bankHub;
  const clientOptions = (get: Get, maxRetries?: number): BankHubClientOptions | null => {
    if (!credentials) return null;
    const log = get('logger').child({ component: 'bankhub' });
    return {
      baseUrl: config.bankHub.baseUrl,
      clientId: credentials.clientId,
      secretKey: credentials.secretKey,
      apiVersion: config.bankHub.apiVersion,
      scopes: config.bankHub.scopes,
      rateLimitDelayMs: config.bankHub.rateLimitMs,
      ...(maxRetries === undefined ? {} : { maxRetries }),
      // The error carries no token (the client removes credentials); log its code, not the message.
      onRetry: ({ operation, attempt, delayMs, error }) =>
        log.warn({ operation, attempt, delayMs, errorCode: error.errorCode, casRequestId: error.requestId }, 'retrying a Cas call'),
    };
  };
  return {
    // Every Cas call is counted by endpoint and outcome (ledger_bankhub_requests_total).
    bankHubClient: (get) => {
      const options = clientOptions(get);
      return options && countedBankHub(createBankHubClient(options), get('metrics'));
    },
    bankHubExchange: (get) => {
      const options = clientOptions(get, 0);
      return options && countedBankHub(createBankHubClient(options), get('metrics'));
    },
    linking: (get) => {
      const [bankHub, exchange, secrets] = [get('bankHubClient'), get('bankHubExchange'), get('grantSecrets')];
      if (!bankHub || !exchange || !secrets) return null;
      const { linkUrl, redirectUri } = config.bankHub;
      return { bankHub, exchange, secrets, eventStore: get('eventStore'), linkUrl, redirectUri, now: get('clock') };
    },
    backfill: (get) => {
      const [bankHub, secrets] = [get('bankHubClient'), get('grantSecrets')];
      if (!bankHub || !secrets) return null;
      const queue = createGrantCallQueue({ minIntervalMs: config.bankHub.rateLimitMs });
      return { bankHub, secrets, queue, eventStore: get('eventStore'), quarantine: get('quarantine'), now: get('clock') };
    },
    heal: (get) => {
      const backfill = get('backfill');
      if (!backfill) return null;
      const { db } = get('database');
      const [ledger, grants] = [readModelIn(db, LEDGER_SCHEMA), readModelIn(db, GRANTS_SCHEMA)];
      const projection = createLedgerProjection();
      return {
        backfill,
        findBreaksToHeal: (query) => findBreaksToHeal(ledger, query),
        findGrantOfAccount: (fiId, accountNumber) => findGrantOfAccount(grants, fiId, accountNumber),
        waitForProjection: () => waitForCheckpoint(db, get('eventStore'), projection, LEDGER_SCHEMA),
        breakStatuses: (ids) => breakStatuses(ledger, ids),
        healAfterMs: config.healAfterSeconds * 1000,
      };
    },
    healLoop: (get) => {
      const heal = get('heal');
      const intervalMs = config.healIntervalSeconds * 1000;
      return heal && createHealLoop({ database: get('database'), heal, intervalMs, logger: get('logger'), onReport: get('metrics').healed });
    },
  };
}

/** What operators watch and hear from: the metrics, the alerts, and the daily sweep that finds what Cas's pushes lost. */
function opsFactories(config: Config): Factories {
  return {
    processMetrics: () => true,
    metrics: (get) => {
      const [database, logger, now, projections, thread] = [get('database'), get('logger'), get('clock'), get('projections'), get('projectionThread')];
      // Each projection's lag from its committed checkpoint, through the read pool, wherever the runners run: a
      // status-only runner per projection, never started.
      const readSide = { ...database, db: database.readDb };
      const lagReaders = projections.map((projection) =>
        createProjectionRunner({ database: readSide, eventStore: get('logReader'), projection, logger, now }),
      );
      return createMetrics({
        logger,
        processMetrics: get('processMetrics'),
        readModels: {
          db: database.readDb,
          ledger: readModelIn(database.readDb, LEDGER_SCHEMA),
          projections: projections.map((p) => p.name),
          lag: () => Promise.all(lagReaders.map((r) => r.status())),
          now,
        },
        statementCache: get('statementCache')?.stats,
        ...(thread ? { thread: thread.metrics } : {}),
      });
    },
    alertOutbox: (get) => createAlertOutboxRepository(get('database').db),
    alertDetector: (get) => {
      if (!config.alerts.webhookUrl) return null;
      const [runners, { db }] = [get('runners'), get('database')];
      return createAlertDetector({
        outbox: get('alertOutbox'),
        ledger: readModelIn(db, LEDGER_SCHEMA),
        grants: readModelIn(db, GRANTS_SCHEMA),
        readModelOf: (projection) => readModelIn(db, projection),
        // Each runner reports the committed checkpoint when it is not the one projecting (another process is).
        projections: () => Promise.all(runners.map((r) => r.status())),
        breakAfterSeconds: config.alerts.breakAfterSeconds,
        lagSeconds: config.alerts.lagSeconds,
        now: get('clock'),
      });
    },
    alertDispatcher: (get) => {
      const url = config.alerts.webhookUrl;
      if (!url) return null;
      const [log, metrics] = [get('logger').child({ component: 'alerts' }), get('metrics')];
      return createAlertDispatcher({
        outbox: get('alertOutbox'),
        url,
        format: config.alerts.format,
        now: get('clock'),
        onDelivery: (outcome, record, error) => {
          metrics.alertDelivery(outcome);
          const attempts = record.attempts + 1;
          if (outcome === 'retry') log.warn({ alertId: record.alertId, attempts, error }, 'alert not delivered; trying again later');
          if (outcome === 'failed') log.error({ alertId: record.alertId, attempts, error }, 'alert given up after 24 h of failed deliveries');
        },
      });
    },
    alertLoop: (get) => {
      const [detector, dispatcher] = [get('alertDetector'), get('alertDispatcher')];
      if (!detector || !dispatcher) return null;
      const intervalMs = config.alerts.intervalSeconds * 1000;
      return createAlertLoop({ database: get('database'), detector, dispatcher, intervalMs, logger: get('logger'), onPass: get('metrics').alertPass });
    },
    sweep: (get) => {
      const backfill = get('backfill');
      if (!backfill) return null;
      const { db } = get('database');
      return {
        backfill,
        activeGrants: () => activeGrants(readModelIn(db, GRANTS_SCHEMA)),
        fiNames: () => bankNames(readModelIn(db, LEDGER_SCHEMA)),
        // What the sweep recovered is an alert only while alerting is on.
        ...(config.alerts.webhookUrl ? { alerts: get('alertOutbox') } : {}),
      };
    },
    sweepLoop: (get) => {
      const deps = get('sweep');
      const { sweepAtMinutes } = config;
      return deps && createSweepLoop({ database: get('database'), deps, sweepAtMinutes, now: get('clock'), logger: get('logger'), metrics: get('metrics') });
    },
  };
}

/** What buildServer needs: the routes get plain use-case functions, bound here. */
function httpFactories(config: Config): Factories {
  return {
    drain: () => {
      let draining = false;
      return { draining: () => draining, begin: () => void (draining = true) };
    },
    consoleDir: () => CONSOLE_DIR,
    statementCache: () => createStatementCache(config.statementCacheBytes),
    serverDeps: (get) => {
      const [database, eventStore, linking, backfill] = [get('database'), get('eventStore'), get('linking'), get('backfill')];
      const { db } = database;
      const { missing } = config.bankHub;
      return {
        logger: get('logger'),
        ingest: { eventStore, quarantine: get('quarantine') },
        webhook: { token: config.webhookToken, allowedIps: config.webhookAllowedIps, bodyLimit: config.webhookBodyLimit },
        trustProxy: config.trustProxy,
        apiToken: config.apiToken,
        apiKeys: get('apiKeys'),
        rateLimits: config.rateLimits,
        readinessChecks: { eventStore: () => eventStore.ping() },
        draining: get('drain').draining,
        httpTimeouts: config.http,
        // The query routes read through a pool of their own (statement timeout): they never take ingest's connections.
        readModels: { ...readModelIn(database.readDb, LEDGER_SCHEMA), singleConnection: database.kind === 'pglite' },
        statementCache: get('statementCache'),
        logReader: get('logReader'),
        verify: get('verifier').run,
        parked: get('parkedEvents'),
        projectionNames: get('projections').map((p) => p.name),
        runners: get('runners'),
        now: get('clock'),
        consoleDir: get('consoleDir'),
        metrics: get('metrics'),
        alerts: { outbox: get('alertOutbox'), enabled: get('alertLoop') !== null },
        links: {
          linking: linking && { startLink: (input) => startLink(linking, input), completeLink: (token) => completeLink(linking, token) },
          missing,
        },
        grants: {
          listGrants: () => listGrants(readModelIn(db, GRANTS_SCHEMA)),
          backfillGrant: backfill && ((request) => backfillGrant(backfill, request)),
          missing,
        },
      };
    },
  };
}

interface Closable {
  close(): Promise<void>;
}
const closing = <T extends Closable>(opened: Closable[], made: T): T => (opened.push(made), made);

type EventStoreDbModule = typeof import('./infrastructure/eventstore/eventstoredb-event-store');

/** A built graph: `resolve` hands out plain objects; `close` closes what the graph opened, last opened first. */
export interface Root {
  resolve<K extends keyof Graph>(name: K): Graph[K];
  close(): Promise<void>;
}

/**
 * Registers everything for `config`, opens nothing: each adapter is made on first `resolve`. The EventStoreDB client
 * is loaded only where EVENTSTORE_URL asks for it.
 */
export async function compose(config: Config, overrides: Overrides = {}, options: { readonly projectionThread?: URL } = {}): Promise<Root> {
  const opened: Closable[] = [];
  const eventStoreDb = config.eventStoreUrl ? await import('./infrastructure/eventstore/eventstoredb-event-store') : null;
  const graph = container.createChildContainer();
  graph.register(TOKENS.config, { useValue: config });
  const factories: Factories = {
    ...storeFactories(config, opened, eventStoreDb),
    ...readSideFactories(config, options.projectionThread),
    ...casFactories(config),
    ...opsFactories(config),
    ...httpFactories(config),
  };
  for (const [name, make] of Object.entries(factories) as [keyof Graph, (get: Get) => unknown][]) {
    graph.register(TOKENS[name], single(make));
  }
  const scope = graph.createChildContainer();
  for (const [name, value] of Object.entries(overrides) as [keyof Graph, unknown][]) {
    if (value !== undefined) scope.register(TOKENS[name], { useValue: value });
  }
  return {
    resolve: (name) => scope.resolve(TOKENS[name]),
    async close() {
      for (const adapter of opened.splice(0).reverse()) await adapter.close();
    },
  };
}

export interface OpenOptions {
  readonly overrides?: Overrides;
  /** The long-running processes wait, with backoff, while the stores are unreachable; one-shot commands fail at once. */
  readonly waitForStores?: boolean;
  /** `ledger keys` needs only the write-side tables: no read-model schemas, no verify clean-up. */
  readonly writeSideOnly?: boolean;
  /**
   * The service on a PostgreSQL server runs its projection runners on a worker thread started from this module
   * (`src/projection-thread.ts`); without it, or on PGlite, they run on the process's own thread.
   */
  readonly projectionThread?: URL;
}

/**
 * `compose`, then the start-up every process shares: migrations, the read-model schemas (they exist before the first
 * request, even where no runner runs in this process), and what a crashed verify left behind. Anything but an
 * unreachable store (a wrong password, a failed migration) stops start-up at once.
 */
export async function openRoot(config: Config, options: OpenOptions = {}): Promise<Root> {
  const root = await compose(config, options.overrides, { projectionThread: options.projectionThread });
  try {
    for (let failures = 1; ; failures++) {
      try {
        await prepareStores(root, options.writeSideOnly ?? false);
        return root;
      } catch (error) {
        if (!options.waitForStores || !(error instanceof EventStoreUnavailable || isUnavailableError(error))) throw error;
        const retryInMs = reconnectDelayMs(failures);
        root.resolve('logger').warn({ err: error, retryInMs }, 'the stores are unreachable; waiting for them');
        await new Promise((r) => setTimeout(r, retryInMs));
      }
    }
  } catch (error) {
    await root.close().catch(() => {});
    throw error;
  }
}

async function prepareStores(root: Root, writeSideOnly: boolean): Promise<void> {
  const { db } = root.resolve('database');
  await migrateToLatest(db);
  if (writeSideOnly) return;
  const projections = root.resolve('projections');
  for (const projection of projections) await ensureProjectionSchema(db, projection, projection.name);
  await cleanUpAfterCrashedVerifies(root.resolve('database'), projections, root.resolve('clock')());
  root.resolve('eventStore');
}

/** Something that runs until the process drains: started after the server listens, stopped after it stops accepting. */
export interface Component {
  readonly name: string;
  start(): void;
  /** Resolves once the work in flight has finished (a batch commits or rolls back whole; a Cas call returns). */
  stop(): Promise<void>;
}

/**
 * THE list of a process's long-running components, in start order; `stopComponents` stops them in reverse. A new
 * loop is added here and nowhere else. `ledger project` runs the projection runners only; the service runs them too
 * unless RUN_PROJECTIONS=false, heals gaps and sweeps daily (unless SWEEP_AT=off) when Cas BankHub is configured, and
 * alerts when ALERT_WEBHOOK_URL is set.
 */
export function longRunningComponents(root: Root, role: 'service' | 'projector'): Component[] {
  const components: Component[] = [];
  if (role === 'projector' || root.resolve('config').runProjections) {
    const runners = root.resolve('runners');
    components.push({
      name: 'projection runners',
      start: () => runners.forEach((runner) => runner.start()),
      // Each stops between batches: the batch in flight commits or rolls back whole.
      stop: async () => void (await Promise.all(runners.map((runner) => runner.stop()))),
    });
  }
  if (role === 'projector') return components;
  const healLoop = root.resolve('healLoop');
  // Between Cas calls: every heal attempt is one event, never half recorded.
  if (healLoop) components.push({ name: 'heal loop', start: () => healLoop.start(), stop: () => healLoop.stop() });
  const sweepLoop = root.resolve('config').sweepAtMinutes === null ? null : root.resolve('sweepLoop');
  // Between grants: a sweep stopped records nothing and runs again later.
  if (sweepLoop) components.push({ name: 'daily sweep', start: () => sweepLoop.start(), stop: () => sweepLoop.stop() });
  const alertLoop = root.resolve('alertLoop');
  // Between deliveries: an alert not marked delivered is sent again (at least once).
  if (alertLoop) components.push({ name: 'alerts', start: () => alertLoop.start(), stop: () => alertLoop.stop() });
  return components;
}

export const startComponents = (components: readonly Component[]): void => components.forEach((c) => c.start());

export async function stopComponents(components: readonly Component[]): Promise<void> {
  for (const component of [...components].reverse()) await component.stop();
}

/** The service's process: the HTTP server (not yet listening) and its long-running components (not yet started). */
export interface Service {
  readonly app: FastifyInstance;
  readonly components: readonly Component[];
  /** Starts the components (after `app.listen`). */
  start(): void;
  /** Graceful drain: stop accepting and let in-flight requests finish their commits, stop the components, close the stores. */
  close(): Promise<void>;
}

export async function buildService(root: Root): Promise<Service> {
  const app = await buildServer(root.resolve('serverDeps'));
  return { app, ...processOf(root, app, 'service') };
}

/**
 * `ledger project`'s process: the projection runners (not yet started) and, where METRICS_PORT is set, GET /metrics on
 * a small server of its own behind the service's keys (not yet listening).
 */
export interface Projector extends Omit<Service, 'app'> {
  readonly metricsServer: FastifyInstance | null;
}

export async function buildProjector(root: Root): Promise<Projector> {
  const { metricsPort, apiToken } = root.resolve('config');
  const metricsServer =
    metricsPort === undefined
      ? null
      : await buildMetricsServer({ logger: root.resolve('logger'), metrics: root.resolve('metrics'), apiKeys: root.resolve('apiKeys'), apiToken });
  return { metricsServer, ...processOf(root, metricsServer, 'projector') };
}

/** A process's components, and its drain: the server stops accepting, then the components stop, then the stores close. */
function processOf(root: Root, server: FastifyInstance | null, role: 'service' | 'projector'): Omit<Service, 'app'> {
  const components = longRunningComponents(root, role);
  return {
    components,
    start: () => startComponents(components),
    async close() {
      await server?.close(); // lets in-flight requests finish their commits
      await stopComponents(components);
      await root.close();
    },
  };
}

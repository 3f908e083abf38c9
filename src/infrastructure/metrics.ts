import { sql } from 'kysely';
import type { Logger } from 'pino';
import {
  collectDefaultMetrics,
  Counter,
  Gauge,
  Histogram,
  type Metric,
  type MetricObjectWithValues,
  type MetricValue,
  Registry,
} from 'prom-client';
import type { HealReport } from '../application/heal-gaps';
import { BankHubError, type BankHubClient, CAS_ERROR_CODES, TRANSPORT_ERROR_CODES } from '../application/ports/bankhub';
import type { SweepReport } from '../application/sweep';
import type { ReadModel } from '../projections/read-model';
import type { WriteSideDb } from './postgres/tables';
import { countParked } from './projection-store';

/**
 * Prometheus metrics of one process (prom-client, a registry of its own: tests build several apps in one process).
 *
 * Two kinds. Counts that come from the read models and the write-side tables (open breaks, parked events, the
 * quarantine, projection lag, alerts waiting) are read from PostgreSQL when scraped, through the read pool and its
 * statement timeout, so every process answers the same. Counters of this process's own work (webhooks answered,
 * Cas calls, heal attempts, sweeps, alert deliveries) start from zero with the process, as Prometheus expects.
 */
export interface Metrics {
  readonly registry: Registry;
  readonly contentType: string;
  /** The Prometheus text of every metric (the read-model counts are queried now). */
  scrape(): Promise<string>;
  /** A webhook was answered: its status code, the ack's status (on 200) and the time taken. */
  webhookAnswered(statusCode: number, ackStatus: string | undefined, seconds: number): void;
  bankHubCall(endpoint: string, outcome: string): void;
  healed(report: HealReport): void;
  swept(report: SweepReport): void;
  alertDelivery(outcome: 'delivered' | 'retry' | 'failed'): void;
  /** One pass of the alert detector has run (tests wait on it rather than on the clock). */
  alertPass(): void;
}

export const WEBHOOK_OUTCOMES = ['accepted', 'duplicate', 'conflict', 'recorded', 'ping', 'invalid', 'unauthorized', 'unavailable'] as const;
export type WebhookOutcome = (typeof WEBHOOK_OUTCOMES)[number];

/** Open breaks by how long they have been open, in seconds (upper bounds; the last is open-ended). */
const BREAK_AGES = [
  { label: 'under_15m', below: 900 },
  { label: '15m_to_1h', below: 3_600 },
  { label: '1h_to_1d', below: 86_400 },
  { label: 'over_1d', below: Number.POSITIVE_INFINITY },
] as const;

export interface ReadModelSource {
  /** The read pool (the write side's tables): every scrape query is bounded by DB_READ_STATEMENT_TIMEOUT_MS. */
  readonly db: WriteSideDb;
  /** The ledger's read model, over the same pool. */
  readonly ledger: ReadModel;
  /** The projections' schemas, for their parked events. */
  readonly projections: readonly string[];
  /** Each projection's lag from its committed checkpoint. */
  readonly lag: () => Promise<readonly { projection: string; eventsBehind: bigint | null; secondsBehind: number }[]>;
  readonly now: () => Date;
}

export interface MetricsOptions {
  /** Where the counts of the read models come from; absent: those metrics are not reported. */
  readonly readModels?: ReadModelSource;
  readonly logger: Logger;
  /** Node's process metrics (heap, event-loop lag, GC); default on. */
  readonly processMetrics?: boolean;
  /** This process's statement cache, read at each scrape; absent: not reported. */
  readonly statementCache?: () => StatementCacheStats;
  /** The process's other thread (the web process's projection thread), asked at each scrape; absent: none. */
  readonly thread?: ThreadMetricsSource;
}

/** prom-client's JSON of metrics: what a thread sends of its own (structured-cloneable). */
export type MetricsJson = MetricObjectWithValues<MetricValue<string>>[];

/** What another thread of the process adds to its metrics. */
export interface ThreadMetricsSource {
  /** The value of the `thread` label of its series. */
  readonly thread: string;
  /** Its runtime metrics (`threadRuntimeMetrics`, labelled); rejects when it is not running or does not answer. */
  readonly runtime: () => Promise<MetricsJson>;
  /** How many times it was started again after it ended on its own. */
  readonly restarts: () => number;
}

/** What a statement cache holds and how its look-ups went since the process started. */
export interface StatementCacheStats {
  readonly entries: number;
  readonly bytes: number;
  readonly hits: number;
  readonly misses: number;
}

export function createMetrics(options: MetricsOptions): Metrics {
  const registry = new Registry();
  const registers = [registry];
  const log = options.logger.child({ component: 'metrics' });
  if (options.processMetrics !== false) collectDefaultMetrics({ register: registry });

  const webhooks = new Counter({
    name: 'ledger_webhooks_total',
    help: 'Webhooks answered by this process, by outcome',
    labelNames: ['outcome'],
    registers,
  });
  for (const outcome of WEBHOOK_OUTCOMES) webhooks.inc({ outcome }, 0);
  const webhookSeconds = new Histogram({
    name: 'ledger_webhook_duration_seconds',
    help: 'Time to answer a webhook (the answer waits for the durable commit)',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers,
  });
  const bankHub = new Counter({
    name: 'ledger_bankhub_requests_total',
    help: "Calls to Cas BankHub by this process (after the client's own retries), by endpoint and outcome (ok or Cas's error code)",
    labelNames: ['endpoint', 'outcome'],
    registers,
  });
  const heals = new Counter({
    name: 'ledger_heal_attempts_total',
    help: 'Heal attempts of open breaks by this process, by result',
    labelNames: ['result'],
    registers,
  });
  for (const result of ['closed', 'not_closed', 'failed']) heals.inc({ result }, 0);
  const sweeps = new Counter({
    name: 'ledger_sweep_runs_total',
    help: 'Daily sweeps completed by this process',
    registers,
  });
  const swept = new Counter({
    name: 'ledger_sweep_transactions_total',
    help: 'What the daily sweeps of this process found in Cas, by result (fetched, accepted = recovered, duplicates, conflicts, invalid)',
    labelNames: ['result'],
    registers,
  });
  for (const result of ['fetched', 'accepted', 'duplicates', 'conflicts', 'invalid']) swept.inc({ result }, 0);
  const sweepGrantFailures = new Counter({
    name: 'ledger_sweep_grant_failures_total',
    help: 'Grants a daily sweep of this process could not backfill (Cas refused or failed)',
    registers,
  });
  const lastSweep = new Gauge({
    name: 'ledger_sweep_last_completed_timestamp_seconds',
    help: 'When this process last completed a daily sweep (Unix time)',
    registers,
  });
  const deliveries = new Counter({
    name: 'ledger_alert_deliveries_total',
    help: 'Alert deliveries tried by this process: delivered, retry (will be tried again), failed (gave up after 24 h)',
    labelNames: ['outcome'],
    registers,
  });
  for (const outcome of ['delivered', 'retry', 'failed']) deliveries.inc({ outcome }, 0);
  const alertPasses = new Counter({
    name: 'ledger_alert_detection_passes_total',
    help: 'Passes of the alert detector in this process',
    registers,
  });

  if (options.readModels) registerReadModelGauges(options.readModels, registers, log);
  if (options.statementCache) registerStatementCacheMetrics(options.statementCache, registers);
  const { thread } = options;

  return {
    registry,
    contentType: registry.contentType,
    scrape: thread ? withThread(registry, thread, log) : () => registry.metrics(),
    webhookAnswered(statusCode, ackStatus, seconds) {
      webhooks.inc({ outcome: webhookOutcome(statusCode, ackStatus) });
      webhookSeconds.observe(seconds);
    },
    bankHubCall: (endpoint, outcome) => bankHub.inc({ endpoint, outcome }),
    healed(report) {
      heals.inc({ result: 'closed' }, report.closed);
      heals.inc({ result: 'not_closed' }, report.notClosed);
      heals.inc({ result: 'failed' }, report.failed);
    },
    swept(report) {
      sweeps.inc();
      for (const [result, n] of Object.entries(report.totals)) swept.inc({ result }, n);
      sweepGrantFailures.inc(report.grants.filter((g) => g.outcome === 'failed').length);
      lastSweep.set(Date.parse(report.completedAt) / 1000);
    },
    alertDelivery: (outcome) => deliveries.inc({ outcome }),
    alertPass: () => alertPasses.inc(),
  };
}

/** The statement cache's size and look-ups, read from the cache itself at each scrape. */
function registerStatementCacheMetrics(stats: () => StatementCacheStats, registers: Registry[]): void {
  new Counter({
    name: 'ledger_statement_cache_lookups_total',
    help: 'JSON statements looked up in this process\'s cache: hit (served as stored, the account unchanged) or miss (computed)',
    labelNames: ['result'],
    registers,
    collect() {
      const { hits, misses } = stats();
      this.reset();
      this.inc({ result: 'hit' }, hits);
      this.inc({ result: 'miss' }, misses);
    },
  });
  new Gauge({
    name: 'ledger_statement_cache_bytes',
    help: 'Bytes held by this process\'s statement cache (bounded by STATEMENT_CACHE_MB)',
    registers,
    collect() {
      this.set(stats().bytes);
    },
  });
  new Gauge({
    name: 'ledger_statement_cache_entries',
    help: 'Statements held by this process\'s statement cache',
    registers,
    collect() {
      this.set(stats().entries);
    },
  });
}

/**
 * The runtime metrics that a worker thread has of its own, labelled with its name: heap, event-loop lag, garbage
 * collection, active handles (prom-client's `nodejs_*` series but the version). The process's (CPU, resident memory,
 * file descriptors) are the main thread's to report: they are the same whichever thread reads them.
 */
export function threadRuntimeMetrics(thread: string): () => Promise<MetricsJson> {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, labels: { thread } });
  for (const { name } of registry.getMetricsAsArray()) {
    if (!name.startsWith('nodejs_') || name === 'nodejs_version_info') registry.removeSingleMetric(name);
  }
  return () => registry.getMetricsAsJSON();
}

/**
 * A scrape of this thread's registry and the other thread's runtime metrics, in one exposition: a family that both
 * report (`nodejs_heap_size_used_bytes`) has one HELP and TYPE and both series, the other's labelled with its thread.
 * prom-client has no worker-thread support (its AggregatorRegistry sums cluster workers, and omits some series), so
 * the families are joined here, and rendered by a registry of prom-client's. The thread's restarts and whether it
 * answered are this thread's own metrics.
 */
function withThread(registry: Registry, source: ThreadMetricsSource, log: Logger): () => Promise<string> {
  const labels = { thread: source.thread };
  new Counter({
    name: 'ledger_thread_restarts_total',
    help: "Times a thread of this process was started again after it ended on its own (the projection thread: its heap exhausted, a bug)",
    labelNames: ['thread'],
    registers: [registry],
    collect() {
      this.reset();
      this.inc(labels, source.restarts());
    },
  });
  const up = new Gauge({
    name: 'ledger_thread_up',
    help: 'Whether a thread of this process answered this scrape (1) or not (0: not running, restarting, or busy past the wait)',
    labelNames: ['thread'],
    registers: [registry],
  });
  return async () => {
    const theirs = await source.runtime().catch((error: unknown) => {
      log.warn({ err: error, thread: source.thread }, 'no runtime metrics from the thread for /metrics');
      return [];
    });
    up.set(labels, theirs.length > 0 ? 1 : 0);
    // Both lists are made afresh for this scrape (theirs a structured clone): a family is extended in place.
    const families = new Map<string, MetricObjectWithValues<MetricValue<string>>>();
    for (const family of [...(await registry.getMetricsAsJSON()), ...theirs]) {
      const seen = families.get(family.name);
      if (seen) seen.values.push(...family.values);
      else families.set(family.name, family);
    }
    const joined = new Registry();
    for (const family of families.values()) joined.registerMetric({ ...family, get: () => family } as unknown as Metric);
    return joined.metrics();
  };
}

/** The outcome of a webhook answer: the ack's status on 200, otherwise what the status code says. */
export function webhookOutcome(statusCode: number, ackStatus?: string): WebhookOutcome {
  if (statusCode === 200) return WEBHOOK_OUTCOMES.find((o) => o === ackStatus) ?? 'accepted';
  if (statusCode === 401 || statusCode === 403) return 'unauthorized';
  if (statusCode >= 500) return 'unavailable';
  return 'invalid';
}

/**
 * The gauges read from PostgreSQL at scrape time. One round trip serves them all: each gauge's collect awaits the
 * same snapshot, taken at most once per scrape. When the store cannot answer, the gauges say NaN (no data) rather
 * than a zero that would look like good news, and `ledger_read_models_up` says 0; the process metrics still answer.
 */
function registerReadModelGauges(source: ReadModelSource, registers: Registry[], log: Logger): void {
  let pending: Promise<Snapshot | null> | null = null;
  const snapshot = (): Promise<Snapshot | null> => {
    pending ??= readSnapshot(source)
      .catch((error: unknown) => {
        log.warn({ err: error }, 'could not read the read models for /metrics');
        return null;
      })
      .finally(() => setTimeout(() => (pending = null), 250).unref());
    return pending;
  };
  const gauge = (name: string, help: string, labelNames: string[], fill: (g: Gauge, s: Snapshot | null) => void) =>
    new Gauge({
      name,
      help,
      labelNames,
      registers,
      async collect() {
        this.reset();
        fill(this, await snapshot());
      },
    });
  const each = <T>(items: readonly T[] | undefined, fallback: readonly string[], set: (label: string, value: number) => void, of: (i: T) => [string, number]) => {
    if (items) for (const item of items) set(...of(item));
    else for (const label of fallback) set(label, Number.NaN);
  };

  gauge('ledger_read_models_up', 'Whether the read models could be read for this scrape (1) or not (0)', [], (g, s) => g.set(s ? 1 : 0));
  gauge('ledger_projection_lag_events', 'Events of the log a projection has not applied yet (from its committed checkpoint)', ['projection'], (g, s) =>
    each(s?.lag, source.projections, (projection, v) => g.set({ projection }, v), (l) => [l.projection, l.eventsBehind === null ? Number.NaN : Number(l.eventsBehind)]),
  );
  gauge('ledger_projection_lag_seconds', 'Age of the oldest event a projection has not applied yet; 0 when caught up', ['projection'], (g, s) =>
    each(s?.lag, source.projections, (projection, v) => g.set({ projection }, v), (l) => [l.projection, l.secondsBehind]),
  );
  gauge('ledger_breaks_open', "Open breaks in the bank's running-balance chain", [], (g, s) => g.set(s?.breaksOpen ?? Number.NaN));
  gauge('ledger_breaks_open_by_age', 'Open breaks by how long they have been open', ['age'], (g, s) =>
    BREAK_AGES.forEach((a, i) => g.set({ age: a.label }, s?.breaksByAge[i] ?? Number.NaN)),
  );
  gauge('ledger_events_parked', 'Events a projection could not apply and set aside', ['projection'], (g, s) =>
    each(s?.parked, source.projections, (projection, v) => g.set({ projection }, v), (p) => [p.projection, p.count]),
  );
  gauge('ledger_quarantine_total', 'Bodies that could not be booked, kept in the quarantine (all of them)', [], (g, s) => g.set(s?.quarantine.total ?? Number.NaN));
  gauge('ledger_quarantine_pending', 'Quarantined bodies not re-ingested yet', [], (g, s) => g.set(s?.quarantine.pending ?? Number.NaN));
  gauge('ledger_alerts_pending', 'Alerts not delivered yet (still being tried, for up to 24 h)', [], (g, s) => g.set(s?.alerts.pending ?? Number.NaN));
  gauge('ledger_alerts_failed_total', 'Alerts given up on after 24 h of failed deliveries (GET /alerts?status=failed)', [], (g, s) =>
    g.set(s?.alerts.failed ?? Number.NaN),
  );
}

interface Snapshot {
  readonly lag: readonly { projection: string; eventsBehind: bigint | null; secondsBehind: number }[];
  readonly breaksOpen: number;
  readonly breaksByAge: readonly number[];
  readonly parked: readonly { projection: string; count: number }[];
  readonly quarantine: { readonly total: number; readonly pending: number };
  readonly alerts: { readonly pending: number; readonly failed: number };
}

async function readSnapshot(source: ReadModelSource): Promise<Snapshot> {
  const now = source.now();
  const since = (seconds: number) => new Date(now.getTime() - seconds * 1000);
  const breaks = source.ledger.table('breaks');
  const [counts, parked, lag] = await Promise.all([
    sql<Record<string, number>>`
      select
        (select count(*)::int from ${breaks} where status = 'open') as breaks_open,
        (select count(*)::int from ${breaks} where status = 'open' and opened_at > ${since(BREAK_AGES[0].below)}) as age_0,
        (select count(*)::int from ${breaks} where status = 'open' and opened_at > ${since(BREAK_AGES[1].below)}) as age_1,
        (select count(*)::int from ${breaks} where status = 'open' and opened_at > ${since(BREAK_AGES[2].below)}) as age_2,
        (select count(*)::int from quarantine) as quarantine_total,
        (select count(*)::int from quarantine where reingested_at is null) as quarantine_pending,
        (select count(*)::int from alerts where status = 'pending') as alerts_pending,
        (select count(*)::int from alerts where status = 'failed') as alerts_failed`.execute(source.db),
    Promise.all(
      source.projections.map(async (projection) => ({ projection, count: await countParked(source.db, projection) })),
    ),
    source.lag(),
  ]);
  const c = counts.rows[0]!;
  const within = [c.age_0!, c.age_1!, c.age_2!, c.breaks_open!];
  return {
    lag,
    breaksOpen: c.breaks_open!,
    // Cumulative counts (opened within 15 min, 1 h, 1 d, ever) become one count per bucket.
    breaksByAge: within.map((n, i) => n - (i === 0 ? 0 : within[i - 1]!)),
    parked,
    quarantine: { total: c.quarantine_total!, pending: c.quarantine_pending! },
    alerts: { pending: c.alerts_pending!, failed: c.alerts_failed! },
  };
}

/** Cas's known error codes are labels; any other code is counted as `other` (a label must not take any value). */
const KNOWN_CODES: ReadonlySet<string> = new Set([...CAS_ERROR_CODES, ...TRANSPORT_ERROR_CODES]);
const outcomeOf = (error: unknown): string =>
  error instanceof BankHubError ? (KNOWN_CODES.has(error.errorCode) ? error.errorCode : 'other') : 'error';

/** The same client, counting each call by endpoint and outcome (`ledger_bankhub_requests_total`). */
export function countedBankHub(client: BankHubClient, metrics: Pick<Metrics, 'bankHubCall'>): BankHubClient {
  const counted =
    <A extends unknown[], R>(endpoint: string, call: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      try {
        const result = await call(...args);
        metrics.bankHubCall(endpoint, 'ok');
        return result;
      } catch (error) {
        metrics.bankHubCall(endpoint, outcomeOf(error));
        throw error;
      }
    };
  return {
    createGrantToken: counted('/grant/token', (input) => client.createGrantToken(input)),
    exchangePublicToken: counted('/grant/exchange', (token) => client.exchangePublicToken(token)),
    getIdentity: counted('/identity', (token) => client.getIdentity(token)),
    getTransactions: counted('/transactions', (token, query) => client.getTransactions(token, query)),
  };
}

import { type MessagePort, Worker, type WorkerOptions } from 'node:worker_threads';
import type { Logger } from 'pino';
import { reconnectDelayMs } from './locked-loop';
import type { MetricsJson, ThreadMetricsSource } from './metrics';
import type { ProjectionRunner, RunnerStatus } from './projection-runner';

/**
 * The web process's projections on a thread of their own (the service on a PostgreSQL server, `src/main.ts`): the same
 * runners as `ledger project`, in a worker thread with its own event loop, heap and pools, so that a batch's fold and
 * its garbage never hold the loop that answers Cas. The main thread keeps one proxy per projection (`ProjectionRunner`):
 * start and stop start and drain the thread, status and caughtUp are asked of it. What the thread does not answer
 * (not started, restarting, stopped) is answered by the process's own runners, never started, which report the
 * checkpoint that was last committed, as a stand-by does. GET /metrics asks it for its runtime metrics (heap, event
 * loop, garbage collection) and counts its restarts.
 *
 * Messages: main → thread `status`, `caughtUp`, `metrics`, `stop`; thread → main `ready` (runners started), `reply`,
 * `stopped`.
 */
type Request =
  | { readonly kind: 'status'; readonly id: number; readonly projection: string }
  | { readonly kind: 'caughtUp'; readonly id: number; readonly projection: string; readonly timeoutMs: number }
  | { readonly kind: 'metrics'; readonly id: number };
type ToThread = Request | { readonly kind: 'stop' };
type FromThread =
  | { readonly kind: 'ready' }
  | { readonly kind: 'stopped' }
  | { readonly kind: 'reply'; readonly id: number; readonly value?: unknown; readonly error?: string };

export interface ProjectionThreadOptions {
  /** The thread's module (`src/projection-thread.ts`, built to `dist/projection-thread.js`). */
  readonly entry: URL;
  /** The process's own runner of each projection, never started here: it answers while the thread does not. */
  readonly standIns: readonly ProjectionRunner[];
  readonly logger: Logger;
  /** Added to the process's environment for the thread. */
  readonly env?: Readonly<Record<string, string>>;
  /** How long a status may take the thread before the stand-in answers (its loop busy or stuck); default 5 s. */
  readonly statusWaitMs?: number;
  /** Wait before the n-th restart in a row of a thread that exited on its own (default: 100 ms · 2^(n−1), at most 5 s). */
  readonly restartDelayMs?: (failures: number) => number;
}

/** The projections' thread as the web process sees it: one proxy per stand-in runner, and what /metrics reports of it. */
export interface ProjectionThreadHandle {
  readonly runners: readonly ProjectionRunner[];
  readonly metrics: ThreadMetricsSource;
}

/** The thread's label in /metrics and in its log lines. */
export const PROJECTION_THREAD = 'projections';

export function createProjectionThread(options: ProjectionThreadOptions): ProjectionThreadHandle {
  const thread = new ProjectionThread(options);
  const statusWaitMs = options.statusWaitMs ?? 5_000;
  // Each proxy asks about its own projection only: GET /projections and the alerts ask every proxy in turn.
  const runners = options.standIns.map((standIn): ProjectionRunner => ({
    projection: standIn.projection,
    start: () => thread.start(),
    stop: () => thread.stop(),
    status: () =>
      thread.ask<RunnerStatus>((id) => ({ kind: 'status', id, projection: standIn.projection }), statusWaitMs).catch(() => standIn.status()),
    async caughtUp(timeoutMs = 30_000) {
      await thread.ask((id) => ({ kind: 'caughtUp', id, projection: standIn.projection, timeoutMs }), timeoutMs + statusWaitMs);
    },
  }));
  const metrics: ThreadMetricsSource = {
    thread: PROJECTION_THREAD,
    runtime: () => thread.ask<MetricsJson>((id) => ({ kind: 'metrics', id }), statusWaitMs),
    restarts: () => thread.restarts,
  };
  return { runners, metrics };
}

/**
 * A worker on the module. The built service's is JavaScript; from the sources (`tsx src/main.ts`, the tests' service
 * processes) it is TypeScript, which a worker does not inherit the loader for: the thread registers tsx's first.
 */
function threadOf(entry: URL, options: WorkerOptions): Worker {
  if (!entry.pathname.endsWith('.ts')) return new Worker(entry, options);
  const tsx = JSON.stringify(import.meta.resolve('tsx/esm/api'));
  const code = `import(${tsx}).then((tsx) => tsx.register()).then(() => import(${JSON.stringify(entry.href)}))`;
  return new Worker(code, { ...options, eval: true });
}

class ProjectionThread {
  private worker: Worker | null = null;
  /** The running thread said `ready`: its runners are started and it listens for `stop`. */
  private ready = false;
  private stopping = false;
  private stopped: Promise<void> | null = null;
  private failures = 0;
  /** Times it was started again after it ended on its own, since the process started. */
  restarts = 0;
  private restart: NodeJS.Timeout | null = null;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();

  constructor(private readonly options: ProjectionThreadOptions) {}

  /** Starts the thread once (every proxy's start lands here). */
  start(): void {
    if (this.worker || this.stopping || this.restart) return;
    const { entry, env, logger } = this.options;
    const worker = threadOf(entry, { env: { ...process.env, ...env } });
    this.worker = worker;
    this.ready = false;
    worker.on('message', (message: FromThread) => this.received(message));
    worker.on('error', (error) => logger.error({ err: error }, 'the projection thread failed'));
    worker.on('exit', (code) => this.exited(worker, code));
  }

  /**
   * Drains the thread: the batch in flight commits or rolls back whole, then its pools close. A thread not yet ready
   * (still loading its modules) has no runner to drain and no ear for `stop`: it is ended.
   */
  stop(): Promise<void> {
    this.stopping = true;
    if (this.restart) clearTimeout(this.restart);
    this.restart = null;
    const worker = this.worker;
    if (!worker) return Promise.resolve();
    this.stopped ??= new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    if (this.ready) worker.postMessage({ kind: 'stop' } satisfies ToThread);
    else void worker.terminate();
    return this.stopped;
  }

  /** Asks the running thread; rejects at once when none is running, and when it exits or is silent past `waitMs`. */
  ask<T>(request: (id: number) => Request, waitMs: number): Promise<T> {
    const worker = this.worker;
    if (!worker) return Promise.reject(new Error('the projection thread is not running'));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`the projection thread did not answer within ${waitMs} ms`));
      }, waitMs);
      const settled = () => clearTimeout(timer);
      this.pending.set(id, { resolve: (value) => (settled(), resolve(value as T)), reject: (error) => (settled(), reject(error)) });
      worker.postMessage(request(id) satisfies ToThread);
    });
  }

  private received(message: FromThread): void {
    if (message.kind === 'ready') {
      this.ready = true;
      this.failures = 0;
      if (this.stopping) this.worker?.postMessage({ kind: 'stop' } satisfies ToThread);
    }
    // Drained and closed: whatever still holds its loop open (a timer) is not worth waiting for.
    if (message.kind === 'stopped') setTimeout(() => void this.worker?.terminate(), 1_000).unref();
    if (message.kind !== 'reply') return;
    const waiting = this.pending.get(message.id);
    this.pending.delete(message.id);
    if (message.error === undefined) waiting?.resolve(message.value);
    else waiting?.reject(new Error(message.error));
  }

  private exited(worker: Worker, code: number): void {
    if (this.worker !== worker) return;
    this.worker = null;
    for (const { reject } of this.pending.values()) reject(new Error(`the projection thread exited (code ${code})`));
    this.pending.clear();
    if (this.stopping) return;
    // A thread that dies on its own (a bug, its heap exhausted) is started again: its runners resume from the
    // committed checkpoint. The store being away never ends it: its runners wait for the store.
    this.failures += 1;
    this.restarts += 1;
    const retryInMs = (this.options.restartDelayMs ?? reconnectDelayMs)(this.failures);
    this.options.logger.error({ code, retryInMs }, 'the projection thread exited; starting it again');
    this.restart = setTimeout(() => {
      this.restart = null;
      this.start();
    }, retryInMs);
  }
}

/** What the thread serves: its started runners, its runtime metrics (`threadRuntimeMetrics`), and the close of its pools. */
export interface ServedThread {
  readonly runners: readonly ProjectionRunner[];
  readonly metrics: () => Promise<MetricsJson>;
  readonly close: () => Promise<void>;
}

/**
 * The thread's side: answers the main thread's requests with its runners, and on `stop` drains them, then `close`
 * (the thread's pools). Call once the runners are started; it says `ready`.
 */
export function serveProjectionThread(port: MessagePort, { runners, metrics, close }: ServedThread): void {
  const reply = (id: number, work: () => Promise<unknown>) =>
    work().then(
      (value) => port.postMessage({ kind: 'reply', id, value } satisfies FromThread),
      (error: unknown) => port.postMessage({ kind: 'reply', id, error: error instanceof Error ? error.message : String(error) } satisfies FromThread),
    );
  const runnerOf = (projection: string) => {
    const runner = runners.find((r) => r.projection === projection);
    if (!runner) throw new Error(`the projection thread runs no ${projection} projection`);
    return runner;
  };
  port.on('message', (message: ToThread) => {
    if (message.kind === 'status') void reply(message.id, async () => runnerOf(message.projection).status());
    else if (message.kind === 'caughtUp') void reply(message.id, async () => runnerOf(message.projection).caughtUp(message.timeoutMs));
    else if (message.kind === 'metrics') void reply(message.id, metrics);
    else if (message.kind === 'stop') {
      void Promise.all(runners.map((r) => r.stop()))
        .then(close)
        .finally(() => {
          port.postMessage({ kind: 'stopped' } satisfies FromThread);
          port.close();
        });
    }
  });
  port.postMessage({ kind: 'ready' } satisfies FromThread);
}

import { parentPort } from 'node:worker_threads';
import { compose } from './composition-root';
import { loadConfig } from './config';
import { createLogger, logFormatFor } from './infrastructure/logger';
import { threadRuntimeMetrics } from './infrastructure/metrics';
import { PROJECTION_THREAD, serveProjectionThread } from './infrastructure/projection-thread';

/**
 * The service's projection runners on a thread of their own (started by `src/main.ts` on a PostgreSQL server; see
 * `infrastructure/projection-thread.ts`): the same configuration, its own pools. The graph is composed, not opened:
 * migrations and the read-model schemas are the main thread's start-up, which has run before this thread starts, and
 * the runners wait for an unreachable store and create a missing schema themselves.
 */
if (!parentPort) throw new Error('projection-thread runs as a worker thread of the service (src/main.ts)');
const port = parentPort;
const config = loadConfig();
// Its lines say which thread wrote them; LOG_FORMAT is the main thread's (a worker's standard output is no terminal).
const logger = createLogger(config.logLevel, undefined, logFormatFor(config.logFormat)).child({ thread: PROJECTION_THREAD });
const root = await compose(config, { logger });
const runners = root.resolve('runners');
runners.forEach((runner) => runner.start());
logger.info({ projections: root.resolve('projections').map((p) => p.name) }, 'projection runners started on their own thread');
serveProjectionThread(port, { runners, metrics: threadRuntimeMetrics(PROJECTION_THREAD), close: () => root.close() });

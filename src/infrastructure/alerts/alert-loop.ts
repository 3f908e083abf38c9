import type { Logger } from 'pino';
import { periodicLockedLoop } from '../locked-loop';
import type { Database } from '../postgres/database';
import type { AlertDetector } from './alert-detector';
import type { AlertDispatcher } from './alert-dispatcher';

/**
 * Every `intervalMs`: detect (read models → outbox), then deliver what is due (outbox → ALERT_WEBHOOK_URL). One
 * alerter at a time across all processes (a session advisory lock, as the healer), so an alert is never sent by
 * two processes at once; a stand-by takes over when the lock frees. It runs beside ingest and never in its way:
 * its own few statements, no lock that a webhook waits for.
 */
export interface AlertLoop {
  start(): void;
  stop(): Promise<void>;
  /** One pass, now (tests). */
  runOnce(): Promise<void>;
}

export interface AlertLoopOptions {
  readonly database: Database;
  readonly detector: AlertDetector;
  readonly dispatcher: AlertDispatcher;
  readonly intervalMs: number;
  readonly logger: Logger;
  readonly onPass?: () => void;
}

export function createAlertLoop(options: AlertLoopOptions): AlertLoop {
  const log = options.logger.child({ component: 'alerts' });
  const pass = async (): Promise<void> => {
    try {
      const { raised } = await options.detector.detect();
      for (const alert of raised) log.info({ alertId: alert.alertId, kind: alert.kind }, `alert: ${alert.text}`);
    } catch (error) {
      log.error({ err: error }, 'alert detection failed; trying again next interval');
    }
    try {
      await options.dispatcher.deliverDue(loop.stopping);
    } catch (error) {
      log.error({ err: error }, 'alert delivery failed; trying again next interval');
    }
    options.onPass?.();
  };
  const loop = periodicLockedLoop({ database: options.database, name: 'alerts', log, intervalMs: options.intervalMs, pass });
  return { start: loop.start, stop: loop.stop, runOnce: pass };
}

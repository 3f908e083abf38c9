import type { Logger } from 'pino';
import { pause } from './locked-loop';

export interface ShutdownOptions {
  readonly logger: Logger;
  /** Bounds the whole shutdown: past it the process exits 1 with whatever was unfinished left undone. */
  readonly timeoutMs: number;
  /**
   * After SIGTERM (an orchestrator), how long to keep serving, not ready, so that a load balancer stops sending
   * first. SIGINT (Ctrl-C) and a second signal skip it.
   */
  readonly delayMs?: number;
  /** Called at once on the first signal (e.g. /ready starts answering 503). */
  readonly onDrainStart?: () => void;
  /** Stops everything in order; resolves when nothing is left to finish. */
  readonly close: () => Promise<void>;
}

/**
 * SIGTERM or SIGINT: drain, then exit 0 — or exit 1 if closing failed or did not end within `timeoutMs`. Nothing
 * acknowledged is at risk either way (every answer waited for its commit); what was not acknowledged is retried by
 * its sender.
 */
export function exitGracefullyOnSignals(options: ShutdownOptions): void {
  const { logger } = options;
  let hurry: () => void = () => {};
  const hurried = new Promise<void>((resolve) => (hurry = resolve));
  let draining = false;
  const drain = async (signal: string) => {
    if (draining || signal === 'SIGINT') hurry();
    if (draining) {
      logger.info({ signal }, 'second signal: no more delay');
      return;
    }
    draining = true;
    options.onDrainStart?.();
    logger.info({ signal, delayMs: signal === 'SIGINT' ? 0 : (options.delayMs ?? 0), timeoutMs: options.timeoutMs }, 'draining: not ready, finishing the work in flight');
    setTimeout(() => {
      logger.error({ timeoutMs: options.timeoutMs }, 'drain timed out: exiting with work unfinished');
      process.exit(1);
    }, options.timeoutMs);
    try {
      if (options.delayMs) await pause(options.delayMs, hurried);
      await options.close();
      logger.info('drained; exiting');
      process.exit(0);
    } catch (error) {
      logger.error({ err: error }, 'unclean shutdown');
      process.exit(1);
    }
  };
  process.on('SIGTERM', () => void drain('SIGTERM'));
  process.on('SIGINT', () => void drain('SIGINT'));
}

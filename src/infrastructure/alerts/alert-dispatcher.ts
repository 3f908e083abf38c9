import type { AlertRecord } from '../../application/ports/alert-outbox';
import type { AlertOutboxRepository } from '../postgres/alert-outbox-repository';

/**
 * Delivers the outbox to ALERT_WEBHOOK_URL: one JSON POST per alert, at least once. A delivery that fails (no answer
 * within the timeout, a network error, any status but 2xx) is tried again after 10 s, doubling up to an hour, with
 * jitter, for 24 h from the alert's creation; then it is `failed`, which GET /alerts?status=failed and
 * `ledger_alerts_failed_total` show. The alert's id goes in `Idempotency-Key`, so a receiver can drop a repeat.
 */
export interface DispatcherOptions {
  readonly outbox: AlertOutboxRepository;
  readonly url: string;
  /** full: the whole alert; text: `{text}` only, for chat webhooks that refuse unknown fields. */
  readonly format: 'full' | 'text';
  readonly now: () => Date;
  readonly fetch?: typeof fetch;
  readonly timeoutMs?: number;
  /** How long an alert is tried before it is given up; default 24 h. */
  readonly retryForMs?: number;
  readonly random?: () => number;
  readonly onDelivery?: (outcome: 'delivered' | 'retry' | 'failed', record: AlertRecord, error: string | null) => void;
}

export const RETRY_FOR_MS = 24 * 3_600_000;
const FIRST_RETRY_MS = 10_000;
const MAX_RETRY_MS = 3_600_000;
/** Alerts delivered per pass, and at once: a slow receiver bounds a pass, never the process. */
const PER_PASS = 100;
const IN_FLIGHT = 4;

/** The wait before attempt n+1 after n failed attempts: 10 s · 2^(n−1), at most an hour, plus up to 20 %. */
export const retryDelayMs = (failedAttempts: number, random: () => number = Math.random): number =>
  Math.round(Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** Math.max(0, failedAttempts - 1)) * (1 + random() * 0.2));

export function createAlertDispatcher(options: DispatcherOptions) {
  const doFetch = options.fetch ?? fetch;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const retryForMs = options.retryForMs ?? RETRY_FOR_MS;
  const random = options.random ?? Math.random;

  async function post(record: AlertRecord): Promise<string | null> {
    const body = options.format === 'text' ? { text: record.alert.text } : record.alert;
    try {
      const response = await doFetch(options.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': record.alertId, 'user-agent': 'balance-ledger-alerts' },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(timeoutMs),
        redirect: 'manual',
      });
      // The answer's body is not needed; reading it lets the connection be reused.
      const text = await response.text().catch(() => '');
      return response.ok ? null : `HTTP ${response.status}${text ? `: ${text.slice(0, 200)}` : ''}`;
    } catch (error) {
      const timedOut = error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError');
      // The URL may hold a secret (chat webhooks do): the error names the failure, never the address.
      return timedOut ? `no answer within ${timeoutMs} ms` : `request failed: ${causeOf(error)}`;
    }
  }

  async function deliver(record: AlertRecord): Promise<void> {
    const error = await post(record);
    const now = options.now();
    if (error === null) {
      await options.outbox.delivered(record.alertId, now);
      options.onDelivery?.('delivered', record, null);
      return;
    }
    const next = new Date(now.getTime() + retryDelayMs(record.attempts + 1, random));
    const giveUp = next.getTime() - record.createdAt.getTime() > retryForMs;
    await options.outbox.attemptFailed(record.alertId, now, error, giveUp ? null : next);
    options.onDelivery?.(giveUp ? 'failed' : 'retry', record, error);
  }

  return {
    /** Delivers what is due now; returns how many were tried. */
    async deliverDue(shouldStop: () => boolean = () => false): Promise<number> {
      const due = await options.outbox.due(options.now(), PER_PASS);
      let next = 0;
      const lane = async () => {
        while (next < due.length && !shouldStop()) await deliver(due[next++]!);
      };
      await Promise.all(Array.from({ length: IN_FLIGHT }, lane));
      return due.length;
    },
  };
}

export type AlertDispatcher = ReturnType<typeof createAlertDispatcher>;

function causeOf(error: unknown): string {
  if (!(error instanceof Error)) return 'unknown error';
  const cause = error.cause as { code?: unknown; message?: unknown } | undefined;
  return typeof cause?.code === 'string' ? cause.code : error.message;
}

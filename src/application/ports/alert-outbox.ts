import type { Alert, AlertKind } from '../alerts';

/**
 * The alert outbox, a write-side table: an alert is recorded once under its alertId (derived from what it is about)
 * and delivered from there, at least once, until it is delivered or 24 h have passed. Because the record is durable
 * and keyed, a restart, a rebuild of the read models or a replay of the log finds the alert already there and never
 * sends it again.
 */
export type AlertStatus = 'pending' | 'delivered' | 'failed';

export interface AlertRecord {
  readonly alertId: string;
  readonly kind: AlertKind;
  readonly status: AlertStatus;
  readonly alert: Alert;
  readonly createdAt: Date;
  readonly attempts: number;
  readonly nextAttemptAt: Date | null;
  readonly lastAttemptAt: Date | null;
  readonly lastError: string | null;
  readonly deliveredAt: Date | null;
}

export interface AlertOutbox {
  /** Records the alerts whose ids it does not hold yet; returns those it recorded now. */
  raise(alerts: readonly Alert[], now: Date): Promise<Alert[]>;
}

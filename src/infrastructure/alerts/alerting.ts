import type { Logger } from 'pino';
import type { Config } from '../../config';
import { GRANTS_SCHEMA } from '../../projections/grants.projection';
import type { Metrics } from '../metrics';
import { type AlertOutboxRepository, createAlertOutboxRepository } from '../postgres/alert-outbox-repository';
import type { ProjectionRunner } from '../projection-runner';
import type { Database } from '../postgres/database';
import { createAlertDetector } from './alert-detector';
import { createAlertDispatcher } from './alert-dispatcher';
import { type AlertLoop, createAlertLoop } from './alert-loop';

export interface Alerting {
  /** Always there: GET /alerts lists it, whether or not alerting is on now. */
  readonly outbox: AlertOutboxRepository;
  /** Null when ALERT_WEBHOOK_URL is unset: nothing is detected, nothing sent. */
  readonly loop: AlertLoop | null;
}

/** The alert outbox, detector and dispatcher, wired from the configuration (main.ts and the tests alike). */
export function createAlerting(input: {
  readonly config: Config;
  readonly stores: { readonly database: Database };
  readonly runners: readonly ProjectionRunner[];
  readonly metrics?: Metrics;
  readonly logger: Logger;
  readonly now: () => Date;
}): Alerting {
  const { config, stores, now } = input;
  const outbox = createAlertOutboxRepository(stores.database.db);
  const { webhookUrl } = config.alerts;
  if (!webhookUrl) return { outbox, loop: null };
  const log = input.logger.child({ component: 'alerts' });
  const detector = createAlertDetector({
    db: stores.database.db,
    outbox,
    ledgerSchema: 'ledger',
    grantsSchema: GRANTS_SCHEMA,
    // Each runner reports the committed checkpoint when it is not the one projecting (another process is).
    projections: () => Promise.all(input.runners.map((r) => r.status())),
    breakAfterSeconds: config.alerts.breakAfterSeconds,
    lagSeconds: config.alerts.lagSeconds,
    now,
  });
  const dispatcher = createAlertDispatcher({
    outbox,
    url: webhookUrl,
    format: config.alerts.format,
    now,
    onDelivery: (outcome, record, error) => {
      input.metrics?.alertDelivery(outcome);
      if (outcome === 'retry') log.warn({ alertId: record.alertId, attempts: record.attempts + 1, error }, 'alert not delivered; trying again later');
      if (outcome === 'failed') log.error({ alertId: record.alertId, attempts: record.attempts + 1, error }, 'alert given up after 24 h of failed deliveries');
    },
  });
  const loop = createAlertLoop({
    database: stores.database,
    detector,
    dispatcher,
    intervalMs: config.alerts.intervalSeconds * 1000,
    logger: input.logger,
    ...(input.metrics ? { onPass: input.metrics.alertPass } : {}),
  });
  return { outbox, loop };
}

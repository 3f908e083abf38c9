import type { Logger } from 'pino';
import type { BackfillDeps } from '../../application/backfill-grant';
import { createGrantCallQueue } from '../../application/grant-call-queue';
import type { HealDeps } from '../../application/heal-gaps';
import type { LinkingDeps } from '../../application/link-grant';
import type { Config } from '../../config';
import { GRANTS_SCHEMA } from '../../projections/grants.projection';
import { findGrantOfAccount, listGrants } from '../../projections/grants.queries';
import { readModelIn } from '../../projections/read-model';
import { breakStatuses, findBreaksToHeal } from '../../projections/heal.queries';
import { createLedgerProjection } from '../../projections/ledger.projection';
import { waitForCheckpoint } from '../heal-loop';
import type { LinkRouteOptions } from '../http/links.routes';
import { createGrantSecretsRepository } from '../postgres/grant-secrets-repository';
import type { Stores } from '../runtime';
import { createTokenCipher } from '../secrets/token-cipher';
import { type BankHubClientOptions, createBankHubClient } from './bankhub-client';

/** Everything that talks to Cas BankHub, wired from the configuration; main.ts and the tests call this same factory. */
export interface BankHubServices {
  readonly links: LinkRouteOptions;
  /** null when Cas BankHub is not configured: no healing. */
  readonly heal: HealDeps | null;
}

export interface BankHubServicesOptions {
  readonly config: Config;
  readonly stores: Stores;
  readonly logger: Logger;
  readonly now: () => Date;
  /** The ledger read model's schema (healing reads its breaks). */
  readonly ledgerSchema?: string;
}

export function createBankHubServices(options: BankHubServicesOptions): BankHubServices {
  const { config, stores, now } = options;
  const db = stores.database.db;
  const ledgerSchema = options.ledgerSchema ?? 'ledger';
  const log = options.logger.child({ component: 'bankhub' });
  const grants = () => listGrants(readModelIn(db, GRANTS_SCHEMA));
  const { credentials } = config.bankHub;
  if (!credentials) {
    return { links: { linking: null, backfill: null, missing: config.bankHub.missing, listGrants: grants }, heal: null };
  }
  if (!config.secretsKey) throw new Error('SECRETS_KEY is required when Cas BankHub is configured');

  const clientOptions: BankHubClientOptions = {
    baseUrl: config.bankHub.baseUrl,
    clientId: credentials.clientId,
    secretKey: credentials.secretKey,
    apiVersion: config.bankHub.apiVersion,
    scopes: config.bankHub.scopes,
    rateLimitDelayMs: config.bankHub.rateLimitMs,
    // The error carries no token (the client removes credentials); log its code, not the message.
    onRetry: ({ operation, attempt, delayMs, error }) =>
      log.warn({ operation, attempt, delayMs, errorCode: error.errorCode, casRequestId: error.requestId }, 'retrying a Cas call'),
  };
  const bankHub = createBankHubClient(clientOptions);
  // The public token is single-use: a retry after a lost answer could only fail, so /grant/exchange is tried once.
  const exchange = createBankHubClient({ ...clientOptions, maxRetries: 0 });
  const secrets = createGrantSecretsRepository(db, createTokenCipher(config.secretsKey));

  const linking: LinkingDeps = {
    bankHub,
    exchange,
    secrets,
    eventStore: stores.eventStore,
    linkUrl: config.bankHub.linkUrl,
    redirectUri: config.bankHub.redirectUri,
    now,
  };
  const backfill: BackfillDeps = {
    bankHub,
    secrets,
    queue: createGrantCallQueue({ minIntervalMs: config.bankHub.rateLimitMs }),
    eventStore: stores.eventStore,
    quarantine: stores.quarantine,
    now,
  };
  const ledger = createLedgerProjection();
  const heal: HealDeps = {
    backfill,
    findBreaksToHeal: (query) => findBreaksToHeal(readModelIn(db, ledgerSchema), query),
    findGrantOfAccount: (fiId, accountNumber) => findGrantOfAccount(readModelIn(db, GRANTS_SCHEMA), fiId, accountNumber),
    waitForProjection: () => waitForCheckpoint(db, stores.eventStore, ledger, ledgerSchema),
    breakStatuses: (ids) => breakStatuses(readModelIn(db, ledgerSchema), ids),
    healAfterMs: config.healAfterSeconds * 1000,
  };
  return { links: { linking, backfill, missing: [], listGrants: grants }, heal };
}

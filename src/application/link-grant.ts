import { grantStreamId, type LedgerEvent, type LinkedAccount } from '../domain/events';
import { encodeEvent } from '../domain/event-codec';
import { err, ok, type Result } from '../domain/result';
import { eventIdFor } from './event-ids';
import { BankHubError, type BankHubClient, type Identity } from './ports/bankhub';
import type { EventStore } from './ports/event-store';
import type { GrantSecrets } from './ports/grant-secrets';

/**
 * Linking a customer's bank accounts, Cas's three steps: a grant token for Cas Link, then (after the customer logged
 * in to the bank) the public token exchanged for a grant and its access token, then the grant's accounts.
 */
export interface LinkingDeps {
  readonly bankHub: Pick<BankHubClient, 'createGrantToken' | 'getIdentity'>;
  /** Must not retry: the public token is single-use, so a retry after a lost answer only fails with INVALID_PARAM. */
  readonly exchange: Pick<BankHubClient, 'exchangePublicToken'>;
  readonly secrets: GrantSecrets;
  readonly eventStore: EventStore;
  /** Cas Link's address, e.g. https://dev.link.bankhub.dev for the sandbox. */
  readonly linkUrl: string;
  /** The registered redirect URI used when a request names none. */
  readonly redirectUri: string | undefined;
  readonly now: () => Date;
}

export interface StartedLink {
  readonly grantToken: string;
  readonly expiresAt: Date;
  readonly linkUrl: string;
}

export async function startLink(
  deps: LinkingDeps,
  input: { readonly redirectUri?: string | undefined; readonly language?: string | undefined },
): Promise<Result<StartedLink, 'redirect_uri_required'>> {
  const redirectUri = input.redirectUri ?? deps.redirectUri;
  if (redirectUri === undefined) return err('redirect_uri_required');
  const token = await deps.bankHub.createGrantToken({
    redirectUri,
    ...(input.language === undefined ? {} : { language: input.language }),
  });
  return ok({ grantToken: token.grantToken, expiresAt: token.expiresAt, linkUrl: casLinkUrl(deps.linkUrl, token.grantToken, redirectUri) });
}

/** `https://dev.link.bankhub.dev?grantToken=…&redirectUri=…`, as Cas documents it (no slash added to the base). */
export function casLinkUrl(base: string, grantToken: string, redirectUri: string): string {
  const query = new URLSearchParams({ grantToken, redirectUri }).toString();
  return `${base}${base.includes('?') ? '&' : '?'}${query}`;
}

export interface LinkedGrant {
  readonly grantId: string;
  readonly fiId: string | null;
  readonly accounts: readonly LinkedAccount[];
  /** /identity failed after the exchange: the grant is kept (its token is stored, GrantLinked has no accounts). */
  readonly identityError: BankHubError | null;
}

/**
 * Exchanges the public token and records the grant. The access token is stored encrypted before anything else can
 * fail, because Cas will not hand it out twice; it never enters the event log, a log line or an answer.
 */
export async function completeLink(deps: LinkingDeps, publicToken: string): Promise<LinkedGrant> {
  const exchanged = await deps.exchange.exchangePublicToken(publicToken);
  const linkedAt = deps.now();
  await deps.secrets.save(exchanged.grantId, exchanged.accessToken, linkedAt);

  let identity: Identity | null = null;
  let identityError: BankHubError | null = null;
  try {
    identity = await deps.bankHub.getIdentity(exchanged.accessToken);
  } catch (error) {
    if (!(error instanceof BankHubError)) throw error;
    identityError = error;
  }
  const accounts: LinkedAccount[] = (identity?.accounts ?? []).map((a) => ({
    accountNumber: a.accountNumber,
    accountName: a.accountName,
    currency: a.currency,
    fiId: a.fiId ?? null,
  }));
  const banks = [...new Set(accounts.map((a) => a.fiId).filter((id): id is string => id !== null))];
  const fiId = banks.length === 1 ? (banks[0] ?? null) : null;

  const event: LedgerEvent = {
    type: 'GrantLinked',
    data: { grantId: exchanged.grantId, fiId, accounts, linkedAt: linkedAt.toISOString(), requestId: exchanged.requestId },
  };
  await deps.eventStore.appendToStream(
    grantStreamId(exchanged.grantId),
    [
      {
        eventId: eventIdFor(`grant-linked:${exchanged.grantId}:${linkedAt.toISOString()}`),
        ...encodeEvent(event),
        metadata: {
          receivedAt: linkedAt.toISOString(),
          source: 'link',
          casRequestId: exchanged.requestId,
          identityRequestId: identity?.requestId ?? null,
          identityErrorCode: identityError?.errorCode ?? null,
        },
      },
    ],
    'any',
  );
  return { grantId: exchanged.grantId, fiId, accounts, identityError };
}

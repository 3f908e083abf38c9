import type {
  BankHubClient,
  CreateGrantTokenInput,
  ExchangedGrant,
  GrantToken,
  Identity,
  TransactionsPage,
  TransactionsQuery,
} from '../../application/ports/bankhub';
import { exchangeSchema, grantTokenSchema, identitySchema, transactionsSchema } from './cas-responses';
import { type BankHubClientOptions, callCas, casTransport, readAnswer } from './cas-transport';

export type { BankHubClientOptions } from './cas-transport';

/** Cas documents a grant token as valid for 30 minutes; used only when the response carries no expiry. */
const GRANT_TOKEN_VALIDITY_MS = 30 * 60_000;

/** The BankHubClient port over Cas's four REST calls (cas-transport.ts: headers, errors, retries). */
export function createBankHubClient(options: BankHubClientOptions): BankHubClient {
  const t = casTransport(options);
  return {
    async createGrantToken(input: CreateGrantTokenInput): Promise<GrantToken> {
      const scopes = input.scopes ?? options.scopes;
      const answer = await callCas(t, {
        method: 'POST',
        path: '/grant/token',
        body: {
          scopes: typeof scopes === 'string' ? scopes : scopes.join(','),
          redirectUri: input.redirectUri,
          ...(input.language === undefined ? {} : { language: input.language }),
          ...(input.fiServiceId === undefined ? {} : { fiServiceId: input.fiServiceId }),
        },
      });
      const body = readAnswer(grantTokenSchema, answer, 'POST /grant/token');
      const expiry = body.expiration ?? body.expiredAt ?? null;
      return {
        grantToken: body.grantToken,
        expiresAt: expiry ?? new Date(t.now().getTime() + GRANT_TOKEN_VALIDITY_MS),
      };
    },

    async exchangePublicToken(publicToken: string): Promise<ExchangedGrant> {
      const answer = await callCas(t, { method: 'POST', path: '/grant/exchange', body: { publicToken } });
      const body = readAnswer(exchangeSchema, answer, 'POST /grant/exchange');
      return { accessToken: body.accessToken, grantId: body.grantId, requestId: body.requestId ?? null };
    },

    async getIdentity(accessToken: string): Promise<Identity> {
      const answer = await callCas(t, { method: 'GET', path: '/identity', accessToken });
      const body = readAnswer(identitySchema, answer, 'GET /identity');
      return { accounts: body.accounts, requestId: body.requestId ?? null };
    },

    async getTransactions(accessToken: string, query: TransactionsQuery): Promise<TransactionsPage> {
      const params = new URLSearchParams({ fromDate: query.fromDate, toDate: query.toDate });
      if (query.accounts !== undefined) {
        const cursors = query.accounts.map((a) => ({ accountNumber: a.accountNumber, fromReference: a.fromReference }));
        params.set('accounts', JSON.stringify(cursors));
      }
      const answer = await callCas(t, { method: 'GET', path: '/transactions', query: params, accessToken });
      const body = readAnswer(transactionsSchema, answer, 'GET /transactions');
      return { transactions: body.transactions, rawBody: answer.text, requestId: body.requestId ?? null };
    },
  };
}

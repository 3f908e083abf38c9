import { buildCasApi } from './rest-api';
import { createSimState, mintPublicToken, pendingTransactions } from './state';
import type { CasSimulator, CasSimulatorOptions } from './types';
import { createWebhookDeliverer } from './webhook-deliverer';

export { SIM_API_VERSION } from './rest-api';
export { fibonacciScheduleMs } from './webhook-deliverer';
export type * from './types';

/**
 * A local stand-in for Cas BankHub, in three rooms over one state (state.ts): the REST API (rest-api.ts) and the
 * webhook deliverer that retries, duplicates, reorders and drops the way Cas may (webhook-deliverer.ts).
 */
export async function startCasSimulator(options: CasSimulatorOptions): Promise<CasSimulator> {
  const state = createSimState(options);
  const app = buildCasApi(state);
  const deliverer = createWebhookDeliverer(state);
  await app.listen({ port: options.port ?? 0, host: options.host ?? '127.0.0.1' });
  const address = app.server.address();
  if (address === null || typeof address === 'string') throw new Error('the simulator has no TCP address');
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}`;

  return {
    url,
    bank: state.bank,
    grants: state.grants,
    requestLog: state.requestLog,
    close: () => app.close(),
    setFailure: (next) => {
      state.failure = next === null ? null : { ...next, remaining: next.times ?? Number.POSITIVE_INFINITY };
    },
    mintPublicToken: (grantToken, choice) => mintPublicToken(state, grantToken, choice),
    linkUrl: (grantToken, redirectUri) => `${url}/link?${new URLSearchParams({ grantToken, redirectUri }).toString()}`,
    setGrantStatus: (grantId, status) => {
      const grant = state.grants.get(grantId);
      if (!grant) throw new Error(`no grant ${grantId}`);
      grant.status = status;
    },
    ...deliverer,
    pendingTransactions: (accounts) => pendingTransactions(state, accounts),
  };
}

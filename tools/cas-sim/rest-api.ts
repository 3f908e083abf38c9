import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import { toCasJson } from './bank';
import {
  accountsOf,
  CasFailure,
  exchangePublicToken,
  grantFor,
  identityOf,
  invalidParam,
  issueGrantToken,
  listTransactions,
  mintPublicToken,
  type SimState,
  uuid,
} from './state';

export const SIM_API_VERSION = '2023-01-01';

/**
 * Cas's REST API over the simulator's state: the four calls in their documented shapes and error codes, Cas Link
 * reduced to one redirect, the credentials and API version checked on every call, and the failures a test injects.
 * Where Cas's public material is silent (HTTP statuses, the code for bad credentials) the choice is marked.
 */
export function buildCasApi(state: SimState): FastifyInstance {
  const app = Fastify({ logger: false, forceCloseConnections: true });
  app.addHook('onRequest', async (request) => {
    if (request.url.startsWith('/link')) return;
    checkCredentials(state, request.headers);
    await injectedFailure(state, request.url.split('?')[0] ?? '');
  });
  app.addHook('onSend', async (request, reply, payload) => {
    const errorCode = (reply.getHeader('x-sim-error-code') as string | undefined) ?? null;
    reply.removeHeader('x-sim-error-code');
    state.requestLog.push({ method: request.method, path: request.url.split('?')[0] ?? '', status: reply.statusCode, errorCode, at: state.now() });
    return payload;
  });
  app.setErrorHandler(async (error, _request, reply) => sendCasError(reply, error, uuid(state.ids)));
  app.setNotFoundHandler(async (request) => {
    throw new CasFailure(404, 'NOT_FOUND', 'API_ERROR', `${request.method} ${request.url.split('?')[0]} không tồn tại`);
  });
  routes(app, state);
  return app;
}

function routes(app: FastifyInstance, state: SimState): void {
  const shapes = state.options.shapes ?? {};
  const json = (reply: FastifyReply, body: unknown): FastifyReply => reply.type('application/json').send(toCasJson(body));
  const envelope = (payload: Record<string, unknown>, requestId: string): Record<string, unknown> =>
    shapes.dataEnvelope ? { requestId, data: payload } : { requestId, ...payload };
  const formatExpiry = (ms: number): unknown => {
    switch (shapes.expirationFormat ?? 'iso') {
      case 'iso':
        return new Date(ms).toISOString();
      case 'epoch-seconds':
        return BigInt(Math.floor(ms / 1000));
      case 'epoch-ms':
        return BigInt(ms);
    }
  };

  app.post('/grant/token', async (request, reply) => {
    const { grantToken, expiresAt } = issueGrantToken(state, (request.body ?? {}) as Record<string, unknown>);
    return json(reply, { grantToken, [shapes.expirationField ?? 'expiredAt']: formatExpiry(expiresAt) });
  });

  app.get('/link', async (request, reply) => {
    const query = request.query as Record<string, string | undefined>;
    const grantToken = query.grantToken ?? '';
    const entry = state.grantTokens.get(grantToken);
    if (entry && query.redirectUri !== undefined && query.redirectUri !== entry.redirectUri) {
      throw invalidParam('redirectUri khác với lúc tạo grantToken');
    }
    const choice = {
      ...(query.fiId === undefined ? {} : { fiId: query.fiId }),
      ...(query.fiServiceId === undefined ? {} : { fiServiceId: query.fiServiceId }),
    };
    const publicToken = mintPublicToken(state, grantToken, choice);
    return reply.redirect(`${entry?.redirectUri ?? ''}?publicToken=${encodeURIComponent(publicToken)}`, 302);
  });

  app.post('/grant/exchange', async (request, reply) => {
    const grant = exchangePublicToken(state, ((request.body ?? {}) as Record<string, unknown>).publicToken);
    return json(reply, { accessToken: grant.accessToken, grantId: grant.grantId, requestId: uuid(state.ids) });
  });

  app.get('/identity', async (request, reply) => {
    const grant = grantFor(state, request.headers.authorization);
    return json(reply, envelope({ accounts: accountsOf(state, grant).map(identityOf) }, uuid(state.ids)));
  });

  app.get('/transactions', async (request, reply) => {
    const grant = grantFor(state, request.headers.authorization);
    const { transactions, accounts } = listTransactions(state, grant, request.query as Record<string, string | undefined>);
    return json(reply, envelope({ transactions, accounts: accounts.map(identityOf) }, uuid(state.ids)));
  });
}

/** Status codes for these are not published; 400 and 401 are the simulator's choice. */
function checkCredentials(state: SimState, headers: Record<string, string | string[] | undefined>): void {
  const { apiVersion = SIM_API_VERSION, clientId, secretKey } = state.options;
  if (headers['x-bankhub-api-version'] !== apiVersion) throw invalidParam(`X-BankHub-Api-Version phải là ${apiVersion}`);
  if (headers['x-client-id'] !== clientId || headers['x-secret-key'] !== secretKey) {
    throw new CasFailure(401, 'UNAUTHORIZED', 'AUTH_ERROR', 'x-client-id hoặc x-secret-key không đúng');
  }
}

/** A failure the test asked for (setFailure), on the endpoints it named, as many times as it said. */
async function injectedFailure(state: SimState, path: string): Promise<void> {
  const active = state.failure;
  if (active === null || active.remaining <= 0) return;
  if (active.endpoint !== undefined && active.endpoint !== '*' && active.endpoint !== path) return;
  active.remaining -= 1;
  if (active.delayMs !== undefined) await new Promise((resolve) => setTimeout(resolve, active.delayMs));
  if (active.rawBody !== undefined) {
    throw Object.assign(new CasFailure(active.status ?? 502, '', '', ''), { rawBody: active.rawBody });
  }
  if (active.errorCode !== undefined || active.status !== undefined) {
    const status = active.status ?? 400;
    const code = active.errorCode ?? (status >= 500 ? 'INTERNAL_SERVER_ERROR' : 'INVALID_PARAM');
    throw new CasFailure(status, code, active.errorType ?? 'API_ERROR', active.errorMessage ?? `injected ${code}`);
  }
}

/** Cas's error body (or the raw page a test injected); anything not Cas's own, such as malformed JSON, as INVALID_PARAM. */
function sendCasError(reply: FastifyReply, error: unknown, requestId: string): FastifyReply {
  if (error instanceof CasFailure) {
    const raw = (error as CasFailure & { rawBody?: string }).rawBody;
    if (raw !== undefined) return reply.code(error.status).type('text/html').send(raw);
    if (error.retryAfterSeconds !== null) reply.header('retry-after', String(error.retryAfterSeconds));
    return reply
      .code(error.status)
      .header('x-sim-error-code', error.errorCode)
      .type('application/json')
      .send(toCasJson({ requestId, errorCode: error.errorCode, errorMessage: error.message, errorType: error.errorType }));
  }
  const status = (error as { statusCode?: number }).statusCode ?? 500;
  const code = status < 500 ? 'INVALID_PARAM' : 'INTERNAL_SERVER_ERROR';
  return reply
    .code(status)
    .header('x-sim-error-code', code)
    .type('application/json')
    .send(toCasJson({ requestId, errorCode: code, errorMessage: 'Yêu cầu không hợp lệ', errorType: 'API_ERROR' }));
}

import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from '@fastify/type-provider-zod';
import { BankHubError } from '../../application/ports/bankhub';
import { EventStoreUnavailable } from '../../application/ports/event-store';
import { isQueryCanceled, isUnavailableError } from '../postgres/errors';
import { RateLimited } from './rate-limits';
import type { ProblemBody } from './schemas';

export function sendProblem(
  reply: FastifyReply,
  status: number,
  slug: string,
  title: string,
  extra: Omit<Partial<ProblemBody>, 'type' | 'title' | 'status'> = {},
): FastifyReply {
  return reply
    .code(status)
    .type('application/problem+json')
    .send({ type: `urn:balance-ledger:problem:${slug}`, title, status, requestId: reply.request.id, ...extra });
}

/** The one error handler: validation → 400 naming the fields, store down → 503, anything else → 500 without internals. */
export function errorHandler(error: FastifyError, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (hasZodFastifySchemaValidationErrors(error)) {
    const where = error.validationContext ?? 'request';
    const errors = error.validation.map((v) => ({
      field: `${where}${v.instancePath.replaceAll('/', '.')}`.replace(/\.$/, ''),
      message: v.message ?? 'invalid',
    }));
    return sendProblem(reply, 400, 'invalid-request', 'The request is invalid', {
      detail: errors.map((e) => `${e.field}: ${e.message}`).join('; '),
      errors,
    });
  }
  if (error instanceof EventStoreUnavailable || isUnavailableError(error)) {
    request.log.warn({ err: error }, 'storage unavailable');
    reply.header('retry-after', '5');
    return sendProblem(reply, 503, 'unavailable', 'Storage is unavailable; nothing was stored, try again');
  }
  if (isQueryCanceled(error)) {
    request.log.warn({ err: error }, 'query cancelled: it ran past the statement timeout');
    reply.header('retry-after', '5');
    return sendProblem(reply, 503, 'query-timeout', 'The query took longer than this service allows; try again, or ask for less');
  }
  if (error instanceof BankHubError) return sendCasProblem(reply, error);
  if (error instanceof RateLimited) {
    reply.header('retry-after', String(error.retryAfterSeconds));
    return sendProblem(reply, 429, 'rate-limited', 'Too many requests', { detail: error.message });
  }
  if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    return sendProblem(reply, 413, 'body-too-large', 'The body is larger than this endpoint accepts');
  }
  const status = error.statusCode ?? 500;
  if (status >= 400 && status < 500) {
    return sendProblem(reply, status, 'bad-request', error.message);
  }
  request.log.error({ err: error }, 'request failed');
  return sendProblem(reply, 500, 'internal', 'Internal error');
}

/**
 * A failed Cas call, after the client's retries: Cas's own errorCode and requestId (as `casRequestId`; `requestId`
 * stays ours) so that support can find it on both sides. Cas refusing → 422, Cas's rate limit → 429, no answer in
 * time → 504, anything else → 502. The client has already removed credentials from Cas's message.
 */
export function sendCasProblem(reply: FastifyReply, error: BankHubError, extra: Record<string, unknown> = {}): FastifyReply {
  const status =
    error.errorCode === 'RATE_LIMIT'
      ? 429
      : error.errorCode === 'TIMEOUT'
        ? 504
        : error.httpStatus !== null && error.httpStatus >= 400 && error.httpStatus < 500
          ? 422
          : 502;
  reply.request.log.warn(
    { errorCode: error.errorCode, casRequestId: error.requestId, operation: error.operation, httpStatus: error.httpStatus },
    'Cas BankHub call failed',
  );
  if (status === 429 && error.retryAfterMs !== null) reply.header('retry-after', String(Math.ceil(error.retryAfterMs / 1000)));
  return sendProblem(reply, status, 'cas-error', status === 422 ? 'Cas BankHub refused the call' : 'Cas BankHub call failed', {
    detail: `${error.operation ?? 'Cas call'}: ${error.errorCode}${error.errorMessage ? ` (${error.errorMessage})` : ''}`,
    errorCode: error.errorCode,
    errorType: error.errorType,
    casRequestId: error.requestId,
    ...extra,
  });
}

/** A route that calls Cas while Cas BankHub is not configured: 503 naming the variables still missing. */
export const sendCasNotConfigured = (reply: FastifyReply, missing: readonly string[]): FastifyReply =>
  sendProblem(reply, 503, 'bankhub-not-configured', 'Cas BankHub is not configured', {
    detail: `set ${missing.join(' and ')} to link accounts and call Cas`,
    missing: [...missing],
  });

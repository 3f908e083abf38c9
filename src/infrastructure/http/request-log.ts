import { type FastifyReply, type FastifyRequest, LogController } from 'fastify';

/**
 * One line per request, when it is answered: request id (the logger's `reqId`), method, the route's pattern (never
 * the raw URL, which may carry a token), status, time in milliseconds and the key's id and name (bound by the access
 * hook on `reply.log`). The raw URL, redacted, is in the `incoming request` line, at level debug.
 */
export class RequestLog extends LogController {
  override incomingRequest(request: FastifyRequest): void {
    request.log.debug({ req: request }, 'incoming request');
  }

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    const line = {
      method: request.method,
      route: request.routeOptions.url ?? '(no route)',
      statusCode: reply.statusCode,
      responseTime: Math.round(reply.elapsedTime * 10) / 10,
    };
    if (error) reply.log.error({ ...line, err: error }, 'request errored');
    else reply.log.info(line, 'request completed');
  }
}

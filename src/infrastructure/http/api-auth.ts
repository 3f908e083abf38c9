import type { FastifyReply, FastifyRequest } from 'fastify';
import { sendProblem } from './problem';
import { tokenMatcher } from './webhook-auth';

/**
 * The accountants', auditors' and linking routes answer only to `Authorization: Bearer <API_TOKEN>`; the routes in
 * `exempt` (the Cas Link redirect, which a browser follows) answer to anyone.
 */
export function requireBearer(token: string, exempt: ReadonlySet<string>) {
  const tokenOk = tokenMatcher(token);
  return async (request: FastifyRequest, reply: FastifyReply) => {
    if (exempt.has(request.routeOptions.url ?? '')) return;
    const header = request.headers.authorization;
    const presented = header?.startsWith('Bearer ') ? header.slice('Bearer '.length) : undefined;
    if (!tokenOk(presented)) {
      reply.header('www-authenticate', 'Bearer');
      return sendProblem(reply, 401, 'unauthorized', 'Missing or wrong API token');
    }
  };
}

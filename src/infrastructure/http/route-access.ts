import type { FastifyReply, FastifyRequest, RouteOptions } from 'fastify';
import { mayAct, type Role, rolesAllowed } from '../../application/access';
import type { RateLimitClass } from '../../config';
import { ANONYMOUS_PRINCIPAL, type Authenticator, type Principal } from './api-auth';
import { sendProblem } from './problem';

/**
 * Who may call a route, declared once in its options (`config: { access: 'accountant' }`):
 * - a role: keys of that role or of a role that includes it (src/application/access.ts);
 * - 'any-key': any valid key (GET /me);
 * - 'open': anyone (health, readiness, the OpenAPI document and its viewer, the Cas Link redirect);
 * - 'webhook': anyone as far as API keys go; the route checks the webhook token itself.
 * A route that declares nothing answers nobody (403): access is never granted by omission.
 */
export type Access = Role | 'any-key' | 'open' | 'webhook';

declare module 'fastify' {
  interface FastifyContextConfig {
    access?: Access;
    /** The rate-limit class (RATE_LIMITS in config.ts) of a route that is dear to answer. */
    limit?: RateLimitClass;
  }
  interface FastifyRequest {
    /** Set by the access hook on every route that needs a key; null on open routes. */
    principal: Principal | null;
  }
}

/** The API-key check, run on every request before anything else of the route. */
export function accessHook(authenticator: Authenticator) {
  return async (request: FastifyRequest, reply: FastifyReply) => {
    if (request.is404) return;
    const access = request.routeOptions.config.access;
    if (access === 'open' || access === 'webhook') return;
    if (access === undefined) {
      request.log.error({ route: request.routeOptions.url }, 'the route declares no access: refused');
      return sendProblem(reply, 403, 'forbidden', 'This route declares no access rule, so nobody may call it');
    }
    const auth = await authenticator.authenticate(request.headers.authorization);
    if (auth.kind === 'refused') {
      reply.header('www-authenticate', 'Bearer');
      return sendProblem(reply, 401, 'unauthorized', auth.reason === 'missing' ? 'An API key is required' : 'Unknown or revoked API key', {
        detail: 'send Authorization: Bearer <key>; keys are made with `npm run ledger -- keys create`',
      });
    }
    const principal = auth.kind === 'open' ? ANONYMOUS_PRINCIPAL : auth.principal;
    request.principal = principal;
    // Every later line of this request, the "request completed" one included, names the key (never the key itself).
    bindKey(request, reply, { keyId: principal.keyId, keyName: principal.name });
    if (access !== 'any-key' && !mayAct(principal.role, access)) {
      const allowed = rolesAllowed(access);
      return sendProblem(reply, 403, 'forbidden', `This route needs the role ${access}`, {
        detail: `the key "${principal.name}" has the role ${principal.role}; allowed: ${allowed.join(', ')}`,
        requiredRole: access,
        allowedRoles: allowed,
      });
    }
  };
}

/**
 * Binds the key into the request's logger. Fastify gives each request a pino child of its own (request.log, also
 * reply.log), so the bindings are added to it in place (pino's setBindings) rather than through a child of that
 * child on every request; a logger without setBindings gets a child.
 */
function bindKey(request: FastifyRequest, reply: FastifyReply, bindings: { keyId: string | null; keyName: string }): void {
  const log = request.log as FastifyRequest['log'] & { setBindings?: (b: typeof bindings) => void };
  if (typeof log.setBindings === 'function' && reply.log === log) log.setBindings(bindings);
  else request.log = reply.log = log.child(bindings);
}

/** Whether a caller of `role` may use a route of `access` (open routes are anyone's). */
export const accessAllows = (access: Access | undefined, role: Role): boolean =>
  access === undefined ? false : access === 'open' || access === 'webhook' || access === 'any-key' || mayAct(role, access);

/** The operationId a route declares, or one made from its method and path (so that every operation has one). */
export function operationIdOf(route: Pick<RouteOptions, 'method' | 'url' | 'schema'>): string {
  const declared = (route.schema as { operationId?: unknown } | undefined)?.operationId;
  if (typeof declared === 'string') return declared;
  const method = (Array.isArray(route.method) ? route.method[0]! : route.method).toLowerCase();
  const words = route.url
    .split('/')
    .filter(Boolean)
    .map((part) => (part.startsWith(':') ? `by-${part.slice(1)}` : part))
    .flatMap((part) => part.split(/[^A-Za-z0-9]+/))
    .filter(Boolean);
  return method + words.map((w) => w[0]!.toUpperCase() + w.slice(1)).join('');
}

export interface OperationAccess {
  readonly operationId: string;
  readonly method: string;
  readonly path: string;
  readonly access: Access | undefined;
}

/** Collects every documented route as it is added (an onRoute hook), for GET /me. */
export function operationCatalog() {
  const operations: OperationAccess[] = [];
  return {
    onRoute(route: RouteOptions) {
      const methods = Array.isArray(route.method) ? route.method : [route.method];
      if ((route.schema as { hide?: boolean } | undefined)?.hide || methods.includes('HEAD')) return;
      operations.push({ operationId: operationIdOf(route), method: methods.join(','), path: route.url, access: route.config?.access });
    },
    /** The operations a caller of `role` may use, besides the open ones. */
    operationsFor(role: Role): string[] {
      return operations
        .filter((o) => o.access !== 'open' && o.access !== 'webhook' && accessAllows(o.access, role))
        .map((o) => o.operationId);
    },
  };
}

import type { ZodTypeProvider } from '@fastify/type-provider-zod';
import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { ROLE_NAMES, type Role, rolesOf } from '../../application/access';
import { ANONYMOUS_PRINCIPAL } from './api-auth';

export interface AccessRouteOptions {
  /** The operationIds a role may call (besides the open ones). */
  readonly operationsFor: (role: Role) => string[];
}

const roleSchema = z.enum(ROLE_NAMES as [Role, ...Role[]]);

/** GET /me: who the key is and what it may do, so that a console can hide what the key may not use. */
export const accessRoutes: FastifyPluginAsync<AccessRouteOptions> = async (app, { operationsFor }) => {
  app.withTypeProvider<ZodTypeProvider>().get(
    '/me',
    {
      config: { access: 'any-key' },
      schema: {
        operationId: 'getMe',
        summary: 'The calling key: its id, name and role, the roles it acts as and the operations it may call',
        tags: ['access'],
        response: {
          200: z
            .object({
              keyId: z.guid().nullable().describe('null for API_TOKEN and for anonymous callers'),
              name: z.string().describe('the label given at `keys create`; `API_TOKEN` for the bootstrap key'),
              role: roleSchema,
              roles: z.array(roleSchema).describe('the role and every role it includes'),
              operations: z.array(z.string()).describe('operationIds of the OpenAPI document this key may call (open ones aside)'),
              open: z.boolean().describe('true while no API_TOKEN and no key exist: every operation answers anyone'),
            })
            .meta({ id: 'Me' }),
        },
      },
    },
    async (request) => {
      const principal = request.principal ?? ANONYMOUS_PRINCIPAL;
      return {
        keyId: principal.keyId,
        name: principal.name,
        role: principal.role,
        roles: rolesOf(principal.role),
        operations: operationsFor(principal.role),
        open: principal === ANONYMOUS_PRINCIPAL,
      };
    },
  );
};

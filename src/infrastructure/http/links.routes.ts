import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import type { ZodTypeProvider } from '@fastify/type-provider-zod';
import { z } from 'zod';
import type { LinkedGrant, StartedLink } from '../../application/link-grant';
import type { Result } from '../../domain/result';
import { sendCasNotConfigured, sendCasProblem, sendProblem } from './problem';
import { casFailures, linkedAccountSchema, problemSchema } from './schemas';

/** Linking's use cases, bound to Cas and the stores by the composition root. */
export interface LinkUseCases {
  readonly startLink: (input: {
    readonly redirectUri?: string | undefined;
    readonly language?: string | undefined;
  }) => Promise<Result<StartedLink, 'redirect_uri_required'>>;
  readonly completeLink: (publicToken: string) => Promise<LinkedGrant>;
}

export interface LinkRouteOptions {
  /** null when Cas BankHub is not configured: these routes answer 503 naming `missing`. */
  readonly linking: LinkUseCases | null;
  /** The environment variables linking still needs. */
  readonly missing: readonly string[];
}

const redirectUri = z
  .url({ protocol: /^https?$/ })
  .refine((u) => !/[?#]/.test(u), 'must carry no query string or fragment (Cas requires it registered as is)');

const linkedSchema = z
  .object({ grantId: z.string(), fiId: z.string().nullable(), accounts: z.array(linkedAccountSchema) })
  .meta({ id: 'LinkedGrant' });

/** Linking a customer's bank through Cas Link: a grant token, then the public token exchanged for a grant. */
export const linkRoutes: FastifyPluginAsync<LinkRouteOptions> = async (app, { linking, missing }) => {
  const typed = app.withTypeProvider<ZodTypeProvider>();
  const notConfigured = (reply: FastifyReply) => sendCasNotConfigured(reply, missing);

  typed.post(
    '/links',
    {
      config: { access: 'operator' },
      schema: {
        operationId: 'startLink',
        summary: 'Start linking a bank account: a Cas grant token and the Cas Link URL to open with it',
        tags: ['linking'],
        body: z
          .object({
            redirectUri: redirectUri.optional().describe('registered in the Cas console; default BANKHUB_REDIRECT_URI'),
            language: z.enum(['vi', 'en']).optional(),
          })
          .default({}),
        response: {
          200: z.object({ grantToken: z.string(), expiresAt: z.iso.datetime(), linkUrl: z.string() }),
          400: problemSchema,
          ...casFailures,
        },
      },
    },
    async (request, reply) => {
      if (!linking) return notConfigured(reply);
      const started = await linking.startLink(request.body);
      if (!started.ok) {
        return sendProblem(reply, 400, 'redirect-uri-required', 'No redirect URI', {
          detail: 'send redirectUri or set BANKHUB_REDIRECT_URI',
          errors: [{ field: 'body.redirectUri', message: 'required when BANKHUB_REDIRECT_URI is not set' }],
        });
      }
      return { ...started.value, expiresAt: started.value.expiresAt.toISOString() };
    },
  );

  const exchange = async (publicToken: string, reply: FastifyReply) => {
    if (!linking) return notConfigured(reply);
    const linked = await linking.completeLink(publicToken);
    if (linked.identityError) {
      // The grant is linked and kept (Cas will not exchange the public token again); only its accounts are unknown.
      return sendCasProblem(reply, linked.identityError, { grantId: linked.grantId });
    }
    return { grantId: linked.grantId, fiId: linked.fiId, accounts: [...linked.accounts] };
  };
  const exchangeResponses = { 200: linkedSchema, 400: problemSchema, ...casFailures };

  typed.post(
    '/links/exchange',
    {
      config: { access: 'operator' },
      schema: {
        operationId: 'exchangePublicToken',
        summary: 'Finish linking: exchange the public token from Cas Link for a grant and read its accounts',
        description: 'The access token is stored encrypted and never returned. The public token is single-use: not retried.',
        tags: ['linking'],
        body: z.object({ publicToken: z.string().min(1) }),
        response: exchangeResponses,
      },
    },
    async (request, reply) => exchange(request.body.publicToken, reply),
  );

  typed.get(
    '/links/callback',
    {
      // Open: the customer's browser comes back from Cas Link with no key; the public token is single-use.
      config: { access: 'open', limit: 'callback' },
      schema: {
        operationId: 'completeLinkCallback',
        summary: 'Cas Link redirects here (BANKHUB_REDIRECT_URI) with the public token: same as POST /links/exchange',
        tags: ['linking'],
        querystring: z.object({ publicToken: z.string().min(1) }),
        response: exchangeResponses,
      },
    },
    async (request, reply) => exchange(request.query.publicToken, reply),
  );
};

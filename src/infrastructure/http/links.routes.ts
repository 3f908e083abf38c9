import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import type { ZodTypeProvider } from '@fastify/type-provider-zod';
import { z } from 'zod';
import { type BackfillDeps, backfillGrant } from '../../application/backfill-grant';
import { completeLink, type LinkingDeps, startLink } from '../../application/link-grant';
import { GRANT_STATUSES } from '../../domain/grant';
import type { GrantView } from '../../projections/grants.queries';
import { problemSchema, sendCasProblem, sendProblem } from './problem';

export interface LinkRouteOptions {
  /** null when Cas BankHub is not configured: the routes that call Cas answer 503 naming `missing`. */
  readonly linking: LinkingDeps | null;
  readonly backfill: BackfillDeps | null;
  /** The environment variables linking still needs. */
  readonly missing: readonly string[];
  readonly listGrants: () => Promise<GrantView[]>;
}

const redirectUri = z
  .url({ protocol: /^https?$/ })
  .refine((u) => !/[?#]/.test(u), 'must carry no query string or fragment (Cas requires it registered as is)');

const linkedAccountSchema = z.object({
  accountNumber: z.string(),
  accountName: z.string().nullable(),
  currency: z.string().nullable(),
  fiId: z.string().nullable(),
});

const linkedSchema = z
  .object({ grantId: z.string(), fiId: z.string().nullable(), accounts: z.array(linkedAccountSchema) })
  .meta({ id: 'LinkedGrant' });

const grantSchema = z
  .object({
    grantId: z.string(),
    status: z.enum(GRANT_STATUSES).describe('follows the GRANT webhooks: login_required, paused, revoked …'),
    fiId: z.string().nullable(),
    accounts: z.array(linkedAccountSchema),
    linkedAt: z.iso.datetime().nullable().describe('null for a grant known only from its webhooks'),
    lastError: z.object({ errorCode: z.string().nullable(), errorMessage: z.string().nullable() }).nullable(),
    lastWebhookCode: z.string().nullable(),
  })
  .meta({ id: 'Grant' });

const backfillReportSchema = z
  .object({
    fetched: z.number().int(),
    accepted: z.number().int().describe('new transactions: the webhook channel had lost them'),
    duplicates: z.number().int(),
    conflicts: z.number().int(),
    invalid: z.number().int().describe('failed validation: quarantined with source backfill'),
    casRequestId: z.string().nullable(),
  })
  .meta({ id: 'BackfillReport' });

/** Cas's failures: 422 refused, 429 rate limit, 502 failed, 504 no answer; 503 when BankHub is not configured. */
const casFailures = { 422: problemSchema, 429: problemSchema, 502: problemSchema, 503: problemSchema, 504: problemSchema };

export const linkRoutes: FastifyPluginAsync<LinkRouteOptions> = async (app, options) => {
  const typed = app.withTypeProvider<ZodTypeProvider>();
  const notConfigured = (reply: FastifyReply) =>
    sendProblem(reply, 503, 'bankhub-not-configured', 'Cas BankHub is not configured', {
      detail: `set ${options.missing.join(' and ')} to link accounts and call Cas`,
      missing: [...options.missing],
    });

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
      if (!options.linking) return notConfigured(reply);
      const started = await startLink(options.linking, request.body);
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
    if (!options.linking) return notConfigured(reply);
    const linked = await completeLink(options.linking, publicToken);
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

  typed.get(
    '/grants',
    {
      config: { access: 'operator' },
      schema: {
        operationId: 'listGrants',
        summary: 'Linked grants, their accounts and their state as the GRANT webhooks report it',
        tags: ['linking'],
        response: { 200: z.object({ grants: z.array(grantSchema) }) },
      },
    },
    async () => ({
      grants: (await options.listGrants()).map((g) => ({
        grantId: g.grantId,
        status: g.status,
        fiId: g.fiId,
        accounts: g.accounts.map((a) => ({
          accountNumber: a.accountNumber,
          accountName: a.accountName,
          currency: a.currency,
          fiId: a.fiId ?? null,
        })),
        linkedAt: g.linkedAt?.toISOString() ?? null,
        lastError: g.lastError,
        lastWebhookCode: g.lastWebhookCode,
      })),
    }),
  );

  typed.post(
    '/grants/:grantId/backfill',
    {
      config: { access: 'operator', limit: 'backfill' },
      schema: {
        operationId: 'backfillGrant',
        summary: "Recover a grant's transactions from Cas (GET /transactions) and book those the webhooks lost",
        description:
          'Every transaction goes through the webhook booking path with source `backfill`: already booked → duplicate. ' +
          "Cas allows about one call per grant per minute: a call waits for the grant's turn rather than failing.",
        tags: ['linking'],
        params: z.object({ grantId: z.string().min(1) }),
        body: z.object({
          from: z.iso.date().describe('YYYY-MM-DD, bank-local'),
          to: z.iso.date().describe('YYYY-MM-DD, inclusive'),
          accountNumber: z.string().min(1).optional().describe('one account of the grant; all when absent'),
        }),
        response: { 200: backfillReportSchema, 400: problemSchema, 404: problemSchema, ...casFailures },
      },
    },
    async (request, reply) => {
      if (!options.backfill) return notConfigured(reply);
      const { from, to, accountNumber } = request.body;
      const result = await backfillGrant(options.backfill, {
        grantId: request.params.grantId,
        from,
        to,
        ...(accountNumber === undefined ? {} : { accountNumbers: [accountNumber] }),
        requestId: request.id,
      });
      if (result.ok) return result.value;
      if (result.error === 'unknown_grant') {
        return sendProblem(reply, 404, 'grant-not-found', 'No access token is kept for this grant', {
          detail: 'link it first (POST /links, then POST /links/exchange)',
        });
      }
      return sendProblem(reply, 400, 'invalid-window', 'from must be a date on or before to', { detail: `${from} … ${to}` });
    },
  );
};

import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from '@fastify/type-provider-zod';
import { z } from 'zod';
import type { BackfillReport, BackfillRejection, BackfillRequest } from '../../application/backfill-grant';
import { GRANT_STATUSES } from '../../domain/grant';
import type { Result } from '../../domain/result';
import type { GrantView } from '../../projections/grants.queries';
import { sendCasNotConfigured, sendProblem } from './problem';
import { casFailures, linkedAccountSchema, problemSchema } from './schemas';

export interface GrantRouteOptions {
  readonly listGrants: () => Promise<GrantView[]>;
  /** Bound to Cas and the stores by the composition root; null when Cas BankHub is not configured (503 naming `missing`). */
  readonly backfillGrant: ((request: BackfillRequest) => Promise<Result<BackfillReport, BackfillRejection>>) | null;
  /** The environment variables backfill still needs. */
  readonly missing: readonly string[];
}

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

/** The linked grants as the GRANT webhooks report them, and backfill of what the webhooks lost. */
export const grantRoutes: FastifyPluginAsync<GrantRouteOptions> = async (app, { listGrants, backfillGrant, missing }) => {
  const typed = app.withTypeProvider<ZodTypeProvider>();

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
      grants: (await listGrants()).map((g) => ({
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
      if (!backfillGrant) return sendCasNotConfigured(reply, missing);
      const { from, to, accountNumber } = request.body;
      const result = await backfillGrant({
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

import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from '@fastify/type-provider-zod';
import { z } from 'zod';
import { ANOMALIES_KEY, BREAKS_KEY, listAnomalies, listBreaks } from '../../projections/ledger.queries';
import type { ReadRouteOptions } from './accounts.routes';
import { breakSchema, cursorOf, nextCursorSchema, pagingFields, problemSchema } from './schemas';

const BREAKS_CURSOR = 'breaks';
const ANOMALIES_CURSOR = 'anomalies';

const anomalySchema = z
  .object({
    kind: z.enum(['late', 'conflict']),
    accountId: z.guid(),
    transactionId: z.string(),
    receivedAt: z.iso.datetime(),
    eventId: z.guid().describe('The late BalanceChanged, or the ConflictingDuplicateReceived event'),
    source: z.string().describe('webhook or backfill'),
    details: z
      .record(z.string(), z.string().nullable())
      .describe('late: followingTransactionId, transactionDateTime; conflict: originalEventId and the repeated figures'),
  })
  .meta({ id: 'Anomaly' });

const accountFilter = z.string().optional().describe('Only this account (an id from GET /accounts)');

export const breakRoutes: FastifyPluginAsync<ReadRouteOptions> = async (app, { readModels }) => {
  const typed = app.withTypeProvider<ZodTypeProvider>();

  typed.get(
    '/breaks',
    {
      config: { access: 'accountant' },
      schema: {
        operationId: 'listBreaks',
        summary: "Gaps in the bank's running-balance chain, open or resolved, a page at a time",
        description: 'Open breaks first, then resolved ones; each oldest first (openedAt), then by id. Filters and paging combine.',
        tags: ['reconciliation'],
        querystring: z.object({
          status: z.enum(['open', 'resolved']).optional(),
          accountId: accountFilter,
          ...pagingFields(BREAKS_CURSOR, BREAKS_KEY),
        }),
        response: { 200: z.object({ breaks: z.array(breakSchema), nextCursor: nextCursorSchema }), 400: problemSchema },
      },
    },
    async (request) => {
      const { status, accountId, limit, cursor } = request.query;
      const page = await listBreaks(readModels, { status, accountId }, { limit, after: cursor ?? null });
      return { breaks: page.items, nextCursor: cursorOf(BREAKS_CURSOR, page.next) };
    },
  );

  typed.get(
    '/anomalies',
    {
      config: { access: 'accountant' },
      schema: {
        operationId: 'listAnomalies',
        summary: 'Late deliveries (one per late line) and conflicting repeats (one per differing content), a page at a time',
        description: 'In the order they were detected: when the late or conflicting delivery reached the ledger (receivedAt), then by id.',
        tags: ['reconciliation'],
        querystring: z.object({
          kind: z.enum(['late', 'conflict']).optional(),
          accountId: accountFilter,
          ...pagingFields(ANOMALIES_CURSOR, ANOMALIES_KEY),
        }),
        response: { 200: z.object({ anomalies: z.array(anomalySchema), nextCursor: nextCursorSchema }), 400: problemSchema },
      },
    },
    async (request) => {
      const { kind, accountId, limit, cursor } = request.query;
      const page = await listAnomalies(readModels, { kind, accountId }, { limit, after: cursor ?? null });
      return { anomalies: page.items, nextCursor: cursorOf(ANOMALIES_CURSOR, page.next) };
    },
  );
};

import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from '@fastify/type-provider-zod';
import { z } from 'zod';
import { listAnomalies, listBreaks } from '../../projections/ledger.queries';
import { breakJson, breakSchema, type ReadRouteOptions } from './accounts.routes';

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
        summary: "Gaps in the bank's running-balance chain, open or resolved",
        tags: ['reconciliation'],
        querystring: z.object({ status: z.enum(['open', 'resolved']).optional(), accountId: accountFilter }),
        response: { 200: z.object({ breaks: z.array(breakSchema) }) },
      },
    },
    async (request) => ({ breaks: (await listBreaks(readModels, request.query)).map(breakJson) }),
  );

  typed.get(
    '/anomalies',
    {
      config: { access: 'accountant' },
      schema: {
        operationId: 'listAnomalies',
        summary: 'Late deliveries (one per late line) and conflicting repeats (one per differing content)',
        tags: ['reconciliation'],
        querystring: z.object({ kind: z.enum(['late', 'conflict']).optional(), accountId: accountFilter }),
        response: { 200: z.object({ anomalies: z.array(anomalySchema) }) },
      },
    },
    async (request) => ({ anomalies: await listAnomalies(readModels, request.query) }),
  );
};

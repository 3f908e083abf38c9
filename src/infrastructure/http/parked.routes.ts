import type { ZodTypeProvider } from '@fastify/type-provider-zod';
import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import type { ParkedEvent, ParkedEvents } from '../parked-events';
import { sendProblem } from './problem';
import { cursorOf, nextCursorSchema, pagingFields, problemSchema } from './schemas';

/**
 * The operators' routes over events a projection set aside (parked): the same use case as `ledger parked …`, so that
 * the console and the CLI do one thing.
 */
export interface ParkedRouteOptions {
  readonly parked: ParkedEvents;
  readonly projectionNames: readonly string[];
}

const PARKED_CURSOR = 'parked';

const parkedSchema = z
  .object({
    projection: z.string(),
    eventId: z.string(),
    position: z.string().describe('Its log position'),
    type: z.string(),
    streamId: z.string(),
    subject: z.string().nullable().describe('The account id (ledger) or grant id (grants) it concerns, when its data tells'),
    transactionDate: z.string().nullable().describe('The bank-local date of the transaction it books (ledger), when readable'),
    error: z.string().describe('Why it could not be applied, the last time it was tried'),
    tries: z.number().int(),
    firstFailedAt: z.iso.datetime(),
    lastFailedAt: z.iso.datetime(),
  })
  .meta({ id: 'ParkedEvent', description: 'An event a projection could not apply; the projection went on without it' });
const parkedJson = (p: ParkedEvent) => ({ ...p, firstFailedAt: p.firstFailedAt.toISOString(), lastFailedAt: p.lastFailedAt.toISOString() });

const retrySchema = z
  .object({
    projection: z.string(),
    eventId: z.string(),
    outcome: z.enum(['applied', 'failed_again']),
    error: z.string().nullable().describe('Why it failed again; null when applied'),
    tries: z.number().int(),
  })
  .meta({ id: 'ParkedRetry' });

export const parkedRoutes: FastifyPluginAsync<ParkedRouteOptions> = async (app, { parked, projectionNames }) => {
  const typed = app.withTypeProvider<ZodTypeProvider>();
  const projection = z.enum(projectionNames as [string, ...string[]]);

  typed.get(
    '/parked',
    {
      config: { access: 'operator' },
      schema: {
        operationId: 'listParkedEvents',
        summary: 'Events a projection could not apply and set aside, a page at a time',
        description: 'By projection, then log position. Each is counted on GET /projections and, for the ledger, on its account.',
        tags: ['operations'],
        querystring: z.object({ projection: projection.optional(), ...pagingFields(PARKED_CURSOR, ['text', 'position', 'text']) }),
        response: { 200: z.object({ parked: z.array(parkedSchema), nextCursor: nextCursorSchema }), 400: problemSchema },
      },
    },
    async (request) => {
      const { projection: name, limit, cursor } = request.query;
      const page = await parked.list({ projection: name, after: cursor ?? null, limit });
      return { parked: page.items.map(parkedJson), nextCursor: cursorOf(PARKED_CURSOR, page.next) };
    },
  );

  typed.post(
    '/parked/:projection/:eventId/retry',
    {
      config: { access: 'operator' },
      schema: {
        operationId: 'retryParkedEvent',
        summary: 'Apply a parked event again (after a fix)',
        description:
          'The projection re-derives what the event concerns (its account, its grant) from the log in log order, the event ' +
          'included: applied → no longer parked; failing again → still parked, with the new error and one more try.',
        tags: ['operations'],
        params: z.object({ projection, eventId: z.string().max(200) }),
        response: { 200: retrySchema, 400: problemSchema, 404: problemSchema },
      },
    },
    async (request, reply) => {
      const { projection: name, eventId } = request.params;
      const [outcome] = (await parked.retry(name, eventId)) ?? [];
      if (!outcome) return sendProblem(reply, 404, 'not-parked', 'No such parked event', { detail: `${name} has no parked event ${eventId}` });
      return outcome;
    },
  );
};

import { createHash } from 'node:crypto';
import type { ZodTypeProvider } from '@fastify/type-provider-zod';
import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import type { IngestDeps } from '../../application/ingest-webhook';
import type { QuarantineSummary } from '../../application/ports/quarantine';
import { reingestQuarantined } from '../../application/reingest-quarantined';
import type { ParkedEvent, ParkedEvents } from '../parked-events';
import { cursorOf, nextCursorSchema, pagingFields } from './paging';
import { problemSchema, sendProblem } from './problem';

/**
 * The operators' routes: events a projection set aside (parked) and bodies ingest refused (the quarantine). The
 * same use cases as `ledger parked …` and `ledger quarantine …`, so that the console and the CLI do one thing.
 */
export interface OperationsRouteOptions {
  readonly parked: ParkedEvents;
  readonly projectionNames: readonly string[];
  readonly ingest: IngestDeps;
  readonly now: () => Date;
}

const PARKED_CURSOR = 'parked';
const QUARANTINE_CURSOR = 'quarantine';

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

const quarantinedSchema = z
  .object({
    id: z.string(),
    bodySha256: z.string(),
    byteLength: z.number().int(),
    contentType: z.string().nullable(),
    problems: z.array(z.object({ field: z.string(), message: z.string() })).describe('Why it could not be booked'),
    source: z.string().describe('webhook or backfill'),
    requestId: z.string().nullable(),
    remoteAddress: z.string().nullable(),
    firstReceivedAt: z.iso.datetime(),
    lastReceivedAt: z.iso.datetime(),
    timesReceived: z.number().int(),
    reingestedAt: z.iso.datetime().nullable(),
    reingestOutcome: z.unknown().describe('What re-ingest answered (status and eventId), null until re-ingested'),
  })
  .meta({ id: 'QuarantinedBody' });
const quarantinedJson = (q: QuarantineSummary) => ({
  id: q.id,
  bodySha256: q.bodySha256,
  byteLength: q.byteLength,
  contentType: q.contentType,
  problems: q.problems.map((p) => ({ field: p.field, message: p.message })),
  source: q.source,
  requestId: q.requestId,
  remoteAddress: q.remoteAddress,
  firstReceivedAt: q.firstReceivedAt.toISOString(),
  lastReceivedAt: q.lastReceivedAt.toISOString(),
  timesReceived: q.timesReceived,
  reingestedAt: q.reingestedAt?.toISOString() ?? null,
  reingestOutcome: q.reingestOutcome ?? null,
});

const quarantineId = z.object({ id: z.string().regex(/^\d{1,18}$/, 'a quarantine id as GET /quarantine lists it') });
const unknownBody = (id: string) => ({ detail: `no quarantined body ${id}` });

export const operationsRoutes: FastifyPluginAsync<OperationsRouteOptions> = async (app, { parked, projectionNames, ingest, now }) => {
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

  typed.get(
    '/quarantine',
    {
      config: { access: 'operator' },
      schema: {
        operationId: 'listQuarantine',
        summary: 'Bodies that could not be booked, oldest first, a page at a time (without the bodies: GET /quarantine/{id}/raw)',
        tags: ['operations'],
        querystring: z.object({
          status: z.enum(['pending', 'all']).default('pending').describe('pending: not re-ingested yet (the default); all: every one'),
          ...pagingFields(QUARANTINE_CURSOR, ['digits']),
        }),
        response: { 200: z.object({ quarantine: z.array(quarantinedSchema), nextCursor: nextCursorSchema }), 400: problemSchema },
      },
    },
    async (request) => {
      const { status, limit, cursor } = request.query;
      const rows = await ingest.quarantine.list({ pendingOnly: status === 'pending', limit: limit + 1, after: cursor?.[0] ?? null });
      const page = rows.slice(0, limit);
      const next = rows.length > limit ? [page[page.length - 1]!.id] : null;
      return { quarantine: page.map(quarantinedJson), nextCursor: cursorOf(QUARANTINE_CURSOR, next) };
    },
  );

  typed.get(
    '/quarantine/:id',
    {
      config: { access: 'operator' },
      schema: {
        operationId: 'getQuarantined',
        summary: 'One quarantined body: where and when it came, why it was refused, whether it was re-ingested',
        tags: ['operations'],
        params: quarantineId,
        response: { 200: quarantinedSchema, 400: problemSchema, 404: problemSchema },
      },
    },
    async (request, reply) => {
      const entry = await ingest.quarantine.get(request.params.id);
      if (!entry) return sendProblem(reply, 404, 'unknown-quarantine', 'No such quarantined body', unknownBody(request.params.id));
      return quarantinedJson({ ...entry, byteLength: entry.rawBody.byteLength });
    },
  );

  typed.get(
    '/quarantine/:id/raw',
    {
      config: { access: 'operator' },
      schema: {
        operationId: 'getQuarantinedRaw',
        summary: 'The body exactly as received, byte for byte (application/octet-stream; never rendered)',
        tags: ['operations'],
        params: quarantineId,
        response: { 200: z.any().describe('the bytes as received'), 400: problemSchema, 404: problemSchema },
      },
    },
    async (request, reply) => {
      const entry = await ingest.quarantine.get(request.params.id);
      if (!entry) return sendProblem(reply, 404, 'unknown-quarantine', 'No such quarantined body', unknownBody(request.params.id));
      const bytes = Buffer.from(entry.rawBody);
      // Whatever was sent (HTML, script) stays inert: never sniffed, never run, saved rather than shown.
      return reply
        .type('application/octet-stream')
        .header('x-content-type-options', 'nosniff')
        .header('content-security-policy', "default-src 'none'; sandbox")
        .header('content-disposition', `attachment; filename="quarantine-${entry.id}.bin"`)
        .header('x-content-sha256', createHash('sha256').update(bytes).digest('hex'))
        .send(bytes);
    },
  );

  typed.post(
    '/quarantine/:id/reingest',
    {
      config: { access: 'operator' },
      schema: {
        operationId: 'reingestQuarantined',
        summary: 'Run a quarantined body through ingest again (after a fix), keeping when Cas first sent it',
        description: '200 ingested (or already re-ingested before: the same answer again); 422 when it is still invalid, naming why.',
        tags: ['operations'],
        params: quarantineId,
        response: {
          200: z.object({ id: z.string(), status: z.enum(['ingested', 'already_reingested']), outcome: z.unknown() }),
          400: problemSchema,
          404: problemSchema,
          422: problemSchema,
        },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      const result = await reingestQuarantined(ingest, id, now());
      switch (result.status) {
        case 'not_found':
          return sendProblem(reply, 404, 'unknown-quarantine', 'No such quarantined body', unknownBody(id));
        case 'still_invalid':
          return sendProblem(reply, 422, 'still-invalid', 'The body still cannot be booked', {
            detail: result.problems.map((p) => `${p.field}: ${p.message}`).join('; '),
            errors: result.problems.map((p) => ({ field: p.field, message: p.message })),
          });
        case 'already_reingested':
          return { id, status: 'already_reingested' as const, outcome: result.outcome ?? null };
        case 'ingested':
          return { id, status: 'ingested' as const, outcome: result.outcome };
      }
    },
  );
};

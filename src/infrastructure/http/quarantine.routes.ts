import { createHash } from 'node:crypto';
import type { ZodTypeProvider } from '@fastify/type-provider-zod';
import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import type { IngestDeps } from '../../application/ingest-webhook';
import type { QuarantineSummary } from '../../application/ports/quarantine';
import { reingestQuarantined } from '../../application/reingest-quarantined';
import { sendProblem } from './problem';
import { cursorOf, nextCursorSchema, pagingFields, problemSchema } from './schemas';

/**
 * The operators' routes over bodies ingest refused (the quarantine): the same use cases as `ledger quarantine …`, so
 * that the console and the CLI do one thing.
 */
export interface QuarantineRouteOptions {
  readonly ingest: IngestDeps;
  readonly now: () => Date;
}

const QUARANTINE_CURSOR = 'quarantine';

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

export const quarantineRoutes: FastifyPluginAsync<QuarantineRouteOptions> = async (app, { ingest, now }) => {
  const typed = app.withTypeProvider<ZodTypeProvider>();

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

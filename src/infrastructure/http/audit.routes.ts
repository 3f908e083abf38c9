import { createHash } from 'node:crypto';
import type { ZodTypeProvider } from '@fastify/type-provider-zod';
import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import type { EventStore } from '../../application/ports/event-store';
import { transactionStreamId } from '../../domain/events';
import { accountEventRefs, accountExists } from '../../projections/audit.queries';
import type { ReadModel } from '../../projections/read-model';
import { auditEventOf } from '../export-events';
import { sendProblem } from './problem';
import { problemSchema } from './schemas';

export interface AuditRouteOptions {
  readonly eventStore: EventStore;
  /** Where the ledger's read model says which events concern an account. */
  readonly readModels: ReadModel;
}

const position = z.string().regex(/^[0-9a-f]{16}-[0-9a-f]{16}$/, 'expected a log position as returned in `next`');
const pageQuery = z.object({
  after: position.optional().describe('exclusive; omit to start at the beginning of the log'),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

const auditEvent = z
  .object({
    position: z.string(),
    streamId: z.string(),
    revision: z.string().describe('revision within the stream (decimal)'),
    eventId: z.guid(),
    type: z.string(),
    recordedAt: z.string(),
    data: z.record(z.string(), z.unknown()),
    metadata: z.record(z.string(), z.unknown()).describe('rawBody (as Cas sent it), rawSha256, receivedAt, source, …'),
  })
  .meta({ id: 'AuditEvent' });
const eventPage = z.object({ events: z.array(auditEvent), next: z.string().nullable() }).meta({ id: 'AuditEventPage' });

const toAuditEvent = auditEventOf;

/** The auditors' view of the immutable log: as stored, per account, per transaction, and raw payloads byte for byte. */
export const auditRoutes: FastifyPluginAsync<AuditRouteOptions> = async (app, { eventStore, readModels }) => {
  const typed = app.withTypeProvider<ZodTypeProvider>();

  typed.get(
    '/audit/events',
    {
      config: { access: 'auditor', limit: 'export' },
      schema: {
        operationId: 'listAuditEvents',
        summary: 'The whole event log in its global order, paged',
        tags: ['audit'],
        querystring: pageQuery,
        response: { 200: eventPage, 400: problemSchema },
      },
    },
    async (request) => {
      const page = await eventStore.readAll({ after: request.query.after ?? null, maxCount: request.query.limit, withAttachments: true });
      return { events: page.events.map(toAuditEvent), next: page.isEnd ? null : page.lastPosition };
    },
  );

  typed.get(
    '/audit/accounts/:id/events',
    {
      config: { access: 'auditor', limit: 'export' },
      schema: {
        operationId: 'listAccountAuditEvents',
        summary: "Every event that concerns one account (its BalanceChanged and ConflictingDuplicateReceived), in log order",
        tags: ['audit'],
        params: z.object({ id: z.string() }),
        querystring: pageQuery,
        response: { 200: eventPage, 400: problemSchema, 404: problemSchema },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      if (!(await accountExists(readModels, id))) {
        return sendProblem(reply, 404, 'unknown-account', 'No such account', { detail: id });
      }
      const { limit, after } = request.query;
      const refs = await accountEventRefs(readModels, id, { after: after ?? null, limit });
      // One read of the log per page, however long the page: never one per event.
      const events = await eventStore.readEvents(refs.map((ref) => ref.eventId), { withAttachments: true });
      return { events: events.map(toAuditEvent), next: refs.length === limit ? refs[refs.length - 1]!.position : null };
    },
  );

  typed.get(
    '/audit/transactions/:transactionId/events',
    {
      config: { access: 'auditor' },
      schema: {
        operationId: 'listTransactionEvents',
        summary: 'The events of one Cas transaction: the BalanceChanged that booked it, then every conflicting repeat',
        description: 'In stream order, with metadata (the raw body as Cas sent it, its SHA-256, receivedAt, source, …).',
        tags: ['audit'],
        params: z.object({ transactionId: z.string().min(1).describe('The Cas transaction id') }),
        response: { 200: z.object({ events: z.array(auditEvent) }).meta({ id: 'TransactionEvents' }), 404: problemSchema },
      },
    },
    async (request, reply) => {
      const events = await eventStore.readStream(transactionStreamId(request.params.transactionId), { withAttachments: true });
      if (events.length === 0) {
        return sendProblem(reply, 404, 'unknown-transaction', 'No such transaction', { detail: request.params.transactionId });
      }
      return { events: events.map(toAuditEvent) };
    },
  );

  typed.get(
    '/audit/events/:eventId/raw',
    {
      config: { access: 'auditor' },
      schema: {
        operationId: 'getRawPayload',
        summary: 'The body exactly as Cas sent it, byte for byte; its SHA-256 in `x-content-sha256` and `repr-digest`',
        tags: ['audit'],
        params: z.object({ eventId: z.guid() }),
        response: { 200: z.any().describe('the raw body'), 404: problemSchema },
      },
    },
    async (request, reply) => {
      const event = await eventStore.readEvent(request.params.eventId, { withAttachments: true });
      const raw = event?.attachment;
      if (!event || typeof raw !== 'string') {
        return sendProblem(reply, 404, 'no-raw-body', 'No raw body is stored for this event', { detail: request.params.eventId });
      }
      const bytes = Buffer.from(raw, 'utf8');
      const digest = createHash('sha256').update(bytes).digest();
      return reply
        .type(typeof event.metadata.contentType === 'string' ? event.metadata.contentType : 'application/json')
        .header('x-content-sha256', digest.toString('hex'))
        .header('repr-digest', `sha-256=:${digest.toString('base64')}:`)
        // What Cas sent is data, never a page: a browser must neither guess another type nor run anything in it.
        .header('x-content-type-options', 'nosniff')
        .header('content-security-policy', "default-src 'none'; sandbox")
        .send(bytes);
    },
  );
};

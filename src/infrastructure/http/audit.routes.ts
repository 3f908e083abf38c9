import { createHash } from 'node:crypto';
import type { ZodTypeProvider } from '@fastify/type-provider-zod';
import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import type { EventStore } from '../../application/ports/event-store';
import { transactionStreamId } from '../../domain/events';
import { accountEventRefs, accountExists } from '../../projections/audit.queries';
import { statement } from '../../projections/ledger.queries';
import type { ReadModel } from '../../projections/read-model';
import { auditEventOf } from '../export-events';
import { fromNotAfterTo, periodFields } from './accounts.routes';
import type { VerifyOutcome } from '../verify-runs';
import { problemSchema, sendProblem } from './problem';

export interface AuditRouteOptions {
  readonly eventStore: EventStore;
  readonly readModels: ReadModel;
  /** One verify at a time, across processes: `busy` names the one running. */
  readonly verify: () => Promise<VerifyOutcome>;
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

/** The auditors' view: the immutable log as stored, raw payloads byte for byte, and replay-and-compare. */
export const auditRoutes: FastifyPluginAsync<AuditRouteOptions> = async (app, { eventStore, readModels, verify }) => {
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

  typed.get(
    '/audit/statements/verify',
    {
      config: { access: 'auditor', limit: 'statements' },
      schema: {
        operationId: 'verifyStatementDigest',
        summary: "Whether today's books still give the digest a statement carried",
        description:
          'Recomputes the digest of GET /accounts/{id}/statement for the same period (each line: event id, amount, balances; ' +
          'then opening and closing balances) and compares it with the one given.',
        tags: ['audit'],
        querystring: z
          .object({ accountId: z.string(), ...periodFields, digest: z.string().regex(/^[0-9a-f]{64}$/, 'expected a SHA-256 in hex') })
          .refine(...fromNotAfterTo),
        response: {
          200: z.object({
            accountId: z.string(),
            from: z.string(),
            to: z.string(),
            digest: z.string(),
            currentDigest: z.string(),
            matches: z.boolean(),
          }),
          400: problemSchema,
          404: problemSchema,
        },
      },
    },
    async (request, reply) => {
      const { accountId, from, to, digest } = request.query;
      const current = await statement(readModels, accountId, { from, to, limit: 1, cursor: null });
      if (!current) return sendProblem(reply, 404, 'unknown-account', 'No such account', { detail: accountId });
      return { accountId, from, to, digest, currentDigest: current.digest, matches: current.digest === digest };
    },
  );

  typed.post(
    '/audit/verify',
    {
      config: { access: 'auditor', limit: 'verify' },
      schema: {
        operationId: 'verifyReadModels',
        summary: 'Replay the whole log into a scratch schema and compare every read model with the live one',
        description:
          'One verify runs at a time, across every process of the service: a second call while one runs is answered 409, ' +
          'naming the running one (`running.id`, `running.startedAt`).',
        tags: ['audit'],
        response: {
          200: z.object({
            id: z.guid().describe('This run (verify_runs)'),
            startedAt: z.iso.datetime(),
            ok: z.boolean(),
            eventsReplayed: z.number().int(),
            tablesCompared: z.number().int(),
            position: z.string().nullable(),
            differences: z.array(
              z.object({
                projection: z.string(),
                table: z.string(),
                key: z.record(z.string(), z.unknown()),
                kind: z.enum(['changed', 'missing_from_live', 'unexpected_in_live']),
                live: z.record(z.string(), z.unknown()).nullable(),
                rebuilt: z.record(z.string(), z.unknown()).nullable(),
              }),
            ),
          }),
          409: problemSchema,
        },
      },
    },
    async (_request, reply) => {
      const outcome = await verify();
      if (outcome.status === 'busy') {
        const { running } = outcome;
        return sendProblem(reply, 409, 'verify-running', 'A verify is already running', {
          detail: running ? `verify ${running.id} started at ${running.startedAt.toISOString()}; try again when it has finished` : 'another verify holds the lock; try again when it has finished',
          running: running ? { id: running.id, startedAt: running.startedAt.toISOString() } : null,
        });
      }
      const { run, report } = outcome;
      return { id: run.id, startedAt: run.startedAt.toISOString(), ...report, differences: [...report.differences] };
    },
  );
};

import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { validatorCompiler, type ZodTypeProvider } from '@fastify/type-provider-zod';
import { z } from 'zod';
import { type Delivery, ingestWebhook, type IngestDeps, quarantineDelivery } from '../../application/ingest-webhook';
import { sendProblem } from './problem';
import { problemSchema } from './schemas';
import { addressMatcher, tokenMatcher } from './webhook-auth';

export interface WebhookRouteOptions {
  readonly ingest: IngestDeps;
  readonly token: string | undefined;
  readonly allowedIps: readonly string[] | undefined;
  readonly bodyLimit: number;
  readonly now: () => Date;
  /** Told of every answer of this route (metrics: the status code, the ack's status on 200, the time it took). */
  readonly onAnswered?: (statusCode: number, ackStatus: string | undefined, seconds: number) => void;
}

const ackSchema = z
  .object({
    status: z.enum(['ping', 'accepted', 'duplicate', 'conflict', 'recorded']),
    eventId: z.guid().optional(),
  })
  .meta({ id: 'WebhookAck' });

const alwaysValid = () => true;
/** What the route-level compiler is handed: the schema of one part (fastify's type says the whole route's). */
type ZodRouteSchema = Parameters<typeof validatorCompiler>[0];

/** application/json with any parameters, in any case; anything else could be a browser's cross-site form post. */
const JSON_TYPE = /^\s*application\/json\s*(;.*)?$/i;

export const webhookRoutes: FastifyPluginAsync<WebhookRouteOptions> = async (app, options) => {
  const allowed = options.allowedIps ? addressMatcher(options.allowedIps) : null;
  const tokenOk = options.token === undefined ? null : tokenMatcher(options.token);

  // The body is read as bytes: the auditor gets back exactly what Cas sent, and money is parsed losslessly.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: options.bodyLimit }, (_req, body, done) => done(null, body));

  // Every answer counts, refusals included (issue 15: ledger_webhooks_total, ledger_webhook_duration_seconds).
  // The handler notes the ack's status; refusals before it (token, size, store down) have only their status code.
  const { onAnswered } = options;
  const acked = new WeakMap<FastifyRequest, string>();
  // Both hooks take fastify's callback, not a promise: nothing in them waits, and they run on every webhook.
  if (onAnswered) {
    app.addHook('onSend', (request, reply, payload, done) => {
      onAnswered(reply.statusCode, acked.get(request), reply.elapsedTime / 1000);
      done(null, payload);
    });
  }

  // Checked before the body is read: an unauthenticated sender gets nothing stored and no parsing. A refusal is
  // sent from the hook, which then does not call `done`: the request goes no further.
  app.addHook('onRequest', (request, reply, done) => {
    if (allowed && !allowed(request.ip)) {
      sendProblem(reply, 403, 'forbidden-source', 'This source address may not deliver webhooks');
      return;
    }
    if (tokenOk !== null) {
      const presented = request.headers['x-webhook-token'] ?? (request.query as Record<string, unknown>).token;
      if (!tokenOk(typeof presented === 'string' ? presented : undefined)) {
        sendProblem(reply, 401, 'unauthorized', 'Missing or wrong webhook token');
        return;
      }
    }
    done();
  });

  app.withTypeProvider<ZodTypeProvider>().post(
    '/webhooks/bankhub',
    {
      // Not an API key: the hook above checks the webhook token. No rate limit: Cas must never be refused for volume.
      config: { access: 'webhook' },
      // Only the query is validated per request: a header is always a string (Node joins repeated ones) and the
      // body is bytes that the use case reads; their schemas document the route and cannot fail.
      validatorCompiler: (route) => (route.httpPart === 'querystring' ? validatorCompiler(route as unknown as ZodRouteSchema) : alwaysValid),
      schema: {
        operationId: 'receiveBankHubWebhook',
        summary: 'Receive a Cas BankHub Balance Hook webhook',
        description:
          'Answers 200 only after the event is durably stored. TRANSACTIONS webhooks become one BalanceChanged event per ' +
          'Cas transaction id; repeats answer `duplicate`, a repeat with other content `conflict`. `{}` is the console ping. ' +
          'The body must be application/json (415 otherwise, and the body is quarantined).',
        tags: ['webhooks'],
        querystring: z.object({ token: z.string().optional().describe("The webhook secret (WEBHOOK_TOKEN), for Cas's console") }),
        headers: z.looseObject({ 'x-webhook-token': z.string().optional() }),
        body: z.any().describe('The webhook as Cas sends it: {environment, webhookType, webhookCode, grantId, error, transaction?}'),
        response: {
          200: ackSchema,
          400: problemSchema,
          401: problemSchema,
          403: problemSchema,
          413: problemSchema,
          415: problemSchema,
          503: problemSchema,
        },
      },
    },
    async (request, reply) => {
      const delivery: Delivery = {
        body: Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0),
        contentType: request.headers['content-type'] ?? null,
        receivedAt: options.now(),
        requestId: request.id,
        remoteAddress: request.ip,
      };
      if (!JSON_TYPE.test(delivery.contentType ?? '')) {
        const problems = [{ field: 'headers.content-type', message: `must be application/json, was ${delivery.contentType ?? 'absent'}` }];
        const rejected = await quarantineDelivery(options.ingest, delivery, problems);
        request.log.info({ problems, quarantineId: rejected.quarantineId }, 'webhook quarantined');
        return sendProblem(reply, 415, 'unsupported-media-type', 'The webhook body must be application/json', {
          detail: problems[0]!.message,
          errors: problems,
          quarantineId: rejected.quarantineId,
        });
      }
      const result = await ingestWebhook(options.ingest, delivery);
      if (!result.ok) {
        request.log.info({ problems: result.error.problems, quarantineId: result.error.quarantineId }, 'webhook quarantined');
        return sendProblem(reply, 400, 'invalid-webhook', 'The webhook could not be booked', {
          detail: result.error.problems.map((p) => `${p.field}: ${p.message}`).join('; '),
          errors: [...result.error.problems],
          quarantineId: result.error.quarantineId,
        });
      }
      acked.set(request, result.value.status);
      return result.value;
    },
  );
};

import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from '@fastify/type-provider-zod';
import { z } from 'zod';
import { ALERT_KINDS } from '../../application/alerts';
import type { AlertRecord } from '../../application/ports/alert-outbox';
import type { AlertOutboxRepository } from '../postgres/alert-outbox-repository';
import { cursorOf, nextCursorSchema, pagingFields, problemSchema } from './schemas';

export interface AlertRouteOptions {
  readonly outbox: Pick<AlertOutboxRepository, 'list'>;
  /** Whether ALERT_WEBHOOK_URL is set (said in every answer, so an empty list is not mistaken for good news). */
  readonly enabled: boolean;
}

const ALERTS_CURSOR = 'alerts';

const alertSchema = z
  .object({
    alertId: z.string().describe('Derived from what it is about (e.g. break_opened:<breakId>): each alert is recorded and sent once'),
    kind: z.enum(ALERT_KINDS),
    status: z.enum(['pending', 'delivered', 'failed']).describe('pending: being tried (up to 24 h); failed: given up'),
    text: z.string(),
    createdAt: z.iso.datetime(),
    attempts: z.number().int(),
    nextAttemptAt: z.iso.datetime().nullable(),
    lastAttemptAt: z.iso.datetime().nullable(),
    lastError: z.string().nullable().describe('Why the last delivery failed (never the URL)'),
    deliveredAt: z.iso.datetime().nullable(),
    alert: z.record(z.string(), z.unknown()).describe('The body POSTed to ALERT_WEBHOOK_URL'),
  })
  .meta({ id: 'Alert' });

const iso = (d: Date | null) => d?.toISOString() ?? null;
const alertJson = (r: AlertRecord) => ({
  alertId: r.alertId,
  kind: r.kind,
  status: r.status,
  text: r.alert.text,
  createdAt: r.createdAt.toISOString(),
  attempts: r.attempts,
  nextAttemptAt: iso(r.nextAttemptAt),
  lastAttemptAt: iso(r.lastAttemptAt),
  lastError: r.lastError,
  deliveredAt: iso(r.deliveredAt),
  alert: r.alert as unknown as Record<string, unknown>,
});

export const alertRoutes: FastifyPluginAsync<AlertRouteOptions> = async (app, { outbox, enabled }) => {
  app.withTypeProvider<ZodTypeProvider>().get(
    '/alerts',
    {
      config: { access: 'operator' },
      schema: {
        operationId: 'listAlerts',
        summary: 'Alerts the ledger raised and what became of their delivery, a page at a time',
        description:
          'Oldest first (createdAt, then alertId). `status=pending` lists alerts not delivered yet, `status=failed` those ' +
          'given up after 24 h of failed deliveries. `enabled` says whether ALERT_WEBHOOK_URL is set.',
        tags: ['operations'],
        querystring: z.object({
          status: z.enum(['pending', 'delivered', 'failed']).optional(),
          ...pagingFields(ALERTS_CURSOR, ['micros', 'text']),
        }),
        response: {
          200: z.object({ enabled: z.boolean(), alerts: z.array(alertSchema), nextCursor: nextCursorSchema }),
          400: problemSchema,
        },
      },
    },
    async (request) => {
      const { status, limit, cursor } = request.query;
      const page = await outbox.list({ status, after: cursor ?? null, limit });
      return { enabled, alerts: page.items.map(alertJson), nextCursor: cursorOf(ALERTS_CURSOR, page.next) };
    },
  );
};

import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from '@fastify/type-provider-zod';
import { z } from 'zod';
import type { ProjectionRunner, RunnerStatus } from '../projection-runner';
import { sendProblem } from './problem';
import { problemSchema } from './schemas';

export interface HealthRouteOptions {
  /** Each check throws when its dependency cannot be reached. */
  readonly readinessChecks: Readonly<Record<string, () => Promise<void>>>;
  readonly runners: readonly ProjectionRunner[];
  /** True once the process drains: not ready, whatever the stores say. */
  readonly draining: () => boolean;
}

const runnerStatusSchema = z.object({
  projection: z.string(),
  active: z.boolean().describe('false on a stand-by whose peer holds the projection'),
  position: z.string().nullable(),
  eventsProjected: z.string(),
  eventsBehind: z.string().nullable().describe('null where the event store cannot count cheaply'),
  secondsBehind: z.number(),
  lastError: z.string().nullable(),
  parked: z.number().int().describe('Events set aside because they cannot be applied (GET /parked?projection=…)'),
});

/** A page built from read models older than this says it is stale (GET /status). */
export const STALE_AFTER_SECONDS = 10;

/** Each runner's status as JSON (counts as decimal strings): what GET /projections and GET /status both report. */
async function projectionStatuses(runners: readonly ProjectionRunner[]) {
  return Promise.all(runners.map(async (runner) => statusJson(await runner.status())));
}
const statusJson = (status: RunnerStatus) => ({
  ...status,
  eventsProjected: status.eventsProjected.toString(),
  eventsBehind: status.eventsBehind === null ? null : status.eventsBehind.toString(),
});

export const healthRoutes: FastifyPluginAsync<HealthRouteOptions> = async (app, { readinessChecks, runners, draining }) => {
  const typed = app.withTypeProvider<ZodTypeProvider>();
  typed.get(
    '/health',
    {
      config: { access: 'open' },
      schema: { operationId: 'getHealth', summary: 'The process is alive', tags: ['operations'], response: { 200: z.object({ status: z.literal('ok') }) } },
    },
    async () => ({ status: 'ok' as const }),
  );
  typed.get(
    '/ready',
    {
      config: { access: 'open' },
      schema: {
        operationId: 'getReadiness',
        summary: 'The stores are reachable and the process is not shutting down',
        tags: ['operations'],
        response: { 200: z.object({ status: z.literal('ready') }), 503: problemSchema },
      },
    },
    async (request, reply) => {
      if (draining()) return sendProblem(reply, 503, 'not-ready', 'Not ready', { detail: 'shutting down: finishing the work in flight' });
      const failed: string[] = [];
      await Promise.all(
        Object.entries(readinessChecks).map(async ([name, check]) => {
          try {
            await check();
          } catch (error) {
            request.log.warn({ err: error, check: name }, 'readiness check failed');
            failed.push(name);
          }
        }),
      );
      if (failed.length > 0) {
        return sendProblem(reply, 503, 'not-ready', 'Not ready', { detail: `unreachable: ${failed.sort().join(', ')}` });
      }
      return { status: 'ready' as const };
    },
  );
  typed.get(
    '/projections',
    {
      config: { access: 'operator' },
      schema: {
        operationId: 'listProjections',
        summary: 'Where each projection stands: its checkpoint and how far it lags behind the log',
        tags: ['operations'],
        response: { 200: z.object({ projections: z.array(runnerStatusSchema) }) },
      },
    },
    async () => ({ projections: await projectionStatuses(runners) }),
  );
  typed.get(
    '/status',
    {
      config: { access: 'any-key' },
      schema: {
        operationId: 'getStatus',
        summary: 'How fresh the read models are: what every page built from them should say about itself',
        description: `\`stale\` when a projection has not applied an event recorded more than ${STALE_AFTER_SECONDS} seconds ago.`,
        tags: ['operations'],
        response: {
          200: z
            .object({
              projections: z.array(
                z.object({
                  projection: z.string(),
                  eventsBehind: z.string().nullable().describe('null where the event store cannot count cheaply'),
                  secondsBehind: z.number().describe('age of the oldest event not yet projected; 0 when caught up'),
                  parked: z.number().int().describe('events set aside because they could not be applied'),
                }),
              ),
              stale: z.boolean(),
            })
            .meta({ id: 'Status' }),
        },
      },
    },
    async () => {
      const statuses = await projectionStatuses(runners);
      return {
        projections: statuses.map((s) => ({
          projection: s.projection,
          eventsBehind: s.eventsBehind,
          secondsBehind: s.secondsBehind,
          parked: s.parked,
        })),
        stale: statuses.some((s) => s.secondsBehind > STALE_AFTER_SECONDS),
      };
    },
  );
};

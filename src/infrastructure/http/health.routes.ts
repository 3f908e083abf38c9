import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from '@fastify/type-provider-zod';
import { z } from 'zod';
import type { ProjectionRunner } from '../projection-runner';
import { problemSchema, sendProblem } from './problem';

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
    async () => ({
      projections: await Promise.all(
        runners.map(async (runner) => {
          const status = await runner.status();
          return {
            ...status,
            eventsProjected: status.eventsProjected.toString(),
            eventsBehind: status.eventsBehind === null ? null : status.eventsBehind.toString(),
          };
        }),
      ),
    }),
  );
};

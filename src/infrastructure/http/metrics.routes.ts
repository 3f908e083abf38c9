import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import type { Metrics } from '../metrics';

export interface MetricsRouteOptions {
  readonly metrics: Metrics;
}

/** GET /metrics: Prometheus's text format, for a key with the role `metrics` (or `admin`). */
export const metricsRoutes: FastifyPluginAsync<MetricsRouteOptions> = async (app, { metrics }) => {
  app.get(
    '/metrics',
    {
      config: { access: 'metrics' },
      schema: {
        operationId: 'getMetrics',
        summary: "This process's metrics, in Prometheus's text format",
        description:
          'Counts read from the read models (open breaks, parked events, quarantine, projection lag, alerts waiting) are ' +
          'queried at scrape time and are the same whichever process answers; counters of work (webhooks by outcome, ' +
          'their duration, Cas calls, heal attempts, sweeps, alert deliveries) and the process metrics are this process\'s own.',
        tags: ['operations'],
        // The success is text; errors are problem+json all the same (openapi.ts rewrites their content type).
        produces: ['text/plain'],
        response: { 200: z.string().describe('Prometheus text exposition format 0.0.4') },
      },
    },
    async (_request, reply) => reply.type(metrics.contentType).send(await metrics.scrape()),
  );
};

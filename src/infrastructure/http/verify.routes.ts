import type { ZodTypeProvider } from '@fastify/type-provider-zod';
import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { type ReadModels, statement } from '../../projections/ledger.queries';
import type { VerifyOutcome } from '../verify-runs';
import { sendProblem } from './problem';
import { fromNotAfterTo, periodFields, problemSchema } from './schemas';

export interface VerifyRouteOptions {
  readonly readModels: ReadModels;
  /** One verify at a time, across processes: `busy` names the one running. */
  readonly verify: () => Promise<VerifyOutcome>;
}

/** The auditors' checks: a statement's digest against today's books, and the whole log replayed against the read models. */
export const verifyRoutes: FastifyPluginAsync<VerifyRouteOptions> = async (app, { readModels, verify }) => {
  const typed = app.withTypeProvider<ZodTypeProvider>();

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

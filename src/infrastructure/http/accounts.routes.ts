import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from '@fastify/type-provider-zod';
import { z } from 'zod';
import { ACCOUNTS_KEY, balanceAt, getAccount, listAccounts, type ReadModels, statementLine } from '../../projections/ledger.queries';
import { sendProblem } from './problem';
import {
  accountIdParams,
  accountSchema,
  cursorOf,
  lineSchema,
  moneySchema,
  nextCursorSchema,
  pagingFields,
  problemSchema,
  unknownAccount,
} from './schemas';

/** What the accountants' read routes (accounts, statements, breaks) need: the read models, on the read pool. */
export interface ReadRouteOptions {
  readonly readModels: ReadModels;
}

const ACCOUNTS_CURSOR = 'accounts';

export const accountRoutes: FastifyPluginAsync<ReadRouteOptions> = async (app, { readModels }) => {
  const typed = app.withTypeProvider<ZodTypeProvider>();

  typed.get(
    '/accounts',
    {
      config: { access: 'accountant' },
      schema: {
        operationId: 'listAccounts',
        summary: 'Every account the ledger has seen, with its balance, a page at a time',
        description: 'Ordered by bank (fiId), account number, then id; page with `limit` and the `nextCursor` of the page before.',
        tags: ['accounts'],
        querystring: z.object(pagingFields(ACCOUNTS_CURSOR, ACCOUNTS_KEY)),
        response: { 200: z.object({ accounts: z.array(accountSchema), nextCursor: nextCursorSchema }), 400: problemSchema },
      },
    },
    async (request) => {
      const page = await listAccounts(readModels, { limit: request.query.limit, after: request.query.cursor ?? null });
      return { accounts: page.items, nextCursor: cursorOf(ACCOUNTS_CURSOR, page.next) };
    },
  );

  typed.get(
    '/accounts/:id',
    {
      config: { access: 'accountant' },
      schema: {
        operationId: 'getAccount',
        summary: 'One account',
        tags: ['accounts'],
        params: accountIdParams,
        response: { 200: accountSchema, 404: problemSchema },
      },
    },
    async (request, reply) => {
      const account = await getAccount(readModels, request.params.id);
      if (!account) return sendProblem(reply, 404, 'unknown-account', 'Unknown account', unknownAccount(request.params.id));
      return account;
    },
  );

  typed.get(
    '/accounts/:id/balance',
    {
      config: { access: 'accountant' },
      schema: {
        operationId: 'getBalanceAt',
        summary: 'The balance as of an instant',
        description: 'after(t) of the last line in statement order whose transactionDateTime ≤ at; null and null when there is none.',
        tags: ['accounts'],
        params: accountIdParams,
        querystring: z.object({ at: z.iso.datetime({ offset: true }).describe('ISO-8601 instant with Z or an offset') }),
        response: {
          200: z.object({
            accountId: z.guid(),
            at: z.string(),
            balance: moneySchema.nullable(),
            transactionId: z.string().nullable().describe('The line that balance is after'),
          }),
          400: problemSchema,
          404: problemSchema,
        },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      const result = await balanceAt(readModels, id, new Date(request.query.at));
      if (!result) return sendProblem(reply, 404, 'unknown-account', 'Unknown account', unknownAccount(id));
      return { accountId: id, at: request.query.at, balance: result.balance, transactionId: result.transactionId };
    },
  );

  typed.get(
    '/accounts/:id/lines/:transactionId',
    {
      config: { access: 'accountant' },
      schema: {
        operationId: 'getStatementLine',
        summary: "One line of the account's statement, by its Cas transaction id",
        description: 'Its `transactionDate` names the statement period that holds it (a break or a late delivery points at lines).',
        tags: ['accounts'],
        params: z.object({ id: accountIdParams.shape.id, transactionId: z.string().describe('The Cas transaction id') }),
        response: { 200: lineSchema, 404: problemSchema },
      },
    },
    async (request, reply) => {
      const { id, transactionId } = request.params;
      const line = await statementLine(readModels, id, transactionId);
      if (!line) {
        return sendProblem(reply, 404, 'unknown-line', 'No such line', { detail: `account ${id} has no line for transaction ${transactionId}` });
      }
      return line;
    },
  );
};

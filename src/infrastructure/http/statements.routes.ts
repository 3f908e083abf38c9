import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from '@fastify/type-provider-zod';
import { z } from 'zod';
import { decodeCursor, encodeCursor, type StatementPage, statementPage, statementVersions } from '../../projections/ledger.queries';
import type { ReadRouteOptions } from './accounts.routes';
import { sendProblem } from './problem';
import {
  accountIdParams,
  breakSchema,
  fromNotAfterTo,
  lineSchema,
  moneySchema,
  periodFields,
  problemSchema,
  unknownAccount,
} from './schemas';
import { coalescedVersionReads, type StatementCache, statementCacheKey } from './statement-cache';
import { prefersCsv, streamStatementCsv } from './statement-csv';

export const statementSchema = z
  .object({
    accountId: z.guid(),
    currency: z.string(),
    from: z.iso.date(),
    to: z.iso.date(),
    openingBalance: moneySchema.nullable().describe('before(first line), or the balance at the end of the day before `from`'),
    closingBalance: moneySchema.nullable().describe('after(last line), or the opening balance when the period has no lines'),
    totalCredits: moneySchema,
    totalDebits: moneySchema.describe('The sum of the magnitudes of the debits (a positive figure)'),
    reconciled: z
      .boolean()
      .describe(
        'Every consecutive pair of lines links, the first line links to the line before it (unknown balances do not), and no ' +
          'transaction of the account dated on or before `to` is parked',
      ),
    parkedEvents: z
      .number()
      .int()
      .describe('Parked BalanceChanged events of the account dated on or before `to` (or of unreadable date): they may belong in or carry into the period'),
    digest: z.string().describe('SHA-256 (hex) of the whole period: each line (event id, amount, balances), then opening and closing'),
    lineCount: z.number().int().describe('Lines in the whole period'),
    breaks: z.array(breakSchema).describe('Open breaks with a line in the period'),
    lines: z.array(lineSchema).describe('One page, in statement order'),
    nextCursor: z.string().nullable().describe('Pass as `cursor` for the next page; null on the last page'),
  })
  .meta({ id: 'Statement' });

const statementQuery = z
  .object({
    ...periodFields,
    limit: z.coerce.number().int().min(1).max(5000).default(500).describe('Lines per page'),
    cursor: z
      .string()
      .transform((text, ctx) => {
        const cursor = decodeCursor(text);
        if (cursor) return cursor;
        ctx.addIssue({ code: 'custom', message: 'not a cursor this API returned' });
        return z.NEVER;
      })
      .optional()
      .describe('nextCursor of the previous page'),
    format: z.enum(['json', 'csv']).optional().describe('csv: the same as Accept: text/csv'),
  })
  .refine(...fromNotAfterTo);

/** A statement of one account over a period: JSON a page of lines at a time, or the whole period as CSV. */
export const statementRoutes: FastifyPluginAsync<ReadRouteOptions & { readonly cache: StatementCache | null }> = async (app, { readModels, cache }) => {
  const typed = app.withTypeProvider<ZodTypeProvider>();
  const versionOf = coalescedVersionReads((ids) => statementVersions(readModels, ids));

  typed.get(
    '/accounts/:id/statement',
    {
      config: { access: 'accountant', limit: 'statements' },
      schema: {
        operationId: 'getStatement',
        summary: 'A reconciled statement of the bank-local dates [from, to]',
        description:
          'Lines are paged (`limit`, `cursor`); opening and closing balances, totals, `reconciled`, `digest` and `breaks` ' +
          'always cover the whole period. With `Accept: text/csv` or `format=csv` the answer is CSV (UTF-8 with a BOM): a ' +
          'header row, an opening-balance row, every line of the period (not paged) and a closing-balance row.',
        tags: ['accounts'],
        params: accountIdParams,
        querystring: statementQuery,
        response: { 200: statementSchema, 400: problemSchema, 404: problemSchema },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      const { from, to, limit, cursor, format } = request.query;
      const csv = format === 'csv' || (format === undefined && prefersCsv(request.headers.accept));
      if (csv) {
        const stream = await streamStatementCsv(readModels, id, { from, to }, request.log);
        if (!stream) return sendProblem(reply, 404, 'unknown-account', 'Unknown account', unknownAccount(id));
        const name = `statement-${stream.accountNumber.replace(/[^A-Za-z0-9_-]/g, '_')}-${from}-${to}.csv`;
        return reply
          .type('text/csv; charset=utf-8')
          .header('content-disposition', `attachment; filename="${name}"`)
          // A stream is sent as it comes: the response schema describes the JSON answer only.
          .send(stream.body as never);
      }
      // The CSV is an export of a whole period, streamed a chunk at a time: it is never held whole, so never cached.
      const key = cache && statementCacheKey(readModels.schema, id, { from, to, limit, cursor: cursor ? encodeCursor(cursor) : null });
      if (cache && key) {
        // The version is read (only when an answer is stored) after the request arrived: an answer computed at it
        // shows every change committed by now.
        const cached = await cache.get(key, () => versionOf(id));
        if (cached) return reply.type(JSON_TYPE).send(cached as never);
      }
      const result = await statementPage(readModels, id, { from, to, limit, cursor: cursor ?? null });
      if (!result) return sendProblem(reply, 404, 'unknown-account', 'Unknown account', unknownAccount(id));
      // Already JSON: fastify sends bytes as they are, past the response serializer.
      const body = statementJson(result);
      if (cache && key && result.version) cache.set(key, result.version, body);
      return reply.type(JSON_TYPE).send(body as never);
    },
  );
};

const JSON_TYPE = 'application/json; charset=utf-8';
const COMMA = 0x2c;

/**
 * The JSON answer (statementSchema, in its key order) around the page of lines as PostgreSQL wrote them: the same
 * bytes the route's serializer would write (test/api/accounts.test.ts checks it), without parsing and writing a
 * page of lines again in Node, nor joining them into one string of the whole page.
 */
export function statementJson(s: StatementPage): Buffer {
  const head = JSON.stringify({
    accountId: s.account.id,
    currency: s.account.currency,
    from: s.from,
    to: s.to,
    openingBalance: s.openingBalance,
    closingBalance: s.closingBalance,
    totalCredits: s.totalCredits,
    totalDebits: s.totalDebits,
    reconciled: s.reconciled,
    parkedEvents: s.parkedEvents,
    digest: s.digest,
    lineCount: s.lineCount,
    breaks: s.breaks,
  });
  const open = `${head.slice(0, -1)},"lines":[`;
  const close = `],"nextCursor":${JSON.stringify(s.nextCursor)}}`;
  // Each line written into the answer's bytes as it is: never joined into one string of the whole page first.
  let size = Buffer.byteLength(open) + Buffer.byteLength(close) + Math.max(0, s.pageLines.length - 1);
  for (const line of s.pageLines) size += Buffer.byteLength(line);
  const body = Buffer.allocUnsafe(size);
  let at = body.write(open);
  s.pageLines.forEach((line, i) => {
    if (i > 0) at = body.writeUInt8(COMMA, at);
    at += body.write(line, at);
  });
  body.write(close, at);
  return body;
}

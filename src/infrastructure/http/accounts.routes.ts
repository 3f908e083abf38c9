import { PassThrough } from 'node:stream';
import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from '@fastify/type-provider-zod';
import { stringify as stringifyCsv } from 'csv-stringify/sync';
import { z } from 'zod';
import {
  ACCOUNTS_KEY,
  balanceAt,
  decodeCursor,
  exportStatement,
  getAccount,
  type LineView,
  listAccounts,
  type ReadModels,
  type Statement,
  statement,
  statementLine,
} from '../../projections/ledger.queries';
import { cursorOf, nextCursorSchema, pagingFields } from './paging';
import { problemSchema, sendProblem } from './problem';

export interface ReadRouteOptions {
  readonly readModels: ReadModels;
}

/** Money leaves as an exact decimal string of whole đồng (JSON numbers are doubles): as the read model's queries give it. */
export const moneySchema = z
  .string()
  .regex(/^-?(0|[1-9]\d*)$/)
  .meta({ id: 'Money', description: 'An exact decimal string of whole đồng, e.g. "3330000"', example: '3330000' });

export const breakSchema = z
  .object({
    id: z.guid(),
    accountId: z.guid(),
    afterTransactionId: z.string().describe('The line whose balance after does not lead on'),
    beforeTransactionId: z.string().describe('The next line in statement order, whose balance before differs'),
    missingAmount: moneySchema.describe('before(next) − after(previous): what the missing transactions should add up to'),
    status: z.enum(['open', 'resolved']),
    openedAt: z.iso.datetime(),
    resolvedAt: z.iso.datetime().nullable(),
    resolution: z.string().nullable().describe('filled, narrowed or reordered'),
    resolvedBySource: z.string().nullable().describe("'backfill' when healed by a transaction pulled back from Cas"),
    healing: z.object({
      attempts: z.number().int(),
      lastAttemptAt: z.iso.datetime().nullable(),
      lastOutcome: z.string().nullable(),
      lastDetail: z.string().nullable(),
    }),
  })
  .meta({ id: 'Break', description: "A gap in the bank's running-balance chain between two consecutive lines" });

const accountSchema = z
  .object({
    id: z.guid().describe('Opaque and URL-safe'),
    fiId: z.string(),
    fiName: z.string().nullable(),
    accountNumber: z.string(),
    currency: z.string(),
    balance: moneySchema.nullable().describe('after(t) of the last line in statement order'),
    lastTransactionAt: z.string().nullable().describe('transactionDateTime of the last line, as the bank sent it'),
    openBreaks: z.number().int(),
    lateDeliveries: z.number().int(),
    parkedEvents: z
      .number()
      .int()
      .describe('Events of this account the projection could not apply and set aside (GET /parked); its statements are not reconciled meanwhile'),
  })
  .meta({ id: 'Account' });

const lineSchema = z
  .object({
    transactionId: z.string(),
    eventId: z.guid().describe('The BalanceChanged event this line comes from'),
    transactionDate: z.iso.date(),
    transactionDateTime: z.string().describe('As the bank sent it, with its offset'),
    bookingDate: z.iso.date().nullable(),
    amount: moneySchema.describe('Positive for a credit, negative for a debit'),
    runningBalance: moneySchema.nullable().describe("The bank's running balance as sent (null when it sent none)"),
    balanceBefore: moneySchema.nullable(),
    balanceAfter: moneySchema.nullable().describe('runningBalance, or carried from the line before when the bank sent none'),
    description: z.string().nullable(),
    reference: z.string().nullable(),
    counterAccountNumber: z.string().nullable(),
    counterAccountName: z.string().nullable(),
    counterAccountBankName: z.string().nullable(),
    virtualAccountNumber: z.string().nullable(),
    late: z.boolean().describe('Delivered after a line that follows it in statement order'),
  })
  .meta({ id: 'StatementLine' });

const statementSchema = z
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

const idParams = z.object({ id: z.string().describe('Account id (from GET /accounts)') });
const unknownAccount = (id: string) => ({ detail: `no account with id ${id}` });

/** A statement period: bank-local dates, both included. Shared with the audit route that re-checks a digest. */
export const periodFields = {
  from: z.iso.date().describe('First bank-local date, YYYY-MM-DD'),
  to: z.iso.date().describe('Last bank-local date, YYYY-MM-DD (included)'),
};
export const fromNotAfterTo: [(q: { from: string; to: string }) => boolean, { path: string[]; message: string }] = [
  (q) => q.from <= q.to,
  { path: ['from'], message: 'must not be after to' },
];

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
        params: idParams,
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
        params: idParams,
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
        params: z.object({ id: idParams.shape.id, transactionId: z.string().describe('The Cas transaction id') }),
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
        params: idParams,
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
      const result = await statement(readModels, id, { from, to, limit, cursor: cursor ?? null });
      if (!result) return sendProblem(reply, 404, 'unknown-account', 'Unknown account', unknownAccount(id));
      return {
        accountId: result.account.id,
        currency: result.account.currency,
        from: result.from,
        to: result.to,
        openingBalance: result.openingBalance,
        closingBalance: result.closingBalance,
        totalCredits: result.totalCredits,
        totalDebits: result.totalDebits,
        reconciled: result.reconciled,
        parkedEvents: result.parkedEvents,
        digest: result.digest,
        lineCount: result.lineCount,
        breaks: [...result.breaks],
        lines: [...result.lines],
        nextCursor: result.nextCursor,
      };
    },
  );
};

/** text/csv wins when the client names it and does not rank application/json above it. */
function prefersCsv(accept: string | undefined): boolean {
  if (!accept) return false;
  const weight = (type: string) =>
    Math.max(
      -1,
      ...accept.split(',').flatMap((range) => {
        const [media = '', ...params] = range.split(';').map((p) => p.trim().toLowerCase());
        if (media !== type) return [];
        const q = params.find((p) => p.startsWith('q='));
        return [q ? Number.parseFloat(q.slice(2)) || 0 : 1];
      }),
    );
  const csv = weight('text/csv');
  return csv > 0 && csv >= weight('application/json');
}

const CSV_COLUMNS = [
  'row',
  'transactionId',
  'transactionDate',
  'transactionDateTime',
  'bookingDate',
  'amount',
  'balanceBefore',
  'balanceAfter',
  'runningBalance',
  'description',
  'reference',
  'counterAccountNumber',
  'counterAccountName',
  'counterAccountBankName',
  'virtualAccountNumber',
  'late',
  'eventId',
] as const;
type CsvRow = Partial<Record<(typeof CSV_COLUMNS)[number], string | null>>;

/** Text a spreadsheet would run as a formula (=, +, -, @ first) is kept as text by a leading '. */
const inert = (value: string) => (/^[=+\-@\t\r]/.test(value) ? `'${value}` : value);

const TEXT_COLUMNS = new Set<string>([
  'transactionId',
  'description',
  'reference',
  'counterAccountNumber',
  'counterAccountName',
  'counterAccountBankName',
  'virtualAccountNumber',
]);

/** Resolves when the stream wants more, rejects when it was closed first (the client went away). */
function drained(stream: PassThrough): Promise<void> {
  return new Promise((resolve, reject) => {
    const onDrain = () => (stop(), resolve());
    const onClose = () => (stop(), reject(new Error('the client went away')));
    const stop = () => (stream.off('drain', onDrain), stream.off('close', onClose));
    stream.on('drain', onDrain);
    stream.on('close', onClose);
  });
}

/** RFC 4180 quoting by csv-stringify; the header goes before the first rows only, so chunks concatenate to one CSV. */
const csvText = (rows: readonly CsvRow[], header: boolean): string =>
  stringifyCsv(rows as CsvRow[], { header, columns: [...CSV_COLUMNS], record_delimiter: 'windows' });

const lineRow = (l: LineView): CsvRow => {
  const row: CsvRow = { row: 'line', ...l, late: String(l.late) };
  return Object.fromEntries(Object.entries(row).map(([c, v]) => [c, typeof v === 'string' && TEXT_COLUMNS.has(c) ? inert(v) : v]));
};

/**
 * The statement CSV, streamed: the BOM (spreadsheet programs then read UTF-8, Vietnamese, correctly), a header row
 * and the opening balance, every line of the period chunk by chunk as exportStatement reads them (one snapshot),
 * then the closing balance. A slow client holds the reading back; memory stays at one chunk. Null for an unknown
 * account (nothing has been sent then). A failure after the first bytes cuts the response short: the closing row
 * is missing, so a truncated file is never mistaken for a whole one.
 */
async function streamStatementCsv(
  readModels: ReadModels,
  accountId: string,
  period: { from: string; to: string },
  log: { warn(obj: object, msg: string): void },
): Promise<{ body: PassThrough; accountNumber: string } | null> {
  const body = new PassThrough();
  const write = async (text: string) => {
    if (body.destroyed) throw new Error('the client went away');
    if (!body.write(text)) await drained(body);
  };
  let started!: (head: Statement | null) => void;
  const head = new Promise<Statement | null>((resolve) => (started = resolve));
  const done = exportStatement(readModels, accountId, period, {
    async head(s) {
      await write(`\uFEFF${csvText([{ row: 'opening', transactionDate: s.from, balanceAfter: s.openingBalance, description: 'Opening balance' }], true)}`);
      started(s);
    },
    async lines(lines) {
      if (lines.length > 0) await write(csvText(lines.map(lineRow), false));
    },
  });
  const outcome = done.then(
    async (found) => {
      if (!found) return started(null);
      const s = await head;
      body.end(csvText([{ row: 'closing', transactionDate: s!.to, balanceAfter: s!.closingBalance, description: 'Closing balance' }], false));
    },
    (error: unknown) => {
      log.warn({ err: error, accountId }, 'statement CSV cut short');
      body.destroy(error instanceof Error ? error : new Error(String(error)));
      throw error;
    },
  );
  // Before the first bytes a failure is the request's (503 when the store is down); after them it only ends the stream.
  const first = await Promise.race([head, outcome.then(() => head)]);
  outcome.catch(() => {});
  return first ? { body, accountNumber: first.account.accountNumber } : null;
}

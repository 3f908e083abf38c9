import { z } from 'zod';
import { decodeKeyset, encodeKeyset, type KeyPart } from '../../projections/paging';

/**
 * The HTTP shapes that more than one route file answers with: problems, money, accounts, lines, breaks, periods and
 * paging. Each has an OpenAPI id, so the generated document names it once and every route refers to it.
 */

/** RFC 9457 problem details. `errors` names every bad field or parameter. */
export const problemSchema = z
  .looseObject({
    type: z.string(),
    title: z.string(),
    status: z.number().int(),
    detail: z.string().optional(),
    requestId: z.string().optional(),
    errors: z.array(z.object({ field: z.string(), message: z.string() })).optional(),
  })
  .meta({ id: 'Problem' });

export type ProblemBody = z.infer<typeof problemSchema>;

/** Cas's failures: 422 refused, 429 rate limit, 502 failed, 504 no answer; 503 when BankHub is not configured. */
export const casFailures = { 422: problemSchema, 429: problemSchema, 502: problemSchema, 503: problemSchema, 504: problemSchema };

/** Money leaves as an exact decimal string of whole đồng (JSON numbers are doubles): as the read model's queries give it. */
export const moneySchema = z
  .string()
  .regex(/^-?(0|[1-9]\d*)$/)
  .meta({ id: 'Money', description: 'An exact decimal string of whole đồng, e.g. "3330000"', example: '3330000' });

export const accountSchema = z
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

export const lineSchema = z
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

/** An account of a linked grant, as Cas's /identity names it. */
export const linkedAccountSchema = z.object({
  accountNumber: z.string(),
  accountName: z.string().nullable(),
  currency: z.string().nullable(),
  fiId: z.string().nullable(),
});

export const accountIdParams = z.object({ id: z.string().describe('Account id (from GET /accounts)') });
export const unknownAccount = (id: string) => ({ detail: `no account with id ${id}` });

/** A statement period: bank-local dates, both included (statements, and the audit route that re-checks a digest). */
export const periodFields = {
  from: z.iso.date().describe('First bank-local date, YYYY-MM-DD'),
  to: z.iso.date().describe('Last bank-local date, YYYY-MM-DD (included)'),
};
export const fromNotAfterTo: [(q: { from: string; to: string }) => boolean, { path: string[]; message: string }] = [
  (q) => q.from <= q.to,
  { path: ['from'], message: 'must not be after to' },
];

/** Every listing pages the same way: `limit` (default 500, at most 5 000) and the opaque `cursor` it handed out. */
export const pagingFields = (tag: string, parts: readonly KeyPart[]) => ({
  limit: z.coerce.number().int().min(1).max(5000).default(500).describe('Items per page (at most 5 000)'),
  cursor: z
    .string()
    .transform((text, ctx) => {
      const key = decodeKeyset(tag, text, parts);
      if (key) return key;
      ctx.addIssue({ code: 'custom', message: 'not a cursor this listing returned' });
      return z.NEVER;
    })
    .optional()
    .describe('nextCursor of the previous page; omit for the first page'),
});

export const nextCursorSchema = z.string().nullable().describe('Pass as `cursor` for the next page; null on the last page');

export const cursorOf = (tag: string, next: readonly string[] | null): string | null => (next === null ? null : encodeKeyset(tag, next));

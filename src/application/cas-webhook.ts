import { isLosslessNumber, LosslessNumber, parse as parseLosslessJson } from 'lossless-json';
import { z } from 'zod';
import type { BankTransaction, JsonValue } from '../domain/bank-transaction';
import { type Currency, isSupportedCurrency, parseMinorUnits } from '../domain/money';
import { err, ok, type Result } from '../domain/result';

/** One thing wrong with a delivery, named by its path in the body (`transaction.amount`). */
export interface FieldProblem {
  readonly field: string;
  readonly message: string;
}

export type CasWebhook =
  | { readonly kind: 'ping' }
  | { readonly kind: 'transaction'; readonly envelope: Envelope; readonly transaction: BankTransaction }
  | { readonly kind: 'grant'; readonly envelope: Envelope; readonly error: CasErrorBody | null }
  | { readonly kind: 'other'; readonly envelope: Envelope; readonly body: JsonValue };

interface Envelope {
  readonly environment: string | null;
  readonly webhookType: string;
  readonly webhookCode: string;
  readonly grantId: string | null;
}

interface CasErrorBody {
  readonly errorType: string | null;
  readonly errorCode: string | null;
  readonly errorMessage: string | null;
}

const BOOKED_CODES = new Set(['DEFAULT_UPDATE', 'TRANSACTION_UPDATE']);
const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Reads a webhook body exactly: UTF-8 strictly, numbers as their source text (lossless-json), so that money
 * never passes through a double. Every problem is reported, not just the first.
 */
export function parseCasWebhook(body: Uint8Array): Result<CasWebhook, FieldProblem[]> {
  let text: string;
  try {
    text = utf8.decode(body);
  } catch {
    return err([{ field: '(body)', message: 'the body is not valid UTF-8' }]);
  }
  let json: unknown;
  try {
    json = parseExactJson(text);
  } catch (error) {
    return err([{ field: '(body)', message: `malformed JSON: ${(error as Error).message}` }]);
  }
  if (!isPlainObject(json)) return err([{ field: '(body)', message: 'expected a JSON object' }]);
  if (Object.keys(json).length === 0) return ok({ kind: 'ping' });

  const envelope = envelopeSchema.safeParse(json);
  if (!envelope.success) return err(problemsOf(envelope.error));
  const { webhookType, webhookCode } = envelope.data;
  if (webhookType === 'TRANSACTIONS' && BOOKED_CODES.has(webhookCode)) {
    const tx = casTransactionSchema.safeParse((json as { transaction?: unknown }).transaction);
    if (!tx.success) return err(problemsOf(tx.error, ['transaction']));
    return ok({ kind: 'transaction', envelope: envelope.data, transaction: tx.data });
  }
  if (webhookType === 'GRANT') {
    const error = casErrorSchema.nullish().safeParse((json as { error?: unknown }).error);
    if (!error.success) return err(problemsOf(error.error, ['error']));
    const e = error.data;
    const casError = e ? { errorType: e.errorType ?? null, errorCode: e.errorCode ?? null, errorMessage: e.errorMessage ?? null } : null;
    return ok({ kind: 'grant', envelope: envelope.data, error: casError });
  }
  return ok({ kind: 'other', envelope: envelope.data, body: toPlainJson(json) });
}

/** Validates one transaction object as Cas sends it (webhook `transaction`, or an item of GET /transactions). */
export function parseCasTransaction(value: unknown): Result<BankTransaction, FieldProblem[]> {
  const parsed = casTransactionSchema.safeParse(value);
  return parsed.success ? ok(parsed.data) : err(problemsOf(parsed.error));
}

/**
 * Parses JSON text keeping every number's exact value (as a LosslessNumber). The native parser is ten times faster
 * and exact for integers up to 2^53, so it is used when no number in the text has a fraction or an exponent and
 * every number it meets is a safe integer; otherwise lossless-json reads the text.
 */
export function parseExactJson(text: string): unknown {
  if (!MAYBE_INEXACT.test(text)) {
    let exact = true;
    const value: unknown = JSON.parse(text, (_key, v: unknown) => {
      if (typeof v !== 'number') return v;
      if (!Number.isSafeInteger(v)) exact = false;
      return new LosslessNumber(String(v));
    });
    if (exact) return value;
  }
  return parseLosslessJson(text);
}

/** A number in value position with a fraction or an exponent (a string that merely looks so costs a slower parse). */
const MAYBE_INEXACT = /(^|[:,[])\s*-?\d+(\.|[eE])/;

const nullableText = z.string().nullish();
const isoDate = z.iso.date({ error: 'expected a date YYYY-MM-DD' });
const isoInstant = z.iso.datetime({ offset: true, local: false, error: 'expected an ISO-8601 instant with an offset' });

/** The exact text of a JSON number, or of a string holding one (other Casso shapes send strings). */
const numberText = (value: unknown): string | null =>
  isLosslessNumber(value) ? value.value : typeof value === 'string' ? value.trim() : null;

// One transform per money field (no union): this schema runs on every webhook.
const exactInteger = (what: string, nullable: boolean) =>
  z.unknown().optional().transform((value, ctx): bigint | null => {
    if (nullable && (value === null || value === undefined)) return null;
    const text = numberText(value);
    const parsed = text === null ? null : parseMinorUnits(text);
    if (parsed?.ok) return parsed.value;
    ctx.addIssue({
      code: 'custom',
      message:
        parsed?.error === 'fractional_amount'
          ? `${what} must be a whole number of đồng (VND has no minor unit)`
          : `${what} must be a number`,
    });
    return z.NEVER;
  });

const accountNumber = z.unknown().optional().transform((value, ctx) => {
  const text = numberText(value);
  if (text === null || !/^[0-9A-Za-z.\-]{1,64}$/.test(text)) {
    ctx.addIssue({ code: 'custom', message: 'accountNumber must be 1–64 letters or digits (a string or a number)' });
    return z.NEVER;
  }
  return text;
});

const envelopeSchema = z
  .object({
    environment: nullableText,
    webhookType: z.string({ error: 'webhookType is required' }).min(1),
    webhookCode: z.string({ error: 'webhookCode is required' }).min(1),
    grantId: nullableText,
  })
  .transform((e): Envelope => ({ ...e, environment: e.environment ?? null, grantId: e.grantId ?? null }));

const casErrorSchema = z.object({
  errorType: nullableText,
  errorCode: nullableText,
  errorMessage: nullableText,
});

const casTransactionSchema = z
  .object(
    {
      id: z.string({ error: 'id (the Cas transaction id) is required' }).regex(/^[0-9A-Za-z_-]{1,128}$/, 'id must be 1–128 letters, digits, _ or -'),
      transactionCode: nullableText,
      reference: nullableText,
      transactionDate: isoDate,
      transactionDateTime: isoInstant,
      bookingDate: isoDate.nullish(),
      amount: exactInteger('amount', false),
      description: nullableText,
      runningBalance: exactInteger('runningBalance', true),
      accountNumber,
      virtualAccountNumber: nullableText,
      virtualAccountName: nullableText,
      paymentChannel: nullableText,
      counterAccountNumber: z.unknown().optional().transform((v) => (v === null || v === undefined ? null : (numberText(v) ?? String(v)))),
      counterAccountName: nullableText,
      counterAccountBankId: nullableText,
      counterAccountBankName: nullableText,
      paymentMeta: z.unknown().optional(),
      fiId: z.string({ error: 'fiId (the bank) is required' }).min(1),
      fiName: nullableText,
      fiServiceId: nullableText,
      fiServiceName: nullableText,
      currency: z.string({ error: 'currency is required' }).refine(isSupportedCurrency, 'unsupported currency: only VND is booked'),
    },
    { error: 'transaction must be an object' },
  )
  // Absent and null are the same to the ledger: every optional field becomes null, in one pass.
  .transform(
    (t): BankTransaction => ({
      id: t.id,
      transactionCode: t.transactionCode ?? null,
      reference: t.reference ?? null,
      transactionDate: t.transactionDate,
      transactionDateTime: t.transactionDateTime,
      bookingDate: t.bookingDate ?? null,
      amount: t.amount as bigint,
      description: t.description ?? null,
      runningBalance: t.runningBalance,
      accountNumber: t.accountNumber,
      virtualAccountNumber: t.virtualAccountNumber ?? null,
      virtualAccountName: t.virtualAccountName ?? null,
      paymentChannel: t.paymentChannel ?? null,
      counterAccountNumber: t.counterAccountNumber,
      counterAccountName: t.counterAccountName ?? null,
      counterAccountBankId: t.counterAccountBankId ?? null,
      counterAccountBankName: t.counterAccountBankName ?? null,
      paymentMeta: t.paymentMeta === undefined || t.paymentMeta === null ? null : toPlainJson(t.paymentMeta),
      fiId: t.fiId,
      fiName: t.fiName ?? null,
      fiServiceId: t.fiServiceId ?? null,
      fiServiceName: t.fiServiceName ?? null,
      currency: t.currency as Currency,
    }),
  );

function problemsOf(error: z.ZodError, prefix: readonly (string | number)[] = []): FieldProblem[] {
  return error.issues.map((issue) => {
    const path = [...prefix, ...issue.path.map(String)];
    return { field: path.length ? path.join('.') : '(body)', message: issue.message };
  });
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !isLosslessNumber(value);
}

/** Opaque metadata (paymentMeta, unknown webhooks) keeps numbers exact: a double when exact, else its text. */
function toPlainJson(value: unknown): JsonValue {
  if (isLosslessNumber(value)) {
    const n = Number(value.value);
    return String(n) === value.value ? n : value.value;
  }
  if (Array.isArray(value)) return value.map(toPlainJson);
  if (isPlainObject(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toPlainJson(v)]));
  return value as JsonValue;
}

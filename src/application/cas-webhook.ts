import { isLosslessNumber } from 'lossless-json';
import { z } from 'zod';
import type { BankTransaction, JsonValue } from '../domain/bank-transaction';
import { dateProblem, FIRST_BOOKABLE_DATE, instantProblem, LAST_BOOKABLE_DATE } from '../domain/calendar';
import { type Currency, isBookableMoney, isSupportedCurrency, MAX_BOOKABLE_MINOR_UNITS, parseMinorUnits } from '../domain/money';
import { err, ok, type Result } from '../domain/result';
import { type FieldProblem, readExactJson } from './exact-json';

export type { FieldProblem } from './exact-json';

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
// The mark is kept in the decoded text (the attachment is the body as sent) and skipped by the parser.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Reads a webhook body exactly: UTF-8 strictly, numbers as their source text, so that money never passes through a
 * double; only what the books can hold (`readExactJson`, and the ranges of the domain). Every field problem is
 * reported, not just the first.
 */
export function parseCasWebhook(body: Uint8Array): Result<CasWebhook, FieldProblem[]> {
  const read = readCasWebhook(body);
  return read.ok ? ok(read.value.webhook) : read;
}

/**
 * `parseCasWebhook`, also handing back the body as text: decoded once, for the parser and for the event's
 * attachment (the body as sent, a byte-order mark included; the parser skips one, as JSON readers do).
 */
export function readCasWebhook(body: Uint8Array): Result<{ webhook: CasWebhook; text: string }, FieldProblem[]> {
  let text: string;
  try {
    text = utf8.decode(body);
  } catch {
    return err([{ field: '(body)', message: 'the body is not valid UTF-8' }]);
  }
  const webhook = parseText(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
  return webhook.ok ? ok({ webhook: webhook.value, text }) : webhook;
}

function parseText(text: string): Result<CasWebhook, FieldProblem[]> {
  const read = readExactJson(text);
  if (!read.ok) return read;
  const json = read.value;
  if (!isPlainObject(json)) return err([{ field: '(body)', message: 'expected a JSON object' }]);
  if (Object.keys(json).length === 0) return ok({ kind: 'ping' });
  const fast = transactionWebhookFast(json);
  return fast ? ok(fast) : webhookBySchema(json);
}

/** The schemas' verdict on a parsed body (not a ping): the value, or every problem with its reason. */
export function webhookBySchema(json: Record<string, unknown>): Result<CasWebhook, FieldProblem[]> {
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

/**
 * Reads one transaction as Cas sends it in JSON text (an item of GET /transactions, or such an item quarantined):
 * the same text rules and the same schema as a webhook's `transaction`.
 */
export function parseCasTransaction(text: string): Result<BankTransaction, FieldProblem[]> {
  const read = readExactJson(text);
  if (!read.ok) return read;
  const parsed = casTransactionSchema.safeParse(read.value);
  return parsed.success ? ok(parsed.data) : err(problemsOf(parsed.error));
}

const nullableText = z.string().nullish();
const RANGE = `${FIRST_BOOKABLE_DATE} to ${LAST_BOOKABLE_DATE}`;
const isoDate = z.string({ error: 'expected a date YYYY-MM-DD' }).check((ctx) => {
  const problem = dateProblem(ctx.value);
  if (problem) ctx.issues.push({ code: 'custom', input: ctx.value, message: problem === 'not_a_date' ? 'expected a calendar date YYYY-MM-DD' : `a date must lie within ${RANGE}` });
});
const isoInstant = z.string({ error: 'expected an ISO-8601 instant with an offset' }).check((ctx) => {
  const problem = instantProblem(ctx.value);
  if (problem) {
    const message = problem === 'not_a_date' ? 'expected an ISO-8601 instant with an offset (2023-12-05T16:25:00+07:00)' : `an instant must lie within ${RANGE}, in UTC too`;
    ctx.issues.push({ code: 'custom', input: ctx.value, message });
  }
});
/** Names that become part of a stream id or a read-model key: a safe token of bounded length. */
const tokenPattern = (max: number) => new RegExp(`^[0-9A-Za-z_.-]{1,${max}}$`);
const token = (what: string, max: number) =>
  z.string({ error: `${what} is required` }).regex(tokenPattern(max), `${what} must be 1–${max} letters, digits, _ . or -`);
// The patterns both readings (the schemas and transactionWebhookFast) hold a field to.
const TOKEN_64 = tokenPattern(64);
const TOKEN_128 = tokenPattern(128);
const TRANSACTION_ID = /^[0-9A-Za-z_-]{1,128}$/;
const ACCOUNT_NUMBER = /^[0-9A-Za-z.\-]{1,64}$/;

/** The exact text of a JSON number, or of a string holding one (other Casso shapes send strings). */
const numberText = (value: unknown): string | null =>
  isLosslessNumber(value) ? value.value : typeof value === 'string' ? value.trim() : null;
/** Money as both readings parse it: null when the value is no number at all. */
const minorUnitsOf = (value: unknown) => {
  const text = numberText(value);
  return text === null ? null : parseMinorUnits(text);
};

// One transform per money field (no union): this schema runs on every webhook.
const exactInteger = (what: string, nullable: boolean) =>
  z.unknown().optional().transform((value, ctx): bigint | null => {
    if (nullable && (value === null || value === undefined)) return null;
    const parsed = minorUnitsOf(value);
    if (parsed?.ok && isBookableMoney(parsed.value)) return parsed.value;
    ctx.addIssue({
      code: 'custom',
      message:
        parsed?.ok || parsed?.error === 'out_of_range'
          ? `${what} is out of range: the ledger books at most ±${MAX_BOOKABLE_MINOR_UNITS} đồng`
          : parsed?.error === 'fractional_amount'
            ? `${what} must be a whole number of đồng (VND has no minor unit)`
            : `${what} must be a number`,
    });
    return z.NEVER;
  });

const accountNumber = z.unknown().optional().transform((value, ctx) => {
  const text = numberText(value);
  if (text === null || !ACCOUNT_NUMBER.test(text)) {
    ctx.addIssue({ code: 'custom', message: 'accountNumber must be 1–64 letters or digits (a string or a number)' });
    return z.NEVER;
  }
  return text;
});

const envelopeSchema = z
  .object({
    environment: nullableText,
    webhookType: token('webhookType', 64),
    webhookCode: token('webhookCode', 64),
    grantId: token('grantId', 128).nullish(),
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
      id: z.string({ error: 'id (the Cas transaction id) is required' }).regex(TRANSACTION_ID, 'id must be 1–128 letters, digits, _ or -'),
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
      counterAccountNumber: z.unknown().optional().transform((v, ctx) => {
        if (v === null || v === undefined) return null;
        const text = numberText(v);
        if (text !== null) return text;
        ctx.addIssue({ code: 'custom', message: 'counterAccountNumber must be a string or a number' });
        return z.NEVER;
      }),
      counterAccountName: nullableText,
      counterAccountBankId: nullableText,
      counterAccountBankName: nullableText,
      paymentMeta: z.unknown().optional(),
      fiId: token('fiId (the bank)', 128),
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
  )
  // The read models keep the balance before each line too: before = runningBalance − amount.
  .check((ctx) => {
    const { runningBalance, amount } = ctx.value;
    if (runningBalance !== null && !isBookableMoney(runningBalance - amount)) {
      ctx.issues.push({
        code: 'custom',
        input: ctx.value,
        path: ['runningBalance'],
        message: `the balance before this transaction (runningBalance − amount) is out of range: the ledger books at most ±${MAX_BOOKABLE_MINOR_UNITS} đồng`,
      });
    }
  });

/*
 * The schemas above, written out by hand for the webhook that arrives thousands of times a second: a booked
 * transaction. It returns exactly what the schemas return for a body they accept (the same keys in the same order),
 * and null for anything else, a body they refuse or another kind, which then takes the schemas' way for their value
 * or their reasons. A property test holds the two to the same verdicts and values.
 */
const isNullish = (value: unknown): value is null | undefined => value === null || value === undefined;
const isNullableText = (value: unknown): value is string | null | undefined => isNullish(value) || typeof value === 'string';
/** A field `isNullableText` has passed, as the ledger holds it. */
const orNull = (value: unknown): string | null => (value ?? null) as string | null;
const isToken = (value: unknown, pattern: RegExp): value is string => typeof value === 'string' && pattern.test(value);

/** A booked transaction webhook exactly as `webhookBySchema` reads it, or null (refused, or another kind). */
export function transactionWebhookFast(json: Record<string, unknown>): CasWebhook | null {
  const { environment, webhookType, webhookCode, grantId } = json;
  if (webhookType !== 'TRANSACTIONS' || !isToken(webhookCode, TOKEN_64) || !BOOKED_CODES.has(webhookCode)) return null;
  if (!isNullableText(environment) || !(isNullish(grantId) || isToken(grantId, TOKEN_128))) return null;
  const transaction = transactionFast(json.transaction);
  if (transaction === null) return null;
  // The schema's object keeps the keys the body has, in the schema's order; its transform adds the missing ones last.
  const read: { environment?: string | null; webhookType: string; webhookCode: string; grantId?: string | null } =
    'environment' in json ? { environment, webhookType, webhookCode } : { webhookType, webhookCode };
  if ('grantId' in json) read.grantId = grantId;
  const envelope: Envelope = { ...read, environment: read.environment ?? null, grantId: read.grantId ?? null };
  return { kind: 'transaction', envelope, transaction };
}

/** Money as `exactInteger` reads it, or undefined where it would refuse. */
function moneyFast(value: unknown): bigint | undefined {
  const parsed = minorUnitsOf(value);
  return parsed?.ok && isBookableMoney(parsed.value) ? parsed.value : undefined;
}

function transactionFast(value: unknown): BankTransaction | null {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return null;
  const t = value as Record<string, unknown>;
  const { id, transactionDate, transactionDateTime, bookingDate, currency, fiId } = t;
  if (!isToken(id, TRANSACTION_ID) || !isToken(fiId, TOKEN_128)) return null;
  if (typeof transactionDate !== 'string' || dateProblem(transactionDate) !== null) return null;
  if (typeof transactionDateTime !== 'string' || instantProblem(transactionDateTime) !== null) return null;
  if (!isNullish(bookingDate) && (typeof bookingDate !== 'string' || dateProblem(bookingDate) !== null)) return null;
  if (typeof currency !== 'string' || !isSupportedCurrency(currency)) return null;
  const amount = moneyFast(t.amount);
  const runningBalance = isNullish(t.runningBalance) ? null : moneyFast(t.runningBalance);
  const accountNumber = numberText(t.accountNumber);
  const counterAccountNumber = isNullish(t.counterAccountNumber) ? null : numberText(t.counterAccountNumber);
  if (amount === undefined || runningBalance === undefined || counterAccountNumber === null && !isNullish(t.counterAccountNumber)) return null;
  if (accountNumber === null || !ACCOUNT_NUMBER.test(accountNumber)) return null;
  if (runningBalance !== null && !isBookableMoney(runningBalance - amount)) return null;
  const { transactionCode, reference, description, virtualAccountNumber, virtualAccountName, paymentChannel } = t;
  const { counterAccountName, counterAccountBankId, counterAccountBankName, fiName, fiServiceId, fiServiceName } = t;
  const texts = [transactionCode, reference, description, virtualAccountNumber, virtualAccountName, paymentChannel];
  texts.push(counterAccountName, counterAccountBankId, counterAccountBankName, fiName, fiServiceId, fiServiceName);
  if (!texts.every(isNullableText)) return null;
  return {
    id,
    transactionCode: orNull(transactionCode),
    reference: orNull(reference),
    transactionDate,
    transactionDateTime,
    bookingDate: bookingDate ?? null,
    amount,
    description: orNull(description),
    runningBalance,
    accountNumber,
    virtualAccountNumber: orNull(virtualAccountNumber),
    virtualAccountName: orNull(virtualAccountName),
    paymentChannel: orNull(paymentChannel),
    counterAccountNumber,
    counterAccountName: orNull(counterAccountName),
    counterAccountBankId: orNull(counterAccountBankId),
    counterAccountBankName: orNull(counterAccountBankName),
    paymentMeta: isNullish(t.paymentMeta) ? null : toPlainJson(t.paymentMeta),
    fiId,
    fiName: orNull(fiName),
    fiServiceId: orNull(fiServiceId),
    fiServiceName: orNull(fiServiceName),
    currency,
  };
}

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

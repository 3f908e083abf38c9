import { isLosslessNumber, type LosslessNumber } from 'lossless-json';
import { z } from 'zod';
import { parseMinorUnits } from '../../domain/money';

/**
 * What Cas answers, read leniently: the docs and the sandbox disagree on envelopes (`data`), field names and the
 * format of instants, so each shape accepts the variants seen and keeps every number exact.
 */

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value) && !isLosslessNumber(value);

/** Some Cas responses wrap their payload in `data`; the requestId may sit on either level. */
export function unwrapData(body: unknown): unknown {
  if (!isRecord(body)) return body;
  const { data, ...rest } = body;
  if (isRecord(data)) return { ...rest, ...data, requestId: data.requestId ?? rest.requestId };
  if (Array.isArray(data) && rest.transactions === undefined) return { ...rest, transactions: data };
  return body;
}

export const requestIdOf = (body: unknown): string | null => {
  const inner = unwrapData(body);
  return isRecord(inner) && typeof inner.requestId === 'string' ? inner.requestId : null;
};

const jsonNumber = z.custom<LosslessNumber>((value) => isLosslessNumber(value), 'expected a JSON number');
const optionalText = z
  .union([z.string(), jsonNumber, z.null()])
  .optional()
  .transform((v) => (v == null ? null : v.toString()));
const requestId = optionalText;

/** An ISO-8601 string, or epoch seconds / milliseconds (as a number or a string of digits). */
const instant = z.union([z.string(), jsonNumber]).transform((value, ctx) => {
  const text = value.toString().trim();
  let date: Date;
  if (/^\d+(\.\d+)?$/.test(text)) {
    const epoch = Number(text);
    date = new Date(epoch < 1e11 ? epoch * 1000 : epoch); // below 1e11 is seconds (until the year 5138)
  } else {
    date = new Date(text);
  }
  if (Number.isNaN(date.getTime())) {
    ctx.addIssue({ code: 'custom', message: 'not a date' });
    return z.NEVER;
  }
  return date;
});

export const grantTokenSchema = z.preprocess(
  unwrapData,
  z.object({ grantToken: z.string().min(1), expiration: instant.nullish(), expiredAt: instant.nullish() }),
);

export const exchangeSchema = z.preprocess(
  unwrapData,
  z.object({ accessToken: z.string().min(1), grantId: z.string().min(1), requestId: z.string().nullish() }),
);

const accountNumber = z.union([z.string().min(1), jsonNumber]).transform((v) => v.toString());

/** Exact whole minor units from the JSON text; anything else (fractions, text) is no balance rather than a guess. */
const balance = z
  .union([jsonNumber, z.string(), z.null()])
  .optional()
  .transform((v) => {
    if (v == null) return null;
    const parsed = parseMinorUnits(v.toString().trim());
    return parsed.ok ? parsed.value : null;
  });

export const identitySchema = z.preprocess(
  unwrapData,
  z.object({
    requestId,
    accounts: z.array(
      z.object({ accountNumber, accountName: optionalText, currency: optionalText, balance, fiId: optionalText }),
    ),
  }),
);

export const transactionsSchema = z.preprocess(
  unwrapData,
  z.object({ requestId, transactions: z.array(z.unknown()) }),
);

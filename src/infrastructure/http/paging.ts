import { z } from 'zod';
import { decodeKeyset, encodeKeyset, type KeyPart } from '../../projections/paging';

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

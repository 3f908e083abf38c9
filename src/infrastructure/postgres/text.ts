/**
 * PostgreSQL text and jsonb hold neither U+0000 nor half a surrogate pair: each becomes U+FFFD, the rest stays as it
 * was. For what describes a body (reasons, headers); the body itself is kept as bytes.
 */
export const storableText = (text: string): string => text.toWellFormed().replaceAll('\0', '\uFFFD');

export const storableTextOrNull = (text: string | null): string | null => (text === null ? null : storableText(text));

/**
 * Errors that mean "the database is not there right now" rather than "this statement is wrong": connection
 * refused or reset, pool time-out, server shutting down or not accepting connections (SQLSTATE classes 08, 57P).
 */
export function isUnavailableError(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const { code, message, cause } = error as { code?: unknown; message?: unknown; cause?: unknown };
  if (cause !== undefined && cause !== error && isUnavailableError(cause)) return true; // e.g. a failed migration
  if (typeof code === 'string') {
    if (code.startsWith('08') || code.startsWith('57P') || code === '53300') return true;
    if (['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'ENOTFOUND', 'EHOSTUNREACH', 'EPIPE'].includes(code)) return true;
  }
  return (
    typeof message === 'string' &&
    /timeout exceeded when trying to connect|Connection terminated|connection .*closed|Client has encountered a connection error|ECONNREFUSED/i.test(
      message,
    )
  );
}

/** The server cancelled the statement: it ran past `statement_timeout` (or an operator cancelled it). SQLSTATE 57014. */
export function isQueryCanceled(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === '57014';
}

/**
 * Errors that mean "PostgreSQL refuses this content": a data exception (SQLSTATE class 22: a character text or jsonb
 * cannot hold, a value out of a type's range, malformed JSON) or a program limit (class 54: an index entry too
 * large). The same statement fails again however often it is retried; other statements are unaffected.
 */
export function isDataError(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const { code } = error as { code?: unknown };
  return typeof code === 'string' && /^(22|54)[0-9A-Z]{3}$/.test(code);
}

import pino, { type DestinationStream, type Logger } from 'pino';
import pinoPretty from 'pino-pretty';

export type LogFormat = 'pretty' | 'json';

/** LOG_FORMAT when set; otherwise pretty for a person at a terminal, JSON for everything else (a file, a collector). */
export const logFormatFor = (configured: LogFormat | undefined): LogFormat => configured ?? (process.stdout.isTTY ? 'pretty' : 'json');

/**
 * Secrets never reach a log line: the webhook token (header or query), API keys, Cas keys and access tokens.
 * Known fields are redacted by path; secrets in query strings are redacted in the written line itself, so no
 * serializer, error message or child binding can carry one out.
 */
export function createLogger(level: string, destination?: DestinationStream, format: LogFormat = 'json'): Logger {
  // Pretty lines are made from the JSON line after redaction (streamWrite), in this thread: nothing secret reaches them.
  const out = format === 'pretty' ? prettyStream(destination) : (destination ?? standardOutput());
  return pino(
    {
      level,
      redact: {
        paths: [
          'req.headers["x-webhook-token"]',
          'req.headers["x-secret-key"]',
          'req.headers.authorization',
          'accessToken',
          '*.accessToken',
          'secretKey',
          '*.secretKey',
          'publicToken',
          '*.publicToken',
        ],
        censor: '[redacted]',
      },
      serializers: {
        req: (req: { method: string; url: string; id: string; ip?: string }) => ({
          method: req.method,
          url: req.url,
          id: req.id,
          remoteAddress: req.ip,
        }),
      },
      hooks: { streamWrite: redactQuery },
    },
    out,
  );
}

/**
 * Lines written once per turn of the event loop instead of once per line: each request's line was a write system
 * call of its own (~7 µs of CPU to a pipe, measured alone), and the requests that one group commit answers are
 * answered in one turn (~18 lines a write at 1 000 webhooks/s). A line is written before the loop next waits for
 * I/O, and on any exit (process.exit, an uncaught error) what is pending is written synchronously; only a SIGKILL or
 * a crash of the process itself within that turn loses its lines — log lines, never ledger facts, which are committed
 * before any answer. The writes stay synchronous, as pino's default is, so a slow reader holds nothing in memory.
 */
export function linesPerTurn(out: { write(text: string): unknown }): DestinationStream & { flush(done?: () => void): void } {
  let pending = '';
  const writePending = () => {
    if (pending === '') return;
    const text = pending;
    pending = '';
    out.write(text);
  };
  process.on('exit', () => writePending());
  return {
    write(line: string) {
      if (pending === '') setImmediate(writePending);
      pending += line;
    },
    // pino's logger.flush(cb)
    flush(done) {
      writePending();
      done?.();
    },
  };
}

let stdoutLines: DestinationStream | null = null;
/** One for the process, shared by every logger that writes to standard output (their lines stay in order). */
const standardOutput = (): DestinationStream => (stdoutLines ??= linesPerTurn(pino.destination({ dest: 1, sync: true })));

function prettyStream(destination: DestinationStream | undefined): DestinationStream {
  return pinoPretty({
    colorize: destination === undefined ? Boolean(process.stdout.isTTY) : false,
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'pid,hostname,reqId,req,method,route,statusCode,responseTime,keyId,keyName',
    messageFormat: prettyMessage,
    ...(destination ? { destination: destination as NodeJS.WritableStream } : {}),
    sync: true,
  });
}

/** A request line reads `GET /accounts/:id 200 3.1 ms key <name> [req <id>]`; other lines keep their request id. */
export function prettyMessage(log: Record<string, unknown>, messageKey: string): string {
  const message = String(log[messageKey] ?? '');
  const request = typeof log.reqId === 'string' ? ` [req ${log.reqId}]` : '';
  if (message === 'request completed' && typeof log.route === 'string') {
    const key = typeof log.keyName === 'string' ? ` key ${log.keyName}` : '';
    return `${String(log.method)} ${log.route} ${String(log.statusCode)} ${String(log.responseTime)} ms${key}${request}`;
  }
  return `${message}${request}`;
}

/** Query parameters whose value is a secret, by their decoded name in lower case. */
const SECRET_PARAMETERS = new Set(['token', 'publictoken', 'access_token', 'accesstoken', 'api_key', 'apikey', 'key']);
/** `?name=value` or `&name=value` in any text: a URL, or a JSON line holding one (its value ends at a quote). */
const PARAMETER = /([?&])((?:[^=&#?\s"\\]|\\.)+)=((?:[^&#\s"\\]|\\.)*)/g;

/**
 * Hides the value of every secret query parameter, however its name is written: `token=`, `TOKEN=`, `%74oken=`,
 * `to%6Ben=`, `+token=` or repeated — the names fastify's query parser would read as `token`.
 */
export function redactQuery(text: string): string {
  if (!text.includes('=')) return text;
  return text.replace(PARAMETER, (whole, separator: string, name: string) =>
    SECRET_PARAMETERS.has(decodedName(name)) ? `${separator}${name}=[redacted]` : whole,
  );
}

function decodedName(name: string): string {
  let decoded = name;
  // Decoded until it no longer changes (a few rounds at most), so double encoding hides nothing either.
  for (let round = 0; round < 3; round++) {
    let next: string;
    try {
      next = decodeURIComponent(decoded.replaceAll('+', ' '));
    } catch {
      next = decoded.replace(/%([0-9a-f]{2})/gi, (_m, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));
    }
    if (next === decoded) break;
    decoded = next;
  }
  return decoded.trim().toLowerCase();
}

import pino, { type DestinationStream, type Logger } from 'pino';

/**
 * Secrets never reach a log line: the webhook token (header or query), API keys, Cas keys and access tokens.
 * Known fields are redacted by path; secrets in query strings are redacted in the written line itself, so no
 * serializer, error message or child binding can carry one out.
 */
export function createLogger(level: string, destination?: DestinationStream): Logger {
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
    destination,
  );
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

import pino, { type DestinationStream, type Logger } from 'pino';

/** Secrets never reach a log line: the webhook token (header or query), Cas keys and access tokens. */
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
        url: redactQuery(req.url),
        id: req.id,
        remoteAddress: req.ip,
      }),
    },
  },
    destination,
  );
}

/** `?token=…` is how Cas's console carries the webhook secret: keep the path, hide the value. */
export function redactQuery(url: string): string {
  return url.replace(/([?&](?:token|publicToken|access_token)=)[^&#]*/gi, '$1[redacted]');
}

import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedAlert {
  readonly headers: IncomingHttpHeaders;
  readonly body: Record<string, unknown> & { alertId: string; kind: string; text: string };
}

export interface AlertReceiver {
  readonly url: string;
  /** Every POST that was answered 2xx, in arrival order. */
  readonly received: ReceivedAlert[];
  /** Every POST, whatever it was answered. */
  readonly attempts: ReceivedAlert[];
  /** The status the next POSTs get (default 200). */
  answerWith(status: number): void;
  close(): Promise<void>;
}

/** A real HTTP endpoint on a free port, standing in for a Slack or Google Chat incoming webhook. */
export async function startAlertReceiver(): Promise<AlertReceiver> {
  const received: ReceivedAlert[] = [];
  const attempts: ReceivedAlert[] = [];
  let status = 200;
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (c: Buffer) => chunks.push(c));
    request.on('end', () => {
      const alert = { headers: request.headers, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as ReceivedAlert['body'] };
      attempts.push(alert);
      if (status < 300) received.push(alert);
      response.writeHead(status, { 'content-type': 'application/json' }).end(status < 300 ? '{"ok":true}' : '{"error":"not now"}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hooks/alerts`,
    received,
    attempts,
    answerWith: (next) => (status = next),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The value of one sample of a Prometheus text exposition, e.g. `ledger_webhooks_total{outcome="accepted"}`. */
export function metricValue(text: string, series: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    if (line.slice(0, space) === series) return Number(line.slice(space + 1));
  }
  return undefined;
}

import { randomBytes } from 'node:crypto';
import { sample } from './app';

/** One HTTP exchange as a client saw it. */
export interface Answer {
  readonly transactionId: string;
  /** The HTTP status, or what went wrong without one. */
  readonly status: number | 'timeout' | 'network';
  /** The `status` of a 200 answer (accepted, duplicate, …). */
  readonly ack: string | null;
  readonly retryAfter: string | null;
  /** Date.now() when the answer (or the failure) came. */
  readonly at: number;
}

const template = JSON.parse(sample('transaction-webhook.json').toString('utf8'));

/** A valid TRANSACTIONS webhook: transaction `seq` of the account, 1 000 đồng each, balances chained. */
export function transactionWebhook(transactionId: string, accountNumber: string, seq: number): string {
  const at = new Date(Date.UTC(2026, 0, 1) + seq * 60_000).toISOString().replace('Z', '+00:00');
  return JSON.stringify({
    ...template,
    transaction: {
      ...template.transaction,
      id: transactionId,
      accountNumber,
      transactionDate: at.slice(0, 10),
      bookingDate: at.slice(0, 10),
      transactionDateTime: at,
      amount: 1000,
      runningBalance: (seq + 1) * 1000,
    },
  });
}

/** One request with a deadline: the status (or what went wrong without one), Retry-After and the body. */
export async function timedFetch(
  url: string,
  init: RequestInit,
  timeoutMs: number,
): Promise<{ status: number | 'timeout' | 'network'; retryAfter: string | null; at: number; text: string }> {
  try {
    const res = await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
    const text = await res.text();
    return { status: res.status, retryAfter: res.headers.get('retry-after'), at: Date.now(), text };
  } catch (error) {
    const timedOut = error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError');
    return { status: timedOut ? 'timeout' : 'network', retryAfter: null, at: Date.now(), text: '' };
  }
}

export async function postWebhook(url: string, token: string, body: string, timeoutMs: number): Promise<Omit<Answer, 'transactionId'>> {
  const { text, ...answer } = await timedFetch(
    `${url}/webhooks/bankhub?token=${token}`,
    { method: 'POST', headers: { 'content-type': 'application/json' }, body },
    timeoutMs,
  );
  const ack = answer.status === 200 ? ((JSON.parse(text) as { status?: string }).status ?? null) : null;
  return { ...answer, ack };
}

export interface WebhookLoad {
  /** Every answer, in the order they came. */
  readonly answers: Answer[];
  /** Transaction id → body, for every webhook answered 200. */
  readonly acknowledged: Map<string, string>;
  /** Transaction id → body, for every webhook sent at least once (acknowledged or not). */
  readonly sent: Map<string, string>;
  /** Stops sending new webhooks and resolves when every client's request in flight has its answer. */
  stop(): Promise<void>;
}

/**
 * `clients` concurrent clients, each posting distinct webhooks for an account of its own, one after the other. As
 * Cas does, a client posts the same webhook again until it is answered 200 (after `retryPauseMs`, not Retry-After:
 * the test wants pressure), then moves on to the next.
 */
export function startWebhookLoad(options: {
  url: string;
  token: string;
  clients?: number;
  timeoutMs?: number;
  retryPauseMs?: number;
}): WebhookLoad {
  const run = randomBytes(3).toString('hex');
  const answers: Answer[] = [];
  const acknowledged = new Map<string, string>();
  const sent = new Map<string, string>();
  let stopping = false;
  const client = async (c: number) => {
    for (let seq = 0; !stopping; seq++) {
      const transactionId = `${run}-${c}-${seq}`;
      const body = transactionWebhook(transactionId, `77${c}`, seq);
      sent.set(transactionId, body);
      for (;;) {
        const answer = await postWebhook(options.url, options.token, body, options.timeoutMs ?? 15_000);
        answers.push({ transactionId, ...answer });
        if (answer.status === 200) {
          acknowledged.set(transactionId, body);
          break;
        }
        if (stopping) return;
        await new Promise((r) => setTimeout(r, options.retryPauseMs ?? 50));
      }
    }
  };
  const all = Promise.all(Array.from({ length: options.clients ?? 8 }, (_, c) => client(c)));
  return {
    answers,
    acknowledged,
    sent,
    async stop() {
      stopping = true;
      await all;
    },
  };
}

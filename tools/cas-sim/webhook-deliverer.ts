import { createRng, grantWebhook, toCasJson, transactionWebhook, type CasTransaction, type CasWebhook } from './bank';
import { grantIdOf, linkedAccounts, pendingTransactions, type SimState } from './state';
import type { CasSimulator, WebhookDeliveryOptions } from './types';

/**
 * Cas's push channel: each webhook POSTed with Cas's retries (Fibonacci waits, shrunk for tests), and the drops,
 * duplicates and reordering Cas may inflict, drawn from the seed so that a run can be replayed.
 */
export type WebhookDeliverer = Pick<CasSimulator, 'deliverWebhooks' | 'deliverGrantWebhook'>;

type Settings = Required<Omit<WebhookDeliveryOptions, 'targetUrl'>> & { targetUrl: string };

/** Fibonacci delays, in `unitMs` steps: Cas's 17 retries over 24 h, shrunk for tests. */
export function fibonacciScheduleMs(retries: number, unitMs: number): number[] {
  const out: number[] = [];
  let [a, b] = [1, 2];
  for (let i = 0; i < retries; i += 1) {
    out.push(a * unitMs);
    [a, b] = [b, a + b];
  }
  return out;
}

export function createWebhookDeliverer(state: SimState): WebhookDeliverer {
  let deliveryRound = 0;
  const settingsOf = (overrides: WebhookDeliveryOptions): Settings => {
    const merged = { ...state.options.webhooks, ...overrides };
    if (!merged.targetUrl) throw new Error('no webhook targetUrl configured');
    return {
      targetUrl: merged.targetUrl,
      dropRate: merged.dropRate ?? 0,
      duplicateRate: merged.duplicateRate ?? 0,
      reorderRate: merged.reorderRate ?? 0,
      reorderWindow: merged.reorderWindow ?? 5,
      retryScheduleMs: merged.retryScheduleMs ?? fibonacciScheduleMs(17, 10),
      timeoutMs: merged.timeoutMs ?? 5_000,
      concurrency: Math.max(1, merged.concurrency ?? 1),
    };
  };

  return {
    async deliverWebhooks(options = {}) {
      const settings = settingsOf(options);
      const rng = createRng(state.options.seed, 'webhooks', deliveryRound);
      deliveryRound += 1;
      const chosen = options.transactions ?? pendingTransactions(state, options.accounts ?? linkedAccounts(state));
      const { plan, dropped, duplicated } = planDeliveries(state, chosen, settings, rng.next);
      const gate = new Semaphore(settings.concurrency);
      const results = await Promise.all(
        plan.map(async ({ transaction, copy }) => {
          const accountNumber = transaction.accountNumber.toString();
          const grantId = grantIdOf(state, transaction.fiId, accountNumber);
          const body = toCasJson(transactionWebhook(transaction, grantId));
          const outcome = await postWithRetries(settings.targetUrl, body, settings, gate);
          return { transaction, copy, accountNumber, grantId, ...outcome };
        }),
      );
      return {
        delivered: results
          .filter((r) => r.delivered)
          .map((r) => ({ transactionId: r.transaction.id, fiId: r.transaction.fiId, accountNumber: r.accountNumber, grantId: r.grantId, copy: r.copy, attempts: r.attempts })),
        dropped,
        duplicated,
        gaveUp: results
          .filter((r) => !r.delivered)
          .map((r) => ({ transactionId: r.transaction.id, copy: r.copy, attempts: r.attempts, lastStatus: r.lastStatus })),
        sent: plan.map(({ transaction, copy }) => ({ transactionId: transaction.id, copy })),
        attempts: results.reduce((sum, r) => sum + r.attempts, 0),
      };
    },

    async deliverGrantWebhook(grantId, webhookCode, error = null, overrides = {}) {
      const settings = settingsOf(overrides);
      const body: CasWebhook = grantWebhook(grantId, webhookCode, error);
      const outcome = await postWithRetries(settings.targetUrl, toCasJson(body), settings, new Semaphore(1));
      return { delivered: outcome.delivered, attempts: outcome.attempts };
    },
  };
}

/** Which copies go out in which order: each transaction handed over, then dropped, duplicated or moved later by chance. */
function planDeliveries(state: SimState, chosen: readonly CasTransaction[], settings: Settings, roll: () => number) {
  const dropped: string[] = [];
  const duplicated: string[] = [];
  const plan: { key: number; transaction: CasTransaction; copy: number }[] = [];
  chosen.forEach((transaction, index) => {
    state.handed.add(transaction.id);
    // Every roll is drawn for every transaction so one rate never shifts another's choices.
    const [drop, duplicate, reorder, shift, copyShift] = [roll(), roll(), roll(), roll(), roll()];
    if (drop < settings.dropRate) {
      dropped.push(transaction.id);
      return;
    }
    const moved = reorder < settings.reorderRate ? shift * (settings.reorderWindow + 1) : 0;
    plan.push({ key: index + moved, transaction, copy: 0 });
    if (duplicate < settings.duplicateRate) {
      duplicated.push(transaction.id);
      plan.push({ key: index + moved + 0.5 + copyShift * (settings.reorderWindow + 1), transaction, copy: 1 });
    }
  });
  plan.sort((a, b) => a.key - b.key);
  return { plan, dropped, duplicated };
}

async function postWithRetries(
  targetUrl: string,
  body: string,
  settings: Settings,
  gate: Semaphore,
): Promise<{ delivered: boolean; attempts: number; lastStatus: number | null }> {
  let lastStatus: number | null = null;
  for (let attempt = 1; ; attempt += 1) {
    await gate.acquire();
    try {
      const response = await fetch(targetUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
        signal: AbortSignal.timeout(settings.timeoutMs),
      });
      lastStatus = response.status;
      await response.arrayBuffer().catch(() => undefined);
      if (response.status >= 200 && response.status < 300) return { delivered: true, attempts: attempt, lastStatus };
    } catch {
      lastStatus = null; // no answer in time, or no connection: Cas retries both
    } finally {
      gate.release();
    }
    const wait = settings.retryScheduleMs[attempt - 1];
    if (wait === undefined) return { delivered: false, attempts: attempt, lastStatus };
    await new Promise((resolve) => setTimeout(resolve, wait));
  }
}

class Semaphore {
  private free: number;
  private readonly waiting: (() => void)[] = [];
  constructor(size: number) {
    this.free = size;
  }
  async acquire(): Promise<void> {
    if (this.free > 0) {
      this.free -= 1;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }
  release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.free += 1;
  }
}

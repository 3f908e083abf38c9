import { BankHubError } from './ports/bankhub';

/**
 * Cas allows about one GET /transactions per grant per minute. Calls of one grant go through one lane: they run one
 * at a time, start at least `minIntervalMs` apart, and a RATE_LIMIT answer is waited out and asked again rather than
 * handed to the caller. Grants do not wait for each other.
 */
export interface GrantCallQueue {
  run<T>(grantId: string, call: () => Promise<T>): Promise<T>;
}

export interface GrantCallQueueOptions {
  /** Least time between the starts of two calls of one grant. */
  readonly minIntervalMs: number;
  /** RATE_LIMIT answers waited out per call before the error reaches the caller (a bound, so no caller waits for ever). */
  readonly maxRateLimitWaits?: number;
  readonly now?: () => number;
  readonly sleep?: (ms: number) => Promise<void>;
}

interface Lane {
  tail: Promise<void>;
  /** Epoch ms before which the next call of this grant must not start. */
  notBefore: number;
}

export function createGrantCallQueue(options: GrantCallQueueOptions): GrantCallQueue {
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const maxWaits = options.maxRateLimitWaits ?? 5;
  const lanes = new Map<string, Lane>();

  return {
    async run<T>(grantId: string, call: () => Promise<T>): Promise<T> {
      let lane = lanes.get(grantId);
      if (!lane) {
        lane = { tail: Promise.resolve(), notBefore: 0 };
        lanes.set(grantId, lane);
      }
      const previous = lane.tail;
      let release!: () => void;
      lane.tail = new Promise<void>((resolve) => (release = resolve));
      await previous;
      try {
        for (let waits = 0; ; waits += 1) {
          const wait = lane.notBefore - now();
          if (wait > 0) await sleep(wait);
          lane.notBefore = now() + options.minIntervalMs;
          try {
            return await call();
          } catch (error) {
            if (!(error instanceof BankHubError) || error.errorCode !== 'RATE_LIMIT' || waits >= maxWaits) throw error;
            // Someone else (another instance, a manual call) used the grant's minute: wait as long as Cas says.
            lane.notBefore = Math.max(lane.notBefore, now() + (error.retryAfterMs ?? options.minIntervalMs));
          }
        }
      } finally {
        release();
      }
    },
  };
}

import { describe, expect, it } from 'vitest';
import { createGrantCallQueue } from '../../src/application/grant-call-queue';
import { BankHubError } from '../../src/application/ports/bankhub';

/** A clock that only moves when the queue sleeps: the test sees exactly when each call would start. */
function fakeTime() {
  let nowMs = 0;
  const sleeps: number[] = [];
  return {
    now: () => nowMs,
    sleep: async (ms: number) => {
      sleeps.push(ms);
      nowMs += ms;
    },
    sleeps,
  };
}

const rateLimited = (retryAfterMs: number | null) =>
  new BankHubError({
    errorCode: 'RATE_LIMIT',
    errorType: 'RATE_LIMIT_ERROR',
    errorMessage: null,
    requestId: 'r1',
    httpStatus: 429,
    retryable: true,
    retryAfterMs,
  });

describe('the per-grant call queue', () => {
  it('runs the calls of one grant one at a time, at least the interval apart', async () => {
    const time = fakeTime();
    const queue = createGrantCallQueue({ minIntervalMs: 60_000, now: time.now, sleep: time.sleep });
    const started: number[] = [];
    let running = 0;
    let most = 0;
    const call = async () => {
      started.push(time.now());
      running += 1;
      most = Math.max(most, running);
      await Promise.resolve();
      running -= 1;
      return started.length;
    };
    const results = await Promise.all([queue.run('g1', call), queue.run('g1', call), queue.run('g1', call)]);
    expect(results).toEqual([1, 2, 3]);
    expect(started).toEqual([0, 60_000, 120_000]);
    expect(most).toBe(1);
  });

  it('does not make one grant wait for another', async () => {
    const time = fakeTime();
    const queue = createGrantCallQueue({ minIntervalMs: 60_000, now: time.now, sleep: time.sleep });
    await queue.run('g1', async () => 1);
    await queue.run('g2', async () => 2);
    expect(time.sleeps).toEqual([]);
  });

  it('waits out a RATE_LIMIT as long as Cas says and asks again, instead of failing', async () => {
    const time = fakeTime();
    const queue = createGrantCallQueue({ minIntervalMs: 1_000, now: time.now, sleep: time.sleep });
    let calls = 0;
    const result = await queue.run('g1', async () => {
      calls += 1;
      if (calls < 3) throw rateLimited(calls === 1 ? 30_000 : null);
      return 'page';
    });
    expect(result).toBe('page');
    expect(time.sleeps).toEqual([30_000, 1_000]);
  });

  it('hands on other errors at once, and a RATE_LIMIT only after its bound', async () => {
    const time = fakeTime();
    const queue = createGrantCallQueue({ minIntervalMs: 10, now: time.now, sleep: time.sleep, maxRateLimitWaits: 2 });
    const boom = new BankHubError({ errorCode: 'GRANT_NOT_FOUND', errorType: null, errorMessage: null, requestId: null, httpStatus: 404, retryable: false });
    await expect(queue.run('g1', async () => Promise.reject(boom))).rejects.toBe(boom);
    let calls = 0;
    await expect(
      queue.run('g1', async () => {
        calls += 1;
        throw rateLimited(null);
      }),
    ).rejects.toMatchObject({ errorCode: 'RATE_LIMIT' });
    expect(calls).toBe(3);
    // The lane is free again after a failure.
    await expect(queue.run('g1', async () => 'ok')).resolves.toBe('ok');
  });
});

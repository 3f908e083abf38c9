import { describe, expect, it } from 'vitest';
import { bankTime, duration, formatVnd, sweepRecoveredAlert } from '../../src/application/alerts';
import { retryDelayMs } from '../../src/infrastructure/alerts/alert-dispatcher';
import { webhookOutcome } from '../../src/infrastructure/metrics';

describe('what an alert says', () => {
  it('writes money exactly, with its sign, past a double', () => {
    expect(formatVnd(0n)).toBe('0 VND');
    expect(formatVnd(1_500_000n)).toBe('1,500,000 VND');
    expect(formatVnd('-999')).toBe('−999 VND');
    expect(formatVnd(2n ** 62n - 1n)).toBe('4,611,686,018,427,387,903 VND');
  });

  it('writes times in the bank zone and durations a person reads', () => {
    expect(bankTime('2026-05-01T20:05:00.000Z')).toBe('2026-05-02 03:05 (UTC+7)');
    expect([0, 59, 60, 930, 3_600, 7_500, 86_400, 200_000].map(duration)).toEqual([
      '0 s',
      '59 s',
      '1 min',
      '15 min 30 s',
      '1 h',
      '2 h 5 min',
      '1 d',
      '2 d 7 h',
    ]);
  });

  it("names each account the sweep recovered something for, with the bank's name", () => {
    const alert = sweepRecoveredAlert({
      date: '2026-05-02',
      fromDate: '2026-05-01',
      toDate: '2026-05-02',
      completedAt: '2026-05-01T20:00:05.000Z',
      totals: { fetched: 12, accepted: 3, duplicates: 9, conflicts: 0, invalid: 0 },
      grants: [],
      recovered: [
        { transactionId: 'a', fiId: 'fi-1', accountNumber: '0011', transactionDate: '2026-05-01' },
        { transactionId: 'b', fiId: 'fi-1', accountNumber: '0011', transactionDate: '2026-05-01' },
        { transactionId: 'c', fiId: 'fi-2', accountNumber: '0022', transactionDate: '2026-05-02' },
      ],
      fiNames: new Map([['fi-1', 'Vietcombank']]),
    });
    expect(alert.alertId).toBe('sweep_recovered:2026-05-02');
    expect(alert.text).toContain('recovered 3 transactions');
    expect(alert.text).toContain('Vietcombank (fi-1) account 0011: 2; fi-2 account 0022: 1');
  });
});

describe('webhook outcomes and retry delays', () => {
  it('counts each answer by what it told Cas', () => {
    expect(webhookOutcome(200, 'duplicate')).toBe('duplicate');
    expect(webhookOutcome(200, 'ping')).toBe('ping');
    expect([400, 413, 415].map((s) => webhookOutcome(s))).toEqual(['invalid', 'invalid', 'invalid']);
    expect([401, 403].map((s) => webhookOutcome(s))).toEqual(['unauthorized', 'unauthorized']);
    expect(webhookOutcome(503)).toBe('unavailable');
  });

  it('waits 10 s, doubling to an hour, with at most a fifth more of jitter', () => {
    expect([1, 2, 3, 9, 10, 30].map((n) => retryDelayMs(n, () => 0))).toEqual([10_000, 20_000, 40_000, 2_560_000, 3_600_000, 3_600_000]);
    expect(retryDelayMs(1, () => 0.999)).toBeLessThanOrEqual(12_000);
  });
});

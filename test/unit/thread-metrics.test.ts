import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { createMetrics, type MetricsJson, threadRuntimeMetrics } from '../../src/infrastructure/metrics';
import { metricValue } from '../support/ops';

/** Each family's `# HELP` and `# TYPE` lines, by name: the exposition format allows one of each per family. */
const headers = (text: string, kind: 'HELP' | 'TYPE') => [...text.matchAll(new RegExp(`^# ${kind} (\\S+) `, 'gm'))].map(([, name]) => name!);

describe('GET /metrics of a process with a projection thread', () => {
  // The thread's runtime metrics as the thread sends them: measured here (this test's own heap), labelled.
  const theirs = threadRuntimeMetrics('projections');

  it("joins the thread's runtime series into the process's families, labelled, and counts its restarts", async () => {
    let restarts = 0;
    const metrics = createMetrics({
      logger: pino({ level: 'silent' }),
      thread: { thread: 'projections', runtime: theirs, restarts: () => restarts },
    });
    restarts = 2;
    // Garbage enough for a few scavenges, observed (asynchronously) before the scrape: the GC histogram has series.
    let kept = 0;
    for (let i = 0; i < 200_000; i++) kept += Array.from({ length: 16 }, () => i).length;
    expect(kept).toBe(3_200_000);
    await new Promise((resolve) => setTimeout(resolve, 20));
    const text = await metrics.scrape();

    for (const kind of ['HELP', 'TYPE'] as const) {
      const names = headers(text, kind);
      expect(names.length).toBeGreaterThan(20);
      expect(new Set(names).size, `one # ${kind} per family`).toBe(names.length);
    }
    // The main thread's heap and the thread's, in one family.
    expect(metricValue(text, 'nodejs_heap_size_used_bytes')).toBeGreaterThan(0);
    expect(metricValue(text, 'nodejs_heap_size_used_bytes{thread="projections"}')).toBeGreaterThan(0);
    expect(metricValue(text, 'nodejs_eventloop_lag_p99_seconds{thread="projections"}')).toBeGreaterThanOrEqual(0);
    expect(text).toMatch(/^nodejs_gc_duration_seconds_bucket\{le="0\.001",kind="\w+",thread="projections"\} \d+$/m);
    // What belongs to the process is reported once, by the main thread.
    expect(text).not.toMatch(/^process_\w+\{thread=/m);
    expect(metricValue(text, 'process_resident_memory_bytes')).toBeGreaterThan(0);
    // The thread's restarts and answer, and the process's own counters rendered as before.
    const series = [
      'ledger_thread_restarts_total{thread="projections"}',
      'ledger_thread_up{thread="projections"}',
      'ledger_webhooks_total{outcome="accepted"}',
      'ledger_webhook_duration_seconds_bucket{le="+Inf"}',
    ];
    expect(series.map((s) => metricValue(text, s))).toEqual([2, 1, 0, 0]);
  });

  it('still answers when the thread does not, and says so', async () => {
    const warnings: string[] = [];
    const metrics = createMetrics({
      logger: pino({ level: 'warn' }, { write: (line: string) => void warnings.push(JSON.parse(line).msg) }),
      processMetrics: false,
      thread: {
        thread: 'projections',
        runtime: (): Promise<MetricsJson> => Promise.reject(new Error('the projection thread is not running')),
        restarts: () => 1,
      },
    });
    const text = await metrics.scrape();
    expect(metricValue(text, 'ledger_thread_up{thread="projections"}')).toBe(0);
    expect(metricValue(text, 'ledger_thread_restarts_total{thread="projections"}')).toBe(1);
    expect(text.split('\n').filter((l) => l.includes('{thread="projections"}') && !l.startsWith('ledger_thread_'))).toEqual([]);
    expect(warnings).toEqual(['no runtime metrics from the thread for /metrics']);
  });
});

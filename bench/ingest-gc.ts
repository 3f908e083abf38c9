/**
 * What the ingest use case costs in CPU and garbage collection per webhook under the process's Node flags: distinct
 * webhooks (the ingest scenario's bodies) read, checked, hashed and turned into events, into a recording port (no
 * HTTP, no database), 10 000 at a time after a warm-up. Compare young-generation sizes, under the lock:
 *
 *   node --import tsx --max-old-space-size=192 [--max-semi-space-size=32] bench/ingest-gc.ts
 */
import { PerformanceObserver } from 'node:perf_hooks';
import { eventsOfIngest } from './store';

const ROUNDS = 4;
const PER_ROUND = 10_000;
let gcMillis = 0;
let pauses = 0;
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) (gcMillis += entry.duration), (pauses += 1);
}).observe({ entryTypes: ['gc'] });

await eventsOfIngest(PER_ROUND / 2, 1000);
await new Promise((resolve) => setTimeout(resolve, 20));
(gcMillis = 0), (pauses = 0);
const cpu = process.cpuUsage();
for (let round = 0; round < ROUNDS; round++) await eventsOfIngest(PER_ROUND, 1000);
const used = process.cpuUsage(cpu);
await new Promise((resolve) => setTimeout(resolve, 20)); // the observer reports asynchronously
const webhooks = ROUNDS * PER_ROUND;
const flags = process.execArgv.filter((a) => a.startsWith('--max-')).join(' ') || '(no flags)';
console.log(`${flags}: CPU ${((used.user + used.system) / webhooks).toFixed(1)} µs a webhook, GC ${((gcMillis * 1000) / webhooks).toFixed(1)} µs a webhook in ${pauses} pauses`);

import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // A bound for a hung test, not a measure: process-spawning e2e tests took 40–65 s on a machine loaded 6× over.
    testTimeout: 90_000,
    hookTimeout: 90_000,
    pool: 'forks',
    // Two test files at a time even on two cores (vitest's default there is one: the cores less one). The files
    // mostly wait on PostgreSQL and on the processes they start, and each has its own database, so they do not
    // collide: on the 2-core machine the suite took 301 and 317 s with two against 549 and 595 s one at a time.
    maxWorkers: Math.max(2, availableParallelism() - 1),
    // The JSON report is what .ci/run counts; the default reporter is for people.
    reporters: ['default', ['json', { outputFile: '.vitest-report.json' }]],
  },
});

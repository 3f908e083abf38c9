import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // A bound for a hung test, not a measure: process-spawning e2e tests took 40–65 s on a machine loaded 6× over.
    testTimeout: 90_000,
    hookTimeout: 90_000,
    pool: 'forks',
    // The JSON report is what .ci/run counts; the default reporter is for people.
    reporters: ['default', ['json', { outputFile: '.vitest-report.json' }]],
  },
});

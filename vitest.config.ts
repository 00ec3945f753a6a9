import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['**/*.test.ts'],
    exclude: ['node_modules/**'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Tests start real servers on their own ports; two cores, so keep files from fighting.
    fileParallelism: true,
    // Processes, not worker threads: process/child.ts gives children a
    // parent-death signal, which fires when the spawning thread ends.
    pool: 'forks',
    maxWorkers: 2,
    reporters: ['default', './test/summary-reporter.ts'],
  },
});

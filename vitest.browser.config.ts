import { defineConfig } from 'vitest/config';

/**
 * The browser suite (npm run test:browser): the status page in headless Chromium against a real
 * daemon on real Docker. Serial: one browser and one daemon at a time on a shared 2-core machine.
 */
export default defineConfig({
  test: {
    include: ['test/browser/**/*.test.ts'],
    fileParallelism: false,
    maxWorkers: 1,
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});

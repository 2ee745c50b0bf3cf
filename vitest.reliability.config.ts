import { defineConfig } from 'vitest/config';

/**
 * The reliability suite (npm run test:reliability): fault injection, crashes and load against real
 * Docker. Its files run one at a time and never beside the main suite, since they kill daemons,
 * stop Docker engines and load the machine.
 */
export default defineConfig({
  test: {
    include: ['test/reliability/**/*.test.ts'],
    fileParallelism: false,
    maxWorkers: 1,
    testTimeout: 300_000,
    hookTimeout: 180_000,
  },
});

import { defineConfig } from 'vitest/config';

/**
 * The swarm suite (npm run test:swarm): the swarm driver and the daemon on a real two-node Docker
 * Swarm that scripts/swarm-test-env.sh makes around the run. Files run one at a time: they share
 * the swarm's two nodes and their capacity.
 */
export default defineConfig({
  test: {
    include: ['test/swarm/**/*.test.ts'],
    fileParallelism: false,
    maxWorkers: 1,
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});

import { defineConfig } from 'vitest/config';

/**
 * The deployment suite (npm run test:deployment): the daemon with its defaults on a compose project
 * shaped like OpenClaw's own (bridge networks, profiles, agents as uid 1001, the earlier manager's
 * bash + curl + jq clients), and Docker's restart policies across an engine restart. Files run one
 * at a time: they bind the bridge on the Docker gateways and restart engines.
 */
export default defineConfig({
  test: {
    include: ['test/deployment/**/*.test.ts'],
    fileParallelism: false,
    maxWorkers: 1,
    testTimeout: 120_000,
    hookTimeout: 300_000,
  },
});

import { defineConfig } from 'vitest/config';

/**
 * The systemd suite (npm run test:systemd): scripts/install.sh and the unit under a real systemd as
 * PID 1 in a container, with the host's Docker. Files run one at a time: they share that container.
 */
export default defineConfig({
  test: {
    include: ['test/systemd/**/*.systemd.test.ts'],
    fileParallelism: false,
    maxWorkers: 1,
    testTimeout: 180_000,
    hookTimeout: 600_000,
  },
});

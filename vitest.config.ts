import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Fault injection and load run on their own (npm run test:reliability), the browser too (npm run
    // test:browser), and so do the tests that need a two-node swarm made around them (npm run test:swarm),
    // the OpenClaw-shaped deployment (npm run test:deployment) and a real systemd (npm run test:systemd).
    exclude: ['test/reliability/**', 'test/browser/**', 'test/swarm/**', 'test/deployment/**', 'test/systemd/**/*.systemd.test.ts', '**/node_modules/**'],
    // test/<part>/ holds the tests of src/<part> (and sdk/, cli/, shims/); a file that needs a real
    // dockerd says so in its name, *.docker.test.ts (it skips with a message without one, and fails
    // under CI=true). Docker-backed files share one engine; keep files from fighting over it while
    // the others stay fast.
    fileParallelism: true,
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 120_000,
    reporters: ['default'],
  },
});

import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadConfig } from '../../src/contract/index.js';
import { createDaemon } from '../../src/daemon/daemon.js';
import { createPoolClient } from '../../sdk/index.js';
import { type ComposeProject, agentService, createComposeProject } from './docker.js';
import { http } from './http.js';

export const AGENTS = ['ceo', 'cto', 'cfo', 'software-engineer', 'designer', 'qa', 'marketing', 'legal'];
export const INFRA = ['gateway', 'litellm'];

export interface TestDaemonOptions {
  /** pool.env variables (strings, as in the file); POOL_PORT, COMPOSE_*, POOL_DIR and POOL_SOCKET are set by the harness, POOL_BIND defaults to loopback. */
  readonly env?: Record<string, string>;
  readonly agents?: readonly string[];
  /** Infrastructure services, started before the daemon so tests can check they are never touched. */
  readonly infra?: readonly string[];
  readonly autostart?: string;
  /** Reuse a compose project (e.g. across a daemon restart). */
  readonly project?: ComposeProject;
  readonly poolDir?: string;
  readonly socketPath?: string;
}

/** What a test daemon runs its agents on: a compose project, a swarm stack. */
export interface TestBackend {
  /** Stands for COMPOSE_DIR (and so for the default POOL_DIR's parent). */
  readonly dir: string;
  /** pool.env variables that point the daemon at the backend. */
  readonly env: Record<string, string>;
  /** Agents whose containers Docker says are running, sorted. */
  running(): Promise<string[]>;
  remove(): Promise<void>;
}

/**
 * A real daemon in this process: real compose project on real dockerd, real Unix socket in a temp
 * dir, real HTTP on 127.0.0.1. Its clock is real time plus an offset tests can advance, so grace
 * periods are tested without sleeping through them.
 */
export async function startTestDaemon(options: TestDaemonOptions = {}) {
  const infra = options.infra ?? INFRA;
  const project =
    options.project ??
    (await createComposeProject(Object.fromEntries([...(options.agents ?? AGENTS), ...infra].map((name) => [name, agentService()]))));
  const ownsProject = options.project === undefined;
  if (ownsProject && infra.length > 0) await project.compose('up', '-d', ...infra);
  const backend: TestBackend = {
    dir: project.dir,
    env: { COMPOSE_DIR: project.dir, COMPOSE_PROJECT: project.name },
    async running() {
      return (await project.containers())
        .filter((c) => c.state === 'running' && !infra.includes(c.service))
        .map((c) => c.service)
        .sort();
    },
    remove: async () => {
      if (ownsProject) await project.remove();
    },
  };
  return { ...(await launchTestDaemon(backend, { ...options, infra })), project };
}

/** The daemon of `startTestDaemon` on any backend; `stop` removes the backend too unless told to keep it. */
export async function launchTestDaemon(backend: TestBackend, options: Omit<TestDaemonOptions, 'project' | 'agents'> = {}) {
  const infra = options.infra ?? INFRA;
  const scratch = await mkdtemp(join(tmpdir(), 'pool-'));
  const poolDir = options.poolDir ?? join(scratch, 'pool');
  await mkdir(poolDir, { recursive: true });
  if (options.autostart !== undefined) await writeFile(join(poolDir, 'autostart.txt'), options.autostart);
  const socketPath = options.socketPath ?? join(scratch, 's.sock');
  const config = loadConfig({
    cwd: backend.dir,
    env: {
      MAX_AGENTS: '3',
      EVICT_GRACE_SECONDS: '60',
      SYNC_INTERVAL: '3600',
      STOP_TIMEOUT_SECONDS: '3',
      INFRA_SERVICES: infra.join(','),
      ...options.env,
      ...backend.env,
      POOL_PORT: '0',
      POOL_BIND: options.env?.POOL_BIND ?? '127.0.0.1',
      POOL_DIR: poolDir,
      POOL_SOCKET: socketPath,
    },
  });
  // Time that passes moves both of the daemon's clocks alike (clock steps are tested under libfaketime).
  let offsetMs = 0;
  const logs: string[] = [];
  const record = (line: string) => {
    logs.push(line);
    if (process.env.POOL_TEST_LOGS) console.log(line);
  };
  const daemon = createDaemon({ config, log: { info: record, error: record }, clock: {
    wall: () => Date.now() + offsetMs,
    monotonic: () => performance.now() + offsetMs,
  } });
  await daemon.start();
  const url = daemon.bridgeUrl();
  const client = createPoolClient({ socketPath });
  let stopped = false;

  return {
    daemon,
    poolDir,
    socketPath,
    url,
    client,
    logs,
    config,
    /** Lets time pass for the daemon (seconds): both its clocks move. */
    advance(seconds: number) {
      offsetMs += seconds * 1000;
    },
    /** The daemon's wall clock. */
    now: () => Date.now() + offsetMs,
    /** `http` on this daemon's bridge. */
    http: (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => http(url, method, path, body, { headers }),
    /** Agents whose containers Docker says are running (infrastructure excluded). */
    runningInDocker: () => backend.running(),
    async stop({ keepProject = false, stopAgents = false } = {}) {
      if (stopped) return;
      stopped = true;
      client.close();
      await daemon.stop('test finished', { stopAgents });
      if (!keepProject) await backend.remove();
      await rm(scratch, { recursive: true, force: true });
    },
  };
}

export type TestDaemon = Awaited<ReturnType<typeof startTestDaemon>>;
export type LaunchedTestDaemon = Awaited<ReturnType<typeof launchTestDaemon>>;

/** Polls `check` until it stops throwing, or rethrows its last error after `timeoutMs`. */
export async function eventually<T>(check: () => Promise<T> | T, timeoutMs = 10_000, intervalMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await sleep(intervalMs);
    }
  }
}

import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type PoolClient, createPoolClient } from '../../sdk/index.js';
import type { ComposeProject } from '../support/docker.js';
import { type SpawnedDaemon, daemonEnv, spawnDaemon } from '../support/spawn-daemon.js';

export interface DaemonProcess extends SpawnedDaemon {
  readonly client: PoolClient;
  /** Closes the client, SIGKILLs the daemon and waits for it to be gone. */
  kill9(): Promise<void>;
}

export interface CrashPool {
  readonly project: ComposeProject;
  readonly poolDir: string;
  readonly socketPath: string;
  readonly maxAgents: number;
  readonly agents: readonly string[];
  readonly infra: readonly string[];
  /** Spawns the daemon and waits for its `ready:` line; rejects (with its output) if it exits or hangs first. */
  start(): Promise<DaemonProcess>;
  /** Agents whose containers Docker says are running (infrastructure excluded), sorted. */
  runningInDocker(): Promise<string[]>;
  /** Names of files in POOL_DIR. */
  files(): Promise<string[]>;
  cleanup(): Promise<void>;
}

export async function createCrashPool(options: {
  project: ComposeProject;
  agents: readonly string[];
  infra: readonly string[];
  maxAgents: number;
  env?: Record<string, string>;
}): Promise<CrashPool> {
  const scratch = await mkdtemp(join(tmpdir(), 'pc-'));
  const poolDir = join(scratch, 'pool');
  const socketPath = join(scratch, 's.sock');
  if (Buffer.byteLength(socketPath) > 107) throw new Error(`socket path too long: ${socketPath}`);
  const { project, infra, maxAgents } = options;
  const env = daemonEnv(project, scratch, {
    INFRA_SERVICES: infra.join(','),
    MAX_AGENTS: String(maxAgents),
    EVICT_GRACE_SECONDS: '0',
    SYNC_INTERVAL: '5',
    STOP_TIMEOUT_SECONDS: '2',
    ...options.env,
  });

  async function start(): Promise<DaemonProcess> {
    const spawned = spawnDaemon(project.dir, env);
    const client = createPoolClient({ socketPath });
    const daemon: DaemonProcess = {
      ...spawned,
      client,
      async kill9() {
        client.close();
        await spawned.kill();
      },
    };
    await spawned.ready().catch(async (error: unknown) => {
      await daemon.kill9();
      throw error;
    });
    return daemon;
  }

  return {
    project,
    poolDir,
    socketPath,
    maxAgents,
    agents: options.agents,
    infra,
    start,
    async runningInDocker() {
      return (await project.containers())
        .filter((c) => c.state === 'running' && !infra.includes(c.service))
        .map((c) => c.service)
        .sort();
    },
    files: () => readdir(poolDir),
    async cleanup() {
      await rm(scratch, { recursive: true, force: true });
    },
  };
}

/** state.json's agent names, or a description of why it cannot be read as JSON. */
export async function stateFileAgents(poolDir: string): Promise<{ agents: string[] } | { error: string }> {
  let text: string;
  try {
    text = await readFile(join(poolDir, 'state.json'), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { agents: [] };
    return { error: (error as Error).message };
  }
  try {
    const json = JSON.parse(text) as { agents?: Record<string, unknown> };
    return { agents: Object.keys(json.agents ?? {}).sort() };
  } catch (error) {
    return { error: `state.json does not parse: ${(error as Error).message}: ${JSON.stringify(text.slice(0, 200))}` };
  }
}

export const sameSet = (a: readonly string[], b: readonly string[]) =>
  a.length === b.length && [...a].sort().every((x, i) => x === [...b].sort()[i]);

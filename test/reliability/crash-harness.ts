import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { type PoolClient, createPoolClient } from '../../sdk/index.js';
import type { ComposeProject } from '../support/docker.js';
import { BIN } from './support.js';



export interface DaemonProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly client: PoolClient;
  output(): string;
  /** Resolves when `text` appears on stdout/stderr after `from` (an output offset). */
  waitFor(text: string, from?: number): Promise<void>;
  readonly exited: Promise<number | null>;
  isAlive(): boolean;
  /** SIGKILL, and wait for the process to be gone. */
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
  const env = {
    ...process.env,
    COMPOSE_DIR: project.dir,
    COMPOSE_PROJECT: project.name,
    POOL_DIR: poolDir,
    POOL_SOCKET: socketPath,
    POOL_PORT: '0',
    POOL_BIND: '127.0.0.1',
    INFRA_SERVICES: infra.join(','),
    MAX_AGENTS: String(maxAgents),
    EVICT_GRACE_SECONDS: '0',
    SYNC_INTERVAL: '5',
    STOP_TIMEOUT_SECONDS: '2',
    POOL_ENV: '/dev/null',
    ...options.env,
  };

  async function start(): Promise<DaemonProcess> {
    const child = spawn(process.execPath, [BIN], { cwd: project.dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const waiters: { text: string; from: number; resolve: () => void }[] = [];
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      for (const w of [...waiters]) {
        if (output.indexOf(w.text, w.from) >= 0) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve();
        }
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    let alive = true;
    const exited = new Promise<number | null>((resolve) =>
      child.once('exit', (code) => {
        alive = false;
        resolve(code);
      }),
    );
    const waitFor = (text: string, from = 0) =>
      new Promise<void>((resolve) => {
        if (output.indexOf(text, from) >= 0) resolve();
        else waiters.push({ text, from, resolve });
      });
    const client = createPoolClient({ socketPath });
    const daemon: DaemonProcess = {
      child,
      pid: child.pid ?? -1,
      client,
      output: () => output,
      waitFor,
      exited,
      isAlive: () => alive,
      async kill9() {
        client.close();
        if (alive) child.kill('SIGKILL');
        await exited;
      },
    };
    const outcome = await Promise.race([
      waitFor('ready:').then(() => 'ready' as const),
      exited.then((code) => `exited with code ${code}`),
      sleep(30_000).then(() => 'not ready within 30 s'),
    ]);
    if (outcome !== 'ready') {
      await daemon.kill9();
      throw new Error(`daemon did not start: ${outcome}\n${output}`);
    }
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

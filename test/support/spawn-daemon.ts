import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';

/** The built daemon: a spawned daemon is the binary `npm run build` ships, not the sources. */
export const BIN = new URL('../../dist/openclaw-pool.mjs', import.meta.url).pathname;
const ROOT = new URL('../..', import.meta.url).pathname;

/** Builds dist/ once per file (the spawned daemon runs the built binary). */
export async function buildOnce(): Promise<void> {
  await execa('npm', ['run', 'build', '--silent'], { cwd: ROOT });
}

export interface SpawnedDaemon {
  readonly child: ChildProcess;
  /** stdout and stderr as they came, interleaved. */
  output(): string;
  readonly exited: Promise<number | null>;
  isAlive(): boolean;
  /** The bridge's loopback address, from its "bridge listening on" line. */
  url(): string;
  /** Resolves when `text` appears in the output after `from` (an output offset); never rejects. */
  waitFor(text: string, from?: number): Promise<void>;
  /** Waits for the `ready:` line and gives the bridge's address; rejects, with the output, if the daemon exits or hangs first. */
  ready(timeoutMs?: number): Promise<string>;
  /** SIGKILL, and wait for the process to be gone. */
  kill(): Promise<void>;
}

/** Spawns the built daemon in `cwd` with `env` over this process's environment. */
export function spawnDaemon(cwd: string, env: Record<string, string | undefined> = {}, args: readonly string[] = []): SpawnedDaemon {
  const child = spawn(process.execPath, [BIN, ...args], { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
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
  const daemon: SpawnedDaemon = {
    child,
    output: () => output,
    exited,
    isAlive: () => alive,
    url() {
      const match = /bridge listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(output);
      if (!match?.[1]) throw new Error('bridge not listening yet');
      return match[1];
    },
    waitFor,
    async ready(timeoutMs = 30_000) {
      const hung = new AbortController();
      const outcome = await Promise.race([
        waitFor('ready:').then(() => 'ready' as const),
        exited.then((code) => `exited with code ${code}`),
        sleep(timeoutMs, `not ready within ${timeoutMs / 1000} s`, { signal: hung.signal }),
      ]);
      hung.abort();
      if (outcome !== 'ready') throw new Error(`daemon did not start: ${outcome}\n${output}`);
      return daemon.url();
    },
    async kill() {
      if (alive) child.kill('SIGKILL');
      await exited;
    },
  };
  return daemon;
}

/**
 * The pool.env a spawned test daemon runs with on `project` (POOL_ENV=/dev/null: nothing from
 * files): socket in `scratch`, POOL_DIR there too unless given, any free port on loopback,
 * `gateway` as the infrastructure; `extra` last.
 */
export function daemonEnv(
  project: { readonly dir: string; readonly name: string },
  scratch: string,
  extra: Record<string, string> = {},
): Record<string, string> {
  return {
    POOL_ENV: '/dev/null',
    COMPOSE_DIR: project.dir,
    COMPOSE_PROJECT: project.name,
    POOL_DIR: join(scratch, 'pool'),
    POOL_SOCKET: join(scratch, 's.sock'),
    POOL_PORT: '0',
    POOL_BIND: '127.0.0.1',
    INFRA_SERVICES: 'gateway',
    ...extra,
  };
}

import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { DriverError } from '../contract/errors.js';

export interface RunOptions {
  readonly cwd?: string;
  /** Kill the whole process group after this long (ms). */
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
}

/** What the Docker CLI is told in every call: no hints, no colours, plain progress lines. */
const DOCKER_ENV = { DOCKER_CLI_HINTS: 'false', COMPOSE_ANSI: 'never', COMPOSE_PROGRESS: 'plain' };

/**
 * Spawns `argv` with stdout and stderr piped (stdin closed), in its own process group when
 * `detached`. node:child_process directly, not execa: when the daemon is out of file descriptors
 * spawn fails with EMFILE and leaves the child without stdio, which execa 9 trips over (a
 * TypeError thrown from execa() itself, before it listens for the child's 'error' event, which
 * then goes unhandled and ends the process). Here 'error' is always listened for.
 */
export function spawnPiped(argv: readonly [string, ...string[]], options: { cwd?: string; detached?: boolean }): ChildProcess {
  const [file, ...args] = argv;
  return spawn(file, args, { cwd: options.cwd, detached: options.detached ?? false, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...DOCKER_ENV } });
}

interface Outcome {
  readonly stdout: string;
  readonly stderr: string;
  readonly exitCode: number | undefined;
  readonly signal: NodeJS.Signals | undefined;
  /** Set when the command could not be spawned at all (ENOENT, EACCES, EMFILE, ...). */
  readonly spawnError: NodeJS.ErrnoException | undefined;
}

/** Waits for the child to end, collecting its output; never rejects. */
function outcome(child: ChildProcess): Promise<Outcome> {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout?.on('data', (chunk: Buffer) => out.push(chunk));
  child.stderr?.on('data', (chunk: Buffer) => err.push(chunk));
  // A child that could not be spawned emits 'error' and, when its pipes were never made (EMFILE), nothing else.
  return new Promise((resolve) => {
    const settle = (exitCode: number | null, signal: NodeJS.Signals | null, spawnError?: NodeJS.ErrnoException) =>
      resolve({
        stdout: Buffer.concat(out).toString('utf8').replace(/\r?\n$/, ''),
        stderr: Buffer.concat(err).toString('utf8'),
        exitCode: exitCode ?? undefined,
        signal: signal ?? undefined,
        spawnError,
      });
    child.once('error', (error: NodeJS.ErrnoException) => settle(null, null, error));
    child.once('close', (code, signal) => settle(code, signal));
  });
}

/**
 * Runs a command from an argv array (never a shell string) and returns its stdout. Any failure
 * becomes a `DriverError` naming the command, its exit code and what it said on stderr.
 *
 * The command runs in its own process group and the timeout kills the group: `docker compose`
 * runs its plugin as a child that holds the pipes, so killing only the direct child lets the call
 * hang for seconds more.
 */
export async function run(argv: readonly [string, ...string[]], options: RunOptions): Promise<string> {
  const file = argv[0];
  const child = spawnPiped(argv, { ...(options.cwd !== undefined && { cwd: options.cwd }), detached: true });
  let timedOut = false;
  const killGroup = () => {
    if (child.pid === undefined) return;
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  };
  const timer = setTimeout(() => {
    timedOut = true;
    killGroup();
  }, options.timeoutMs);
  options.signal?.addEventListener('abort', killGroup, { once: true });
  const result = await outcome(child);
  clearTimeout(timer);
  options.signal?.removeEventListener('abort', killGroup);
  const { spawnError } = result;
  if (spawnError === undefined && result.exitCode === 0) return result.stdout;

  const stderr = result.stderr.trim();
  const command = argv.join(' ');
  if (timedOut) {
    throw new DriverError(`${command} timed out after ${options.timeoutMs / 1000} s`, argv, undefined, stderr);
  }
  if (spawnError?.code === 'ENOENT') {
    // spawn says ENOENT for a missing working directory too: name the one that is missing.
    if (options.cwd !== undefined && !existsSync(options.cwd)) throw new DriverError(`${options.cwd}: no such directory (running ${file} there)`, argv, undefined, stderr);
    throw new DriverError(`${file} not found: is Docker installed and on PATH (or DOCKER_BIN set)?`, argv, undefined, stderr);
  }
  // spawn says only "spawn docker EACCES", whether the binary or the working directory refused this user.
  if (spawnError?.code === 'EACCES') {
    throw new DriverError(`permission denied running ${file}${options.cwd === undefined ? '' : ` in ${options.cwd}`}`, argv, undefined, stderr);
  }
  // EMFILE and ENFILE among them: the call fails, and the reconcile that made it is tried again at the next tick.
  if (spawnError !== undefined) throw new DriverError(`cannot run ${file}: ${describeOsError(spawnError)}`, argv, undefined, stderr, { cause: spawnError });
  const said = lastLine(stderr) ?? (result.signal === undefined ? `${command} failed with exit code ${result.exitCode}` : `${command} was killed with ${result.signal}`);
  throw new DriverError(said, argv, result.exitCode, stderr);
}

/** Why a command could not be spawned, in words; EMFILE and ENFILE with what to do. */
export function describeOsError(error: NodeJS.ErrnoException): string {
  if (error.code === 'EMFILE') return 'the daemon has no file descriptor left (EMFILE; raise LimitNOFILE or close connections)';
  if (error.code === 'ENFILE') return 'the system has no file descriptor left (ENFILE)';
  return error.message;
}

/** What a Docker command said last is its error; compose writes its progress lines before it. */
function lastLine(text: string): string | undefined {
  const lines = text.split('\n').map((l) => l.trim()).filter(Boolean);
  return lines[lines.length - 1];
}

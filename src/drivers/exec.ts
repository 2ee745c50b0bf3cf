import { existsSync } from 'node:fs';
import { execa } from 'execa';
import { DriverError } from '../core/errors.js';

export interface RunOptions {
  readonly cwd?: string;
  /** Kill the whole process group after this long (ms). */
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
}

/**
 * Runs a command from an argv array (never a shell string) and returns its stdout. Any failure
 * becomes a `DriverError` naming the command, its exit code and what it said on stderr.
 *
 * The command runs in its own process group and the timeout kills the group: `docker compose`
 * runs its plugin as a child that holds the pipes, so killing only the direct child (execa's own
 * `timeout`) lets the call hang for seconds more.
 */
export async function run(argv: readonly [string, ...string[]], options: RunOptions): Promise<string> {
  const [file, ...args] = argv;
  const child = execa(file, args, {
    cwd: options.cwd,
    detached: true,
    reject: false,
    stdin: 'ignore',
    env: { DOCKER_CLI_HINTS: 'false', COMPOSE_ANSI: 'never', COMPOSE_PROGRESS: 'plain' },
  });
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
  const result = await child;
  clearTimeout(timer);
  options.signal?.removeEventListener('abort', killGroup);
  if (!result.failed) return result.stdout;

  const stderr = result.stderr.trim();
  const said = lastLine(stderr) ?? result.shortMessage ?? `exit code ${result.exitCode}`;
  const command = argv.join(' ');
  if (timedOut) {
    throw new DriverError(`${command} timed out after ${options.timeoutMs / 1000} s`, argv, undefined, stderr);
  }
  if ((result as { code?: string }).code === 'ENOENT') {
    // spawn says ENOENT for a missing working directory too: name the one that is missing.
    if (options.cwd !== undefined && !existsSync(options.cwd)) throw new DriverError(`${options.cwd}: no such directory (running ${file} there)`, argv, undefined, stderr);
    throw new DriverError(`${file} not found: is Docker installed and on PATH (or DOCKER_BIN set)?`, argv, undefined, stderr);
  }
  // spawn says only "spawn docker EACCES", whether the binary or the working directory refused this user.
  if ((result as { code?: string }).code === 'EACCES') {
    throw new DriverError(`permission denied running ${file}${options.cwd === undefined ? '' : ` in ${options.cwd}`}`, argv, undefined, stderr);
  }
  throw new DriverError(said, argv, result.exitCode, stderr, { cause: result });
}

/** What a Docker command said last is its error; compose writes its progress lines before it. */
function lastLine(text: string): string | undefined {
  const lines = text.split('\n').map((l) => l.trim()).filter(Boolean);
  return lines[lines.length - 1];
}

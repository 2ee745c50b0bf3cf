import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { DriverError } from '../contract/errors.js';
import type { EngineApi } from './engine-api.js';
import { describeOsError, run, spawnPiped } from './exec.js';

/** Upper bound for a Docker command that may pull an image or wait for a container (ms). */
export const COMMAND_TIMEOUT_MS = 120_000;
/**
 * Read-only queries (`docker ps`, `docker service ps`, network lookups) answer in well under a
 * second on a healthy engine; a hung dockerd (socket accepting, nothing answering) must turn into
 * a reconcile error, hence degraded health, within seconds rather than after the 120 s meant for pulls.
 */
export const QUERY_TIMEOUT_MS = 15_000;
/** Beside a start: is the engine answering at all? Keeps a hung dockerd from holding a request for 120 s. */
const PROBE_TIMEOUT_MS = 10_000;
/** Beyond the graceful stop timeout, how long a stop may take before it is abandoned (ms). */
export const STOP_SLACK_MS = 15_000;

/** Runs the docker CLI (argv only) with a process-group timeout; throws `DriverError`. */
export function dockerCommand(dockerBin: string) {
  return (args: string[], timeoutMs: number, signal?: AbortSignal) =>
    run([dockerBin, ...args], { timeoutMs, ...(signal !== undefined && { signal }) });
}

/** The Docker engine's version (`docker version`); throws a DriverError when the engine does not answer. */
export async function engineVersion(dockerBin: string, timeoutMs: number): Promise<string> {
  return (await run([dockerBin, 'version', '--format', '{{.Server.Version}}'], { timeoutMs })).trim();
}

/** Is the engine answering at all? `answer` resolves, or throws a DriverError saying what Docker said or that it timed out. */
export interface EngineProbe {
  /** The call, as the timeout message names it. */
  readonly what: string;
  answer(timeoutMs: number): Promise<unknown>;
}

/** `GET /_ping` where the Engine API is used, else `docker version`: no process beside a start on the local engine. */
export function engineProbe(dockerBin: string, api: EngineApi | undefined): EngineProbe {
  return api === undefined
    ? { what: 'docker version', answer: (timeoutMs) => engineVersion(dockerBin, timeoutMs) }
    : { what: 'GET /_ping', answer: (timeoutMs) => api.ping(timeoutMs) };
}

/** Fails fast, with what Docker said or a clear timeout, when the engine is down or not answering. */
async function probeEngine(probe: EngineProbe): Promise<void> {
  try {
    await probe.answer(PROBE_TIMEOUT_MS);
  } catch (error) {
    if (error instanceof DriverError && /timed out/.test(error.message)) {
      throw new DriverError(
        `Docker is not answering (${probe.what} timed out after ${PROBE_TIMEOUT_MS / 1000} s); is dockerd hung? check 'systemctl status docker'`,
        error.argv, undefined, error.stderr, { cause: error },
      );
    }
    throw error;
  }
}

/**
 * Runs `work` with the engine probed beside it, not before it: on a healthy engine the probe adds
 * nothing to the work's time, and on a down or hung one it aborts the work (through `signal`) and
 * its error, naming the cause, is the one thrown.
 */
export async function besideProbe<T>(probe: EngineProbe, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const engineDown = new AbortController();
  let probeError: unknown;
  probeEngine(probe).catch((error: unknown) => {
    probeError = error;
    engineDown.abort();
  });
  try {
    return await work(engineDown.signal);
  } catch (error) {
    throw probeError ?? error;
  }
}

/**
 * `docker events` with the given filters, one tab-separated line of `format` fields per event,
 * while the stream is up; ends when it drops or `signal` aborts, and throws when the command
 * cannot be spawned at all (out of file descriptors, say), so the caller's backoff applies.
 */
export async function* dockerEvents(dockerBin: string, filters: readonly string[], format: string, signal: AbortSignal): AsyncGenerator<string[]> {
  if (signal.aborted) return;
  const child = spawnPiped([dockerBin, 'events', ...filters.flatMap((filter) => ['--filter', filter]), '--format', format], {});
  let spawnError: NodeJS.ErrnoException | undefined;
  child.once('error', (error: NodeJS.ErrnoException) => (spawnError = error));
  const stop = () => child.kill();
  signal.addEventListener('abort', stop, { once: true });
  // Without pipes (spawn failed for want of descriptors) there is nothing to read; the 'error' is on its way.
  if (child.stdout === null) await once(child, 'error').catch(() => {});
  else child.stderr?.resume();
  try {
    if (child.stdout !== null) for await (const line of createInterface({ input: child.stdout })) yield line.split('\t');
    if (spawnError !== undefined) throw new DriverError(`cannot run ${dockerBin} events: ${describeOsError(spawnError)}`, [dockerBin, 'events'], undefined, '', { cause: spawnError });
  } finally {
    signal.removeEventListener('abort', stop);
    child.kill();
  }
}

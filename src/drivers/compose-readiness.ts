import { setTimeout as sleep } from 'node:timers/promises';
import { DriverError } from '../contract/errors.js';
import { type ComposeCommands, upArgs } from './compose-commands.js';
import type { ComposeReads } from './compose-reads.js';

/** How often a start re-reads the health compose called healthy too early (ms). */
const HEALTH_POLL_MS = 250;

export interface Readiness {
  /** How long the start waits for the service to be healthy (ms). */
  readonly readyTimeoutMs: number;
  /** Stops the service: a start that never became ready must not keep running uncounted. */
  readonly stop: () => Promise<void>;
  /** Where the container's health is read. */
  readonly reads: ComposeReads;
}

/**
 * `compose up --wait` of a service with a healthcheck, resolved once Docker calls it healthy. A
 * start that came up but did not become healthy in time is stopped, and throws saying so.
 */
export async function upUntilHealthy(commands: ComposeCommands, agent: string, readiness: Readiness, signal: AbortSignal): Promise<void> {
  const { readyTimeoutMs } = readiness;
  const readySeconds = Math.ceil(readyTimeoutMs / 1000);
  const deadline = performance.now() + readyTimeoutMs;
  try {
    await commands.compose(upArgs(agent, '--wait', '--wait-timeout', String(readySeconds)), commands.commandTimeoutMs + readyTimeoutMs, signal);
    await untilHealthy(readiness.reads, agent, deadline, signal);
  } catch (error) {
    // The engine went down (the probe says so in its place), not the agent's health.
    if (signal.aborted) throw error;
    const health = await healthOf(readiness.reads, agent).catch(() => undefined);
    // Not a start that failed but one that never became ready: it must not keep running uncounted.
    if (health === undefined) throw error;
    await readiness.stop();
    throw new DriverError(
      `${agent} did not become healthy within ${readySeconds} s (health: ${health}); stopped it`,
      (error as DriverError).argv ?? [], (error as DriverError).exitCode, (error as DriverError).stderr ?? '', { cause: error },
    );
  }
}

/** The health of the agent's running container and its last probe's output; undefined when none runs. */
async function healthOf(reads: ComposeReads, agent: string): Promise<string | undefined> {
  const health = await reads.health(agent);
  if (health === undefined) return undefined;
  const last = health?.Log?.at(-1)?.Output?.trim().replace(/\s+/g, ' ').slice(0, 200);
  return `${health?.Status ?? 'none'}${last ? `; last check said: ${last}` : ''}`;
}

/**
 * Compose's `up --wait` can return at once for a container whose health dockerd has not set yet
 * (seen on a loaded machine: it then looks like a container without a healthcheck), so its word
 * is checked: healthy by `deadline` (performance.now() ms), or this throws.
 */
async function untilHealthy(reads: ComposeReads, agent: string, deadline: number, signal: AbortSignal): Promise<void> {
  for (;;) {
    const health = await healthOf(reads, agent);
    if (health?.startsWith('healthy')) return;
    if (health === undefined) throw new Error(`${agent} is not running`);
    if (performance.now() >= deadline || signal.aborted) throw new Error(`${agent} is not healthy (${health})`);
    await sleep(HEALTH_POLL_MS);
  }
}

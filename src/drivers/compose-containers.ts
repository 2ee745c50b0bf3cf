import { DriverError } from '../contract/errors.js';
import type { ObservedAgent } from '../core/reconcile.js';
import type { ComposeCommands } from './compose-commands.js';
import type { ComposeReads, ContainerRef } from './compose-reads.js';
import { STOP_SLACK_MS } from './docker.js';

/** The project's service containers, stopped ones included: one read, whatever the pool size. */
export async function listContainers(reads: ComposeReads): Promise<ObservedAgent[]> {
  const observed: ObservedAgent[] = [];
  for (const { service: agent, id: container, state, createdAt: startedAt, addresses } of await reads.containers(true)) {
    // A paused container is up (it holds its memory), as Docker's own State.Running says.
    const paused = state === 'paused';
    const running = state === 'running' || paused;
    observed.push({ agent, running, ...(paused && { paused }), ...(startedAt !== undefined && { startedAt }), container, ...(running && addresses !== undefined && { addresses }) });
  }
  return observed;
}

/** The up containers of a listing (`listContainers`'), as the reads that follow it take them. */
export function upContainers(listed: readonly ObservedAgent[]): ContainerRef[] {
  return listed.flatMap(({ agent, running, container }) => (running && container !== undefined ? [{ service: agent, id: container }] : []));
}

/** `compose stop`, then `kill` if that failed; resolves only once the listing shows the agent down. */
export async function stopService(commands: ComposeCommands, reads: ComposeReads, agent: string, timeoutMs: number): Promise<void> {
  const seconds = Math.ceil(timeoutMs / 1000);
  let stopError: unknown;
  try {
    await commands.compose(['stop', '--timeout', String(seconds), '--', agent], timeoutMs + STOP_SLACK_MS);
  } catch (error) {
    stopError = error;
    // A kill is immediate on a healthy engine; do not wait the 120 s meant for starts.
    await commands.compose(['kill', '--', agent], STOP_SLACK_MS).catch((killError: unknown) => {
      stopError = killError;
    });
  }
  // Counted until Docker confirms it is down, whatever the commands said.
  if ((await listContainers(reads)).some((o) => o.agent === agent && o.running)) {
    if (stopError instanceof DriverError) throw stopError;
    throw new DriverError(`${agent} is still running after stop and kill`, ['docker', 'compose', 'stop', agent], undefined, '');
  }
}

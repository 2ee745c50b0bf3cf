import { setTimeout as sleep } from 'node:timers/promises';
import { DriverError } from '../contract/errors.js';
import { dockerCommand } from './docker.js';
import type { EngineApi } from './engine-api.js';
import { apiSwarmReads } from './swarm-api-reads.js';
import { type SwarmReads, type Task, cliSwarmReads } from './swarm-reads.js';

/** One stack's services, by agent name: an agent is the service `<stack>_<agent>`. Reads go through `SwarmReads`, writes through the docker CLI. Each throws `DriverError`. */
export interface SwarmStack extends SwarmReads {
  readonly dockerBin: string;
  readonly name: string;
  serviceOf(agent: string): string;
  agentOf(service: string): string | undefined;
  docker(args: string[], timeoutMs: number, signal?: AbortSignal): Promise<string>;
  scaleArgv(service: string, replicas: number): string[];
  /** Resolves once no task of the service holds a container; throws when that takes longer than `timeoutMs`. */
  untilGone(service: string, timeoutMs: number): Promise<void>;
}

/** How often a start or a stop looks at its service's tasks. */
export const TASK_POLL_MS = 100;
/** Task states in which a task holds a container or is about to (swarmkit's, as the CLI prints them). */
const LIVE_STATES = new Set(['New', 'Allocated', 'Pending', 'Assigned', 'Accepted', 'Preparing', 'Ready', 'Starting', 'Running']);
/** End states of a task that could not run. */
const FAILED_STATES = new Set(['Failed', 'Rejected', 'Orphaned']);

/** The stack's reads through `api` where the Engine API is used, else through the docker CLI. */
export function createSwarmStack(dockerBin: string, stack: string, api: EngineApi | undefined): SwarmStack {
  const prefix = `${stack}_`;
  const naming = { name: stack, agentOf: (service: string) => (service.startsWith(prefix) && service.length > prefix.length ? service.slice(prefix.length) : undefined) };
  const reads = api === undefined ? cliSwarmReads(dockerBin, naming) : apiSwarmReads(api, naming);

  const swarm: SwarmStack = {
    ...reads,
    ...naming,
    dockerBin,
    serviceOf: (agent) => `${prefix}${agent}`,
    docker: dockerCommand(dockerBin),
    scaleArgv: (service, replicas) => ['service', 'scale', '--detach', `${service}=${replicas}`],
    async untilGone(service, timeoutMs) {
      const deadline = performance.now() + timeoutMs;
      for (;;) {
        const live = (await swarm.tasks(service)).find((t) => LIVE_STATES.has(t.state));
        if (live === undefined) return;
        if (performance.now() > deadline) {
          throw new DriverError(
            `${service}: its task is still ${live.state.toLowerCase()}${live.node ? ` on ${live.node}` : ''} ${Math.round(timeoutMs / 1000)} s after scaling to 0 (swarm stops a task within the service's stop_grace_period, then kills it; is the node down?)`,
            [dockerBin, ...swarm.scaleArgv(service, 0)], undefined, '',
          );
        }
        await sleep(TASK_POLL_MS);
      }
    },
  };
  return swarm;
}

/** Why a start has failed, judged on its service's tasks; undefined while it may still succeed. */
export function startProblem(tasks: readonly Task[], before: ReadonlySet<string>): { message: string; said: string } | undefined {
  // History the service had before this start (earlier failures) says nothing about this one.
  const failed = tasks.find((t) => !before.has(t.id) && FAILED_STATES.has(t.state));
  if (failed !== undefined) {
    return { message: `task ${failed.state.toLowerCase()}${failed.node ? ` on ${failed.node}` : ''}: ${failed.error || 'no reason given'}`, said: failed.error };
  }
  const unplaced = tasks.find((t) => t.state === 'Pending' && t.error !== '');
  if (unplaced !== undefined) return { message: `task cannot be placed: ${unplaced.error}`, said: unplaced.error };
  return undefined;
}

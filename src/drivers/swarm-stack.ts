import { setTimeout as sleep } from 'node:timers/promises';
import { DriverError } from '../contract/errors.js';
import { QUERY_TIMEOUT_MS, dockerCommand } from './docker.js';

/** One task as `docker service ps` / `docker stack ps` print it. */
export interface Task {
  readonly id: string;
  /** The agent whose service ran it; undefined for a service outside the stack's naming. */
  readonly agent: string | undefined;
  readonly node: string | undefined;
  readonly desired: string;
  /** swarmkit's task state: Pending, Preparing, Running, Failed, ... */
  readonly state: string;
  /** What the scheduler or the node said went wrong, e.g. `no suitable node (insufficient resources on 2 nodes)`. */
  readonly error: string;
}

/** The docker commands on one stack's services, by agent name: an agent is the service `<stack>_<agent>`. Each throws `DriverError`. */
export interface SwarmStack {
  readonly dockerBin: string;
  readonly name: string;
  serviceOf(agent: string): string;
  /** The agent a service of the stack is; undefined for a service outside the stack's naming. */
  agentOf(service: string): string | undefined;
  docker(args: string[], timeoutMs: number, signal?: AbortSignal): Promise<string>;
  /** The agents of the stack's services, sorted: one `docker service ls`. */
  agents(): Promise<string[]>;
  /** The service's tasks, history included: one `docker service ps`. */
  tasks(service: string, signal?: AbortSignal): Promise<Task[]>;
  /** Every task of the stack, history included: one `docker stack ps`; none when no service has a task. */
  stackTasks(): Promise<Task[]>;
  scaleArgv(service: string, replicas: number): string[];
  /** Resolves once no task of the service holds a container; throws when that takes longer than `timeoutMs`. */
  untilGone(service: string, timeoutMs: number): Promise<void>;
  /** The agents whose replicas have not converged yet (running ≠ desired); one `docker service ls`. */
  unconverged(signal: AbortSignal): Promise<Set<string>>;
}

export const STACK_LABEL = 'com.docker.stack.namespace';
/** How often a start or a stop looks at its service's tasks: each look is one `docker service ps`. */
export const TASK_POLL_MS = 100;
/** Task states in which a task holds a container or is about to (swarmkit's, as the CLI prints them). */
const LIVE_STATES = new Set(['New', 'Allocated', 'Pending', 'Assigned', 'Accepted', 'Preparing', 'Ready', 'Starting', 'Running']);
/** End states of a task that could not run. */
const FAILED_STATES = new Set(['Failed', 'Rejected', 'Orphaned']);

export function createSwarmStack(dockerBin: string, stack: string): SwarmStack {
  const docker = dockerCommand(dockerBin);
  const prefix = `${stack}_`;
  const agentOf = (service: string) => (service.startsWith(prefix) && service.length > prefix.length ? service.slice(prefix.length) : undefined);
  const parseTasks = (stdout: string): Task[] =>
    stdout.split('\n').filter(Boolean).map((line) => {
      const t = JSON.parse(line) as { ID: string; Name: string; Node: string; DesiredState: string; CurrentState: string; Error: string };
      // `<service>.<slot>` for replicated services; the CLI quotes the error.
      return {
        id: t.ID,
        agent: agentOf(t.Name.replace(/\.[^.]+$/, '')),
        node: t.Node || undefined,
        desired: t.DesiredState,
        state: t.CurrentState.split(' ')[0] ?? '',
        error: t.Error.replace(/^"(.*)"$/s, '$1'),
      };
    });
  const listServices = (format: string, signal?: AbortSignal) =>
    docker(['service', 'ls', '--filter', `label=${STACK_LABEL}=${stack}`, '--format', format], QUERY_TIMEOUT_MS, signal);

  const swarm: SwarmStack = {
    dockerBin,
    name: stack,
    serviceOf: (agent) => `${prefix}${agent}`,
    agentOf,
    docker,
    async agents() {
      return (await listServices('{{.Name}}')).split('\n').map(agentOf).filter((agent) => agent !== undefined).sort();
    },
    async tasks(service, signal) {
      return parseTasks(await docker(['service', 'ps', '--no-trunc', '--format', '{{json .}}', service], QUERY_TIMEOUT_MS, signal));
    },
    async stackTasks() {
      try {
        return parseTasks(await docker(['stack', 'ps', '--no-trunc', '--format', '{{json .}}', stack], QUERY_TIMEOUT_MS));
      } catch (error) {
        // The CLI's way of saying that no service of the stack has a task, e.g. all scaled to 0.
        if (error instanceof DriverError && error.stderr.includes(`nothing found in stack: ${stack}`)) return [];
        throw error;
      }
    },
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
    async unconverged(signal) {
      const pending = new Set<string>();
      for (const line of (await listServices('{{.Name}}\t{{.Replicas}}', signal)).split('\n')) {
        const [name = '', replicas = ''] = line.split('\t');
        const agent = agentOf(name);
        // `1/1`, or `0/1 (max 1 per node)` with a placement limit.
        const counts = /^(\d+)\/(\d+)/.exec(replicas);
        if (agent !== undefined && counts !== null && counts[1] !== counts[2]) pending.add(agent);
      }
      return pending;
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

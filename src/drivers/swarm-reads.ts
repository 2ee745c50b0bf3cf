import { DriverError } from '../contract/errors.js';
import { QUERY_TIMEOUT_MS, dockerCommand, dockerEvents } from './docker.js';

export const STACK_LABEL = 'com.docker.stack.namespace';

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

/** A stack by name, and which of its services are agents. */
export interface StackNaming {
  readonly name: string;
  /** The agent a service of the stack is; undefined for a service outside the stack's naming. */
  agentOf(service: string): string | undefined;
}

/** What the swarm driver reads of the engine, through the Engine API or, where it cannot be used, the docker CLI. Each throws `DriverError`. */
export interface SwarmReads {
  /** The agents of the stack's services (found by its namespace label), sorted. */
  agents(): Promise<string[]>;
  /** The service's tasks, history included, newest first. */
  tasks(service: string, signal?: AbortSignal): Promise<Task[]>;
  /** Every task of the stack, history included, by service and slot, newest first; none when no service has a task. */
  stackTasks(): Promise<Task[]>;
  /** The agents whose replicas have not converged yet (running ≠ desired). */
  unconverged(signal: AbortSignal): Promise<Set<string>>;
  /** This engine's part in a swarm: its LocalNodeState (inactive, active, locked, ...) and whether it is a manager. */
  swarmRole(): Promise<{ readonly state: string; readonly manager: boolean }>;
  /** Service changes on the swarm, any stack's, while the stream is up; ends when it drops or `signal` aborts. */
  serviceChanges(signal: AbortSignal): AsyncGenerator<{ readonly service: string; readonly action: string }>;
  /** The calls behind `swarmRole` and `agents`, as the errors about what they found name them. */
  readonly calls: { readonly role: readonly string[]; readonly services: readonly string[] };
}

/** Reads through the docker CLI, for engines the API client does not reach (ssh://, TLS) and for a DOCKER_BIN wrapper. */
export function cliSwarmReads(dockerBin: string, stack: StackNaming): SwarmReads {
  const docker = dockerCommand(dockerBin);
  const { agentOf } = stack;
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
  const servicesArgv = ['service', 'ls', '--filter', `label=${STACK_LABEL}=${stack.name}`];
  const listServices = (format: string, signal?: AbortSignal) => docker([...servicesArgv, '--format', format], QUERY_TIMEOUT_MS, signal);
  const roleArgv = ['info', '--format', '{{.Swarm.LocalNodeState}}\t{{.Swarm.ControlAvailable}}'];

  return {
    calls: { role: [dockerBin, ...roleArgv], services: [dockerBin, ...servicesArgv] },
    async agents() {
      return (await listServices('{{.Name}}')).split('\n').map(agentOf).filter((agent) => agent !== undefined).sort();
    },
    async tasks(service, signal) {
      return parseTasks(await docker(['service', 'ps', '--no-trunc', '--format', '{{json .}}', service], QUERY_TIMEOUT_MS, signal));
    },
    async stackTasks() {
      try {
        return parseTasks(await docker(['stack', 'ps', '--no-trunc', '--format', '{{json .}}', stack.name], QUERY_TIMEOUT_MS));
      } catch (error) {
        // The CLI's way of saying that no service of the stack has a task, e.g. all scaled to 0.
        if (error instanceof DriverError && error.stderr.includes(`nothing found in stack: ${stack.name}`)) return [];
        throw error;
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
    async swarmRole() {
      const [state = '', control] = (await docker(roleArgv, QUERY_TIMEOUT_MS)).trim().split('\t');
      return { state, manager: control === 'true' };
    },
    async *serviceChanges(signal) {
      for await (const [service = '', action = ''] of dockerEvents(dockerBin, ['type=service'], '{{.Actor.Attributes.name}}\t{{.Action}}', signal)) yield { service, action };
    },
  };
}

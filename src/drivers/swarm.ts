import { setTimeout as sleep } from 'node:timers/promises';
import type { AgentDriver } from '../core/driver.js';
import { DriverError } from '../core/errors.js';
import type { ObservedAgent } from '../core/reconcile.js';
import { COMMAND_TIMEOUT_MS, QUERY_TIMEOUT_MS, STOP_SLACK_MS, besideProbe, dockerCommand, dockerEvents } from './docker.js';

export interface SwarmDriverOptions {
  readonly dockerBin: string;
  /** The stack whose services are the agents (`docker stack deploy -c compose.yaml <stack>`). */
  readonly stack: string;
  /** How long a start may wait for its task to run, image pull included (ms). */
  readonly startTimeoutMs?: number;
}

export interface SwarmStackInfo {
  readonly name: string;
  readonly services: string[];
  /** None: overlay networks have no gateway on this host that containers on other nodes could reach. */
  readonly networks: string[];
}

/** One task as `docker service ps` / `docker stack ps` print it. */
interface Task {
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

const STACK_LABEL = 'com.docker.stack.namespace';
/** How often a start or a stop looks at its service's tasks: each look is one `docker service ps`. */
const TASK_POLL_MS = 100;
/**
 * Swarm reports no event when a task comes up or goes down, only when a service changes. After
 * such a change its replicas are compared this often, so that the reconcile that follows sees the
 * outcome; a task that cannot be placed never converges, hence the bound.
 */
const CONVERGE_POLL_MS = 500;
const CONVERGE_WAIT_MS = 60_000;
/** Task states in which a task holds a container or is about to (swarmkit's, as the CLI prints them). */
const LIVE_STATES = new Set(['New', 'Allocated', 'Pending', 'Assigned', 'Accepted', 'Preparing', 'Ready', 'Starting', 'Running']);
/** End states of a task that could not run. */
const FAILED_STATES = new Set(['Failed', 'Rejected', 'Orphaned']);
const TICK = Symbol('tick');

/**
 * Drives a Docker Swarm stack from a manager node. An agent is the replicated service
 * `<stack>_<agent>`, scaled between 0 and 1; the scheduler picks the node. Infrastructure services
 * of the stack are never scaled (the pool never names them).
 */
export function createSwarmDriver(options: SwarmDriverOptions) {
  const { stack } = options;
  const startTimeoutMs = options.startTimeoutMs ?? COMMAND_TIMEOUT_MS;
  const docker = dockerCommand(options.dockerBin);
  const prefix = `${stack}_`;
  const serviceOf = (agent: string) => `${prefix}${agent}`;
  const agentOf = (service: string) => (service.startsWith(prefix) && service.length > prefix.length ? service.slice(prefix.length) : undefined);
  /** Starts and stops in flight, by agent: their services are not settled yet, whatever their replicas say. */
  const operating = new Map<string, number>();

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

  const serviceTasks = async (service: string, signal?: AbortSignal) =>
    parseTasks(await docker(['service', 'ps', '--no-trunc', '--format', '{{json .}}', service], QUERY_TIMEOUT_MS, signal));

  const scaleArgv = (service: string, replicas: number) => ['service', 'scale', '--detach', `${service}=${replicas}`];

  /** Resolves once no task of the service holds a container; throws when that takes longer than `timeoutMs`. */
  const untilGone = async (service: string, timeoutMs: number): Promise<void> => {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const live = (await serviceTasks(service)).find((t) => LIVE_STATES.has(t.state));
      if (live === undefined) return;
      if (performance.now() > deadline) {
        throw new DriverError(
          `${service}: its task is still ${live.state.toLowerCase()}${live.node ? ` on ${live.node}` : ''} ${Math.round(timeoutMs / 1000)} s after scaling to 0 (swarm stops a task within the service's stop_grace_period, then kills it; is the node down?)`,
          [options.dockerBin, ...scaleArgv(service, 0)], undefined, '',
        );
      }
      await sleep(TASK_POLL_MS);
    }
  };

  async function tracked<T>(agent: string, operation: () => Promise<T>): Promise<T> {
    operating.set(agent, (operating.get(agent) ?? 0) + 1);
    try {
      return await operation();
    } finally {
      const left = (operating.get(agent) ?? 1) - 1;
      if (left === 0) operating.delete(agent);
      else operating.set(agent, left);
    }
  }

  /** Why a start has failed, judged on its service's tasks; undefined while it may still succeed. */
  const startProblem = (tasks: readonly Task[], before: ReadonlySet<string>): { message: string; said: string } | undefined => {
    // History the service had before this start (earlier failures) says nothing about this one.
    const failed = tasks.find((t) => !before.has(t.id) && FAILED_STATES.has(t.state));
    if (failed !== undefined) {
      return { message: `task ${failed.state.toLowerCase()}${failed.node ? ` on ${failed.node}` : ''}: ${failed.error || 'no reason given'}`, said: failed.error };
    }
    const unplaced = tasks.find((t) => t.state === 'Pending' && t.error !== '');
    if (unplaced !== undefined) return { message: `task cannot be placed: ${unplaced.error}`, said: unplaced.error };
    return undefined;
  };

  const services = async (): Promise<string[]> => {
    const stdout = await docker(['service', 'ls', '--filter', `label=${STACK_LABEL}=${stack}`, '--format', '{{.Name}}'], QUERY_TIMEOUT_MS);
    return stdout.split('\n').map(agentOf).filter((agent) => agent !== undefined).sort();
  };

  /** Checks that the engine is a swarm manager and reads the stack's services; the daemon will not start otherwise. */
  const init = async (): Promise<SwarmStackInfo> => {
    const argv = ['info', '--format', '{{.Swarm.LocalNodeState}}\t{{.Swarm.ControlAvailable}}'];
    const [state = '', control] = (await docker(argv, QUERY_TIMEOUT_MS)).trim().split('\t');
    if (state !== 'active' || control !== 'true') {
      const why =
        state === 'inactive'
          ? "this Docker engine is not part of a swarm (create one with 'docker swarm init', or join one)"
          : state === 'active'
            ? "this Docker engine is a swarm worker, not a manager (run openclaw-pool on a manager node, or promote this one with 'docker node promote <node>' on a manager)"
            : `this Docker engine's swarm state is "${state}" (see 'docker info'; a locked swarm needs 'docker swarm unlock')`;
      throw new DriverError(`POOL_DRIVER=swarm needs a swarm manager: ${why}`, [options.dockerBin, ...argv], undefined, '');
    }
    const names = await services();
    if (names.length === 0) {
      throw new DriverError(
        `stack ${stack} has no services; deploy it first (docker stack deploy -c compose.yaml ${stack}), or set SWARM_STACK to the stack's name`,
        [options.dockerBin, 'service', 'ls', '--filter', `label=${STACK_LABEL}=${stack}`], undefined, '',
      );
    }
    return { name: stack, services: names, networks: [] };
  };

  /** The agents whose replicas have not converged yet (running ≠ desired); one `docker service ls`. */
  const unconverged = async (signal: AbortSignal): Promise<Set<string>> => {
    const stdout = await docker(['service', 'ls', '--filter', `label=${STACK_LABEL}=${stack}`, '--format', '{{.Name}}\t{{.Replicas}}'], QUERY_TIMEOUT_MS, signal);
    const pending = new Set<string>();
    for (const line of stdout.split('\n')) {
      const [name = '', replicas = ''] = line.split('\t');
      const agent = agentOf(name);
      // `1/1`, or `0/1 (max 1 per node)` with a placement limit.
      const counts = /^(\d+)\/(\d+)/.exec(replicas);
      if (agent !== undefined && counts !== null && counts[1] !== counts[2]) pending.add(agent);
    }
    return pending;
  };

  const driver = {
    init,
    services,

    async start(agent: string) {
      const service = serviceOf(agent);
      await tracked(agent, () =>
        besideProbe(options.dockerBin, async (signal) => {
          const before = new Set((await serviceTasks(service, signal)).map((t) => t.id));
          await docker(scaleArgv(service, 1), QUERY_TIMEOUT_MS, signal);
          const deadline = performance.now() + startTimeoutMs;
          for (;;) {
            const tasks = await serviceTasks(service, signal);
            if (tasks.some((t) => t.state === 'Running' && t.desired === 'Running')) return;
            const problem = startProblem(tasks, before) ?? (performance.now() > deadline ? { message: `task not running after ${startTimeoutMs / 1000} s`, said: '' } : undefined);
            if (problem !== undefined) {
              // Back to 0 before the slot is given up: left at 1, the scheduler would place the task
              // later, behind the pool's back. Should that fail too, a later reconcile adopts or drops it.
              await docker(scaleArgv(service, 0), QUERY_TIMEOUT_MS)
                .then(() => untilGone(service, STOP_SLACK_MS))
                .catch(() => {});
              throw new DriverError(`${service}: ${problem.message}`, [options.dockerBin, ...scaleArgv(service, 1)], undefined, problem.said);
            }
            await sleep(TASK_POLL_MS, undefined, { signal });
          }
        }),
      );
    },

    /**
     * Scales the service to 0 and resolves once its task is gone. Swarm, not this call, decides how
     * long a graceful stop may take (the service's `stop_grace_period`, then a kill on its node);
     * `timeoutMs` only bounds the wait, beyond the usual slack.
     */
    async stop(agent: string, timeoutMs: number) {
      const service = serviceOf(agent);
      await tracked(agent, async () => {
        try {
          await docker(scaleArgv(service, 0), QUERY_TIMEOUT_MS);
        } catch (error) {
          // A service removed from the stack has no task left to stop.
          if (error instanceof DriverError && /not found/i.test(error.stderr)) return;
          throw error;
        }
        await untilGone(service, timeoutMs + STOP_SLACK_MS);
      });
    },

    /**
     * One `docker stack ps`: every task of the stack with its desired and current state and its
     * node, history included; an agent runs where one of its tasks is running. The CLI prints task
     * times only relative to now, so adopted agents count as started when they are found.
     */
    async list(): Promise<ObservedAgent[]> {
      let stdout: string;
      try {
        stdout = await docker(['stack', 'ps', '--no-trunc', '--format', '{{json .}}', stack], QUERY_TIMEOUT_MS);
      } catch (error) {
        // The CLI's way of saying that no service of the stack has a task, e.g. all scaled to 0.
        if (error instanceof DriverError && error.stderr.includes(`nothing found in stack: ${stack}`)) return [];
        throw error;
      }
      const observed: ObservedAgent[] = [];
      for (const task of parseTasks(stdout)) {
        if (task.agent === undefined) continue;
        const running = task.state === 'Running';
        observed.push({ agent: task.agent, running, ...(running && task.node !== undefined && { node: task.node }) });
      }
      return observed;
    },

    /**
     * Service changes of the stack (a scale behind the pool's back, an update, a removal), each
     * followed by `converged` once its replicas have, since tasks coming up or down on a node send
     * the manager no event of their own.
     */
    async *events(signal: AbortSignal) {
      const done = new AbortController();
      const stream = AbortSignal.any([signal, done.signal]);
      const changes = dockerEvents(options.dockerBin, ['type=service'], '{{.Actor.Attributes.name}}\t{{.Action}}', stream);
      /** Agents whose service changed, with when to stop waiting for it to converge. */
      const settling = new Map<string, number>();
      let next = changes.next();
      try {
        for (;;) {
          const got = settling.size === 0 ? await next : await Promise.race([next, sleep(CONVERGE_POLL_MS, TICK, { signal: stream }).catch(() => TICK)]);
          if (typeof got === 'symbol') {
            // An engine that stops answering ends the events stream too; until then, keep waiting.
            const pending = await unconverged(stream).catch(() => undefined);
            const now = performance.now();
            for (const [agent, until] of settling) {
              if (now <= until && (pending === undefined || pending.has(agent) || operating.has(agent))) continue;
              settling.delete(agent);
              yield { agent, action: 'converged' };
            }
            continue;
          }
          if (got.done === true) return;
          next = changes.next();
          const [name = '', action] = got.value;
          const agent = agentOf(name);
          if (agent === undefined || !action) continue;
          settling.set(agent, performance.now() + CONVERGE_WAIT_MS);
          yield { agent, action };
        }
      } finally {
        done.abort();
        await changes.return(undefined);
      }
    },
  } satisfies AgentDriver & Record<string, unknown>;
  return driver;
}

import { setTimeout as sleep } from 'node:timers/promises';
import type { AgentDriver } from '../core/driver.js';
import { DriverError } from '../contract/errors.js';
import type { ObservedAgent } from '../core/reconcile.js';
import { COMMAND_TIMEOUT_MS, QUERY_TIMEOUT_MS, STOP_SLACK_MS, besideProbe, engineProbe } from './docker.js';
import type { EngineApi } from './engine-api.js';
import { serviceEvents } from './swarm-events.js';
import { type SwarmStack, TASK_POLL_MS, createSwarmStack, startProblem } from './swarm-stack.js';

export interface SwarmDriverOptions {
  readonly dockerBin: string;
  /** The stack whose services are the agents (`docker stack deploy -c compose.yaml <stack>`). */
  readonly stack: string;
  /** How long a start may wait for its task to run, image pull included (ms). */
  readonly startTimeoutMs?: number;
  /** Where the driver reads services, tasks, nodes and service events; the docker CLI without one. Scaling goes through the CLI either way. */
  readonly engine?: EngineApi;
}

export interface SwarmStackInfo {
  readonly name: string;
  readonly services: string[];
  /** None: overlay networks have no gateway on this host that containers on other nodes could reach. */
  readonly networks: string[];
}

/** The swarm backend: the port, and the check that reads the stack at start-up. */
export interface SwarmDriver extends AgentDriver {
  /** Checks that the engine is a swarm manager and reads the stack's services; the daemon will not start otherwise. */
  init(): Promise<SwarmStackInfo>;
  events(signal: AbortSignal): AsyncIterable<{ readonly agent: string; readonly action: string }>;
}

/**
 * Drives a Docker Swarm stack from a manager node. An agent is the replicated service
 * `<stack>_<agent>`, scaled between 0 and 1; the scheduler picks the node. Infrastructure services
 * of the stack are never scaled (the pool never names them).
 */
export function createSwarmDriver(options: SwarmDriverOptions): SwarmDriver {
  const startTimeoutMs = options.startTimeoutMs ?? COMMAND_TIMEOUT_MS;
  const stack = createSwarmStack(options.dockerBin, options.stack, options.engine);
  const { docker, scaleArgv } = stack;
  const probe = engineProbe(options.dockerBin, options.engine);
  /** Starts and stops in flight, by agent: their services are not settled yet, whatever their replicas say. */
  const operating = new Map<string, number>();

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

  return {
    init: () => checkManager(stack),
    services: () => stack.agents(),

    async start(agent: string) {
      await tracked(agent, () => besideProbe(probe, (signal) => scaleUp(stack, stack.serviceOf(agent), startTimeoutMs, signal)));
    },

    /**
     * Scales the service to 0 and resolves once its task is gone. Swarm, not this call, decides how
     * long a graceful stop may take (the service's `stop_grace_period`, then a kill on its node);
     * `timeoutMs` only bounds the wait, beyond the usual slack.
     */
    async stop(agent: string, timeoutMs: number) {
      const service = stack.serviceOf(agent);
      await tracked(agent, async () => {
        try {
          await docker(scaleArgv(service, 0), QUERY_TIMEOUT_MS);
        } catch (error) {
          // A service removed from the stack has no task left to stop.
          if (error instanceof DriverError && /not found/i.test(error.stderr)) return;
          throw error;
        }
        await stack.untilGone(service, timeoutMs + STOP_SLACK_MS);
      });
    },

    /**
     * One read of the stack's tasks (`docker stack ps`, or the API's task, service and node
     * listings side by side): each task's desired and current state and its node, history
     * included; an agent runs where one of its tasks is running. The CLI prints task times only
     * relative to now, so adopted agents count as started when they are found (on both paths, so
     * that which one is used changes nothing the pool decides).
     */
    async list(): Promise<ObservedAgent[]> {
      const observed: ObservedAgent[] = [];
      for (const task of await stack.stackTasks()) {
        if (task.agent === undefined) continue;
        const running = task.state === 'Running';
        observed.push({ agent: task.agent, running, ...(running && task.node !== undefined && { node: task.node }) });
      }
      return observed;
    },

    events: (signal: AbortSignal) => serviceEvents(stack, (agent) => operating.has(agent), signal),
  };
}

/** Scales the service to 1 and resolves once its task runs; a start that fails is scaled back to 0 before it throws. */
async function scaleUp(stack: SwarmStack, service: string, startTimeoutMs: number, signal: AbortSignal): Promise<void> {
  const { docker, scaleArgv } = stack;
  const before = new Set((await stack.tasks(service, signal)).map((t) => t.id));
  await docker(scaleArgv(service, 1), QUERY_TIMEOUT_MS, signal);
  const deadline = performance.now() + startTimeoutMs;
  for (;;) {
    const tasks = await stack.tasks(service, signal);
    if (tasks.some((t) => t.state === 'Running' && t.desired === 'Running')) return;
    const problem = startProblem(tasks, before) ?? (performance.now() > deadline ? { message: `task not running after ${startTimeoutMs / 1000} s`, said: '' } : undefined);
    if (problem !== undefined) {
      // Back to 0 before the slot is given up: left at 1, the scheduler would place the task
      // later, behind the pool's back. Should that fail too, a later reconcile adopts or drops it.
      await docker(scaleArgv(service, 0), QUERY_TIMEOUT_MS)
        .then(() => stack.untilGone(service, STOP_SLACK_MS))
        .catch(() => {});
      throw new DriverError(`${service}: ${problem.message}`, [stack.dockerBin, ...scaleArgv(service, 1)], undefined, problem.said);
    }
    await sleep(TASK_POLL_MS, undefined, { signal });
  }
}

/** Checks that the engine is a swarm manager and reads the stack's services. */
async function checkManager(stack: SwarmStack): Promise<SwarmStackInfo> {
  const { state, manager } = await stack.swarmRole();
  if (state !== 'active' || !manager) {
    const why =
      state === 'inactive'
        ? "this Docker engine is not part of a swarm (create one with 'docker swarm init', or join one)"
        : state === 'active'
          ? "this Docker engine is a swarm worker, not a manager (run openclaw-pool on a manager node, or promote this one with 'docker node promote <node>' on a manager)"
          : `this Docker engine's swarm state is "${state}" (see 'docker info'; a locked swarm needs 'docker swarm unlock')`;
    throw new DriverError(`POOL_DRIVER=swarm needs a swarm manager: ${why}`, [...stack.calls.role], undefined, '');
  }
  const names = await stack.agents();
  if (names.length === 0) {
    throw new DriverError(
      `stack ${stack.name} has no services; deploy it first (docker stack deploy -c compose.yaml ${stack.name}), or set SWARM_STACK to the stack's name`,
      [...stack.calls.services], undefined, '',
    );
  }
  return { name: stack.name, services: names, networks: [] };
}

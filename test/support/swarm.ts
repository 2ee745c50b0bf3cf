import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { AGENTS, INFRA, type TestDaemonOptions, eventually, launchTestDaemon } from './daemon.js';
import { AGENT_COMMAND, TEST_IMAGE } from './docker.js';

/** Set by scripts/swarm-test-env.sh: the worker engine's socket, the two nodes' names, the manager's address on their network. */
export const WORKER_HOST = process.env.POOL_SWARM_WORKER_HOST ?? '';
export const WORKER_NODE = process.env.POOL_SWARM_WORKER_NODE ?? '';
export const MANAGER_NODE = process.env.POOL_SWARM_MANAGER_NODE ?? '';
export const MANAGER_ADDR = process.env.POOL_SWARM_MANAGER_ADDR ?? '';

/**
 * Whether the two-node test swarm of scripts/swarm-test-env.sh is up. Under CI=true its absence
 * fails the file: a green run must have exercised a real swarm.
 */
export async function requireSwarm(): Promise<boolean> {
  const problem = await swarmProblem();
  if (problem === undefined) return true;
  const message = `Swarm tests cannot run: ${problem}. Run them with 'npm run test:swarm' (as root: scripts/swarm-test-env.sh makes a two-node swarm for them).`;
  if (process.env.CI === 'true') throw new Error(message);
  console.warn(`SKIPPED: ${message}`);
  return false;
}

async function swarmProblem(): Promise<string | undefined> {
  if (WORKER_HOST === '' || WORKER_NODE === '') return 'no test swarm (POOL_SWARM_WORKER_HOST is not set)';
  const info = await execa('docker', ['info', '--format', '{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}'], { reject: false, timeout: 20_000 });
  if (info.stdout.trim() !== 'active true') return `the main engine is not a swarm manager ('${info.stdout.trim() || info.stderr.trim()}')`;
  const worker = await execa('docker', ['node', 'ls', '--filter', `name=${WORKER_NODE}`, '--format', '{{.Status}}'], { reject: false, timeout: 20_000 });
  if (worker.stdout.trim() !== 'Ready') return `the worker node ${WORKER_NODE} is not Ready ('${worker.stdout.trim() || worker.stderr.trim()}')`;
  return undefined;
}

/** A stack service running the test agent, scaled to 0 until the pool starts it. */
export function swarmAgentService(deploy: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    image: TEST_IMAGE,
    command: AGENT_COMMAND,
    stop_grace_period: '3s',
    deploy: { replicas: 0, ...deploy },
  };
}

export interface SwarmTask {
  readonly agent: string;
  readonly node: string;
  readonly state: string;
}

export interface SwarmStack {
  readonly dir: string;
  readonly name: string;
  /** `docker service scale <stack>_<agent>=<n>`, behind any daemon's back; returns before the tasks follow. */
  scale(agent: string, replicas: number): Promise<void>;
  /** Tasks of the stack that hold a container or are about to (any node), as Docker lists them. */
  liveTasks(): Promise<SwarmTask[]>;
  /** Agents with a running task, sorted. */
  running(): Promise<string[]>;
  remove(): Promise<void>;
}

const LIVE = new Set(['New', 'Allocated', 'Pending', 'Assigned', 'Accepted', 'Preparing', 'Ready', 'Starting', 'Running']);

/**
 * Deploys a stack (a compose file, v3 as `docker stack deploy` reads it) under a unique name, with
 * images resolved locally (no registry here), and waits until the services deployed with replicas
 * (infrastructure) run, as `docker compose up -d` would have.
 */
export async function createSwarmStack(services: Record<string, Record<string, unknown>>, networks?: Record<string, Record<string, unknown>>): Promise<SwarmStack> {
  const dir = await mkdtemp(join(tmpdir(), 'pool-stack-'));
  const name = `pst${process.pid.toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  const file = join(dir, 'compose.yaml');
  await writeFile(file, JSON.stringify({ version: '3.8', services, ...(networks !== undefined && { networks }) }, null, 2));
  await execa('docker', ['stack', 'deploy', '--resolve-image', 'never', '-c', file, name]);
  const prefix = `${name}_`;
  const tasks = async (): Promise<SwarmTask[]> => {
    const r = await execa('docker', ['stack', 'ps', '--no-trunc', '--format', '{{.Name}}\t{{.Node}}\t{{.CurrentState}}', name], { reject: false });
    if (r.failed && /nothing found in stack/.test(r.stderr)) return [];
    if (r.failed) throw new Error(r.stderr);
    return r.stdout.split('\n').filter(Boolean).map((line) => {
      const [task = '', node = '', current = ''] = line.split('\t');
      return { agent: task.replace(/\.[^.]+$/, '').slice(prefix.length), node, state: current.split(' ')[0] ?? '' };
    });
  };
  const running = async () => [...new Set((await tasks()).filter((t) => t.state === 'Running').map((t) => t.agent))].sort();
  const alwaysOn = Object.entries(services)
    .filter(([, service]) => ((service.deploy as { replicas?: number } | undefined)?.replicas ?? 1) > 0)
    .map(([service]) => service);
  await eventually(async () => {
    const up = await running();
    if (!alwaysOn.every((service) => up.includes(service))) throw new Error(`stack ${name}: ${alwaysOn.join(', ')} not running after 60 s (running: ${up.join(', ') || 'none'})`);
  }, 60_000, 200);
  return {
    dir,
    name,
    async scale(agent, replicas) {
      await execa('docker', ['service', 'scale', '--detach', `${prefix}${agent}=${replicas}`]);
    },
    liveTasks: async () => (await tasks()).filter((t) => LIVE.has(t.state)),
    running,
    async remove() {
      // Removes the services at once; their tasks wind down in the background (a few seconds each,
      // which tests need not wait for: they only ever look at their own stack).
      await execa('docker', ['stack', 'rm', name], { reject: false });
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface SwarmTestDaemonOptions extends Omit<TestDaemonOptions, 'project'> {
  /** Reuse a stack (e.g. across a daemon restart). */
  readonly stack?: SwarmStack;
  /** Extra services of the stack, beside agents and infrastructure (e.g. with placement or reservations). */
  readonly services?: Record<string, Record<string, unknown>>;
}

/** `startTestDaemon` with POOL_DRIVER=swarm on a fresh stack: infrastructure at 1 replica, agents at 0. */
export async function startSwarmTestDaemon(options: SwarmTestDaemonOptions = {}) {
  const infra = options.infra ?? INFRA;
  const stack =
    options.stack ??
    (await createSwarmStack({
      ...Object.fromEntries((options.agents ?? AGENTS).map((agent) => [agent, swarmAgentService()])),
      ...Object.fromEntries(infra.map((service) => [service, swarmAgentService({ replicas: 1 })])),
      ...options.services,
    }));
  const ownsStack = options.stack === undefined;
  const backend = {
    dir: stack.dir,
    env: { POOL_DRIVER: 'swarm', SWARM_STACK: stack.name },
    running: async () => (await stack.running()).filter((agent) => !infra.includes(agent)),
    remove: async () => {
      if (ownsStack) await stack.remove();
    },
  };
  return { ...(await launchTestDaemon(backend, { ...options, infra })), stack };
}

export type SwarmTestDaemon = Awaited<ReturnType<typeof startSwarmTestDaemon>>;

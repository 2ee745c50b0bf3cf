import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EngineApi } from '../../src/drivers/engine-api.js';
import { createSwarmStack as openStack } from '../../src/drivers/swarm-stack.js';
import { eventually } from '../support/daemon.js';
import { spawnDaemon } from '../support/spawn-daemon.js';
import { type SwarmStack, WORKER_NODE, createSwarmStack, requireSwarm, swarmAgentService } from '../support/swarm.js';
import { useTempDir } from '../support/tmp.js';
import { managerEngine, workerEngine } from './engines.js';

const swarm = await requireSwarm();

/** The API as an engine older than API 1.41 answers it: services without ServiceStatus. */
function withoutServiceStatus(api: EngineApi): EngineApi {
  return {
    ...api,
    async get<T>(path: string, query?: Record<string, unknown>) {
      const reply = await api.get<T>(path, query);
      return (path === '/services' ? (reply as { ServiceStatus?: unknown }[]).map(({ ServiceStatus: _, ...rest }) => rest) : reply) as T;
    },
  };
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? NaN;

describe.skipIf(!swarm)('swarm reads through the Engine API, against the docker CLI, on a real two-node swarm', () => {
  let stack: SwarmStack;
  const both = () => ({ api: openStack('docker', stack.name, managerEngine()), cli: openStack('docker', stack.name, undefined) });
  beforeAll(async () => {
    stack = await createSwarmStack({
      ceo: swarmAgentService(),
      remote: swarmAgentService({ placement: { constraints: [`node.hostname == ${WORKER_NODE}`] } }),
      idle: swarmAgentService(),
      huge: swarmAgentService({ resources: { reservations: { memory: '4096G' } } }),
      ghost: { ...swarmAgentService(), image: 'openclaw-pool/absent:1' },
      gateway: swarmAgentService({ replicas: 1 }),
    });
    for (const agent of ['ceo', 'remote', 'huge', 'ghost']) await stack.scale(agent, 1);
    // History that stays put: rejected tasks of a service scaled back to 0, beside a task no node has room for.
    const { cli } = both();
    await eventually(async () => expect((await cli.tasks(`${stack.name}_ghost`)).filter((t) => t.state === 'Rejected').length).toBeGreaterThanOrEqual(2), 30_000, 200);
    await stack.scale('ghost', 0);
    await eventually(async () => expect((await stack.running()).sort()).toEqual(['ceo', 'gateway', 'remote']), 30_000, 200);
    await eventually(async () => expect((await cli.tasks(`${stack.name}_ghost`)).every((t) => t.desired === 'Shutdown')).toBe(true), 30_000, 200);
  });
  afterAll(() => stack?.remove());

  it('lists the same agents, and the same tasks with their states, errors and nodes, as docker service ls, stack ps and service ps', async () => {
    const { api, cli } = both();
    expect(await api.agents()).toEqual(await cli.agents());
    expect(await api.agents()).toEqual(['ceo', 'gateway', 'ghost', 'huge', 'idle', 'remote']);
    const tasks = await api.stackTasks();
    expect(tasks).toEqual(await cli.stackTasks());
    expect(tasks.find((t) => t.agent === 'remote')).toMatchObject({ node: WORKER_NODE, state: 'Running', desired: 'Running', error: '' });
    expect(tasks.find((t) => t.agent === 'huge')).toMatchObject({ node: undefined, state: 'Pending', error: expect.stringMatching(/^no suitable node \(insufficient resources on 2 nodes\)/) });
    expect(tasks.filter((t) => t.agent === 'ghost').map((t) => `${t.state} ${t.desired} ${t.error}`)).toContain('Rejected Shutdown No such image: openclaw-pool/absent:1');
    for (const agent of ['ceo', 'remote', 'idle', 'huge', 'ghost']) expect(await api.tasks(`${stack.name}_${agent}`)).toEqual(await cli.tasks(`${stack.name}_${agent}`));
  });

  it("says which agents have not converged as docker service ls does, with the engine's ServiceStatus and without it", async () => {
    const { cli } = both();
    const signal = new AbortController().signal;
    const expected = await cli.unconverged(signal);
    expect([...expected]).toEqual(['huge']);
    expect(await openStack('docker', stack.name, managerEngine()).unconverged(signal)).toEqual(expected);
    expect(await openStack('docker', stack.name, withoutServiceStatus(managerEngine())).unconverged(signal)).toEqual(expected);
  });

  it("reads the engine's part in the swarm: a manager here, a worker on the other node", async () => {
    const { api, cli } = both();
    expect(await api.swarmRole()).toEqual(await cli.swarmRole());
    expect(await api.swarmRole()).toEqual({ state: 'active', manager: true });
    expect(await openStack('docker', stack.name, workerEngine()).swarmRole()).toEqual({ state: 'active', manager: false });
  });

  it('follows the same service changes as docker events', async () => {
    const { api, cli } = both();
    const abort = new AbortController();
    const first = async (reads: typeof api) => {
      for await (const change of reads.serviceChanges(abort.signal)) if (change.service === `${stack.name}_idle`) return change;
      return undefined;
    };
    const seen = Promise.all([first(api), first(cli)]);
    // Both streams are up well within this: the CLI's child connects in a few tens of milliseconds.
    await new Promise((resolve) => setTimeout(resolve, 500));
    await stack.scale('idle', 1);
    const changes = await seen;
    abort.abort();
    expect(changes).toEqual([{ service: `${stack.name}_idle`, action: 'update' }, { service: `${stack.name}_idle`, action: 'update' }]);
    await stack.scale('idle', 0);
  });

  it('lists the stack in milliseconds, where the CLI spawns a docker process each time', async () => {
    const { api, cli } = both();
    const timed = async (reads: typeof api) => {
      const samples: number[] = [];
      for (let i = 0; i < 10; i++) {
        const started = performance.now();
        await reads.stackTasks();
        samples.push(performance.now() - started);
      }
      return median(samples);
    };
    const [viaApi, viaCli] = [await timed(api), await timed(cli)];
    console.log(`swarm listing (${(await api.stackTasks()).length} tasks), median of 10: Engine API ${viaApi.toFixed(1)} ms, docker stack ps ${viaCli.toFixed(1)} ms`);
    expect(viaApi).toBeLessThan(viaCli);
  });
});

/** The command lines of the process's children, from /proc. */
async function childCommands(pid: number): Promise<string[]> {
  const threads = await readdir(`/proc/${pid}/task`);
  const children = (await Promise.all(threads.map((t) => readFile(`/proc/${pid}/task/${t}/children`, 'utf8').catch(() => '')))).join(' ').split(/\s+/).filter(Boolean);
  return Promise.all(children.map(async (child) => (await readFile(`/proc/${child}/cmdline`, 'utf8').catch(() => '')).split('\0').filter(Boolean).join(' ')));
}

describe.skipIf(!swarm)('the swarm daemon, idle, on a real two-node swarm', () => {
  let stack: SwarmStack;
  beforeAll(async () => {
    stack = await createSwarmStack({ ceo: swarmAgentService(), gateway: swarmAgentService({ replicas: 1 }) });
  });
  afterAll(() => stack?.remove());
  const scratchDir = useTempDir();

  const daemonOn = async (scratch: string, env: Record<string, string> = {}) => {
    const daemon = spawnDaemon(stack.dir, {
      POOL_ENV: '/dev/null',
      POOL_DRIVER: 'swarm',
      SWARM_STACK: stack.name,
      INFRA_SERVICES: 'gateway',
      // A reconcile every second: reads that spawned a process would show up below.
      SYNC_INTERVAL: '1',
      POOL_DIR: join(scratch, 'pool'),
      POOL_SOCKET: join(scratch, 's.sock'),
      POOL_PORT: '0',
      POOL_BIND: '127.0.0.1',
      ...env,
    });
    await daemon.ready();
    return daemon;
  };

  it('reads the swarm through the Engine API with no child at all: no docker events, no docker per reconcile', async () => {
    const daemon = await daemonOn(await scratchDir());
    try {
      expect(daemon.output()).not.toMatch(/docker reads go through/);
      const seen = new Set<string>();
      for (let i = 0; i < 15; i++) {
        for (const command of await childCommands(daemon.child.pid!)) seen.add(command);
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      expect([...seen]).toEqual([]);
    } finally {
      await daemon.kill();
    }
  });

  it('reads through the CLI when DOCKER_BIN is named, says so at start-up, and keeps its docker events child', async () => {
    const { stdout: docker } = await execa('sh', ['-c', 'command -v docker']);
    const daemon = await daemonOn(await scratchDir(), { DOCKER_BIN: docker.trim() });
    try {
      expect(daemon.output()).toContain(`docker reads go through DOCKER_BIN ${docker.trim()}, not the Engine API`);
      await eventually(async () => expect(await childCommands(daemon.child.pid!)).toContainEqual(expect.stringMatching(/ events --filter type=service /)));
    } finally {
      await daemon.kill();
    }
  });
});

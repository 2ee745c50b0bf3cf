import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterEach, describe, expect, it } from 'vitest';
import type { StatusReply } from '../../src/contract/index.js';
import { poolctl } from '../support/cli.js';
import { eventually } from '../support/daemon.js';
import { TEST_IMAGE } from '../support/docker.js';
import { spawnDaemon } from '../support/spawn-daemon.js';
import {
  MANAGER_ADDR,
  MANAGER_NODE,
  type SwarmTestDaemon,
  type SwarmTestDaemonOptions,
  WORKER_HOST,
  WORKER_NODE,
  requireSwarm,
  startSwarmTestDaemon,
  swarmAgentService,
} from '../support/swarm.js';

const swarm = await requireSwarm();

const SHIMS = new URL('../../shims', import.meta.url).pathname;
const INFRA = ['gateway'];
const AGENTS = ['ceo', 'cto', 'cfo', 'qa', 'designer'];
const onNode = (hostname: string) => swarmAgentService({ placement: { constraints: [`node.hostname == ${hostname}`] } });

describe.skipIf(!swarm)('the pool on a real two-node swarm (POOL_DRIVER=swarm)', () => {
  let pool: SwarmTestDaemon | undefined;
  const start = async (options: SwarmTestDaemonOptions = {}) => (pool = await startSwarmTestDaemon({ agents: AGENTS, infra: INFRA, ...options }));
  afterEach(async () => {
    await pool?.stop();
    pool = undefined;
  });
  const request = (p: SwarmTestDaemon, agent: string, requested_by?: string) => p.http('POST', '/request', { agent, ...(requested_by && { requested_by }) });
  const status = async (p: SwarmTestDaemon) => (await p.http('GET', '/status')).body as StatusReply;
  const replicas = async (p: SwarmTestDaemon, agent: string) =>
    (await execa('docker', ['service', 'inspect', '--format', '{{.Spec.Mode.Replicated.Replicas}}', `${p.stack.name}_${agent}`])).stdout.trim();

  it('starts an agent into a free slot: swarm runs its task, and status says on which node', async () => {
    const p = await start();
    expect((await request(p, 'cfo', 'ceo')).body).toEqual({ status: 'started', agent: 'cfo' });
    expect(await p.runningInDocker()).toEqual(['cfo']);
    await eventually(async () => {
      const [cfo] = (await status(p)).running;
      expect(cfo).toMatchObject({ id: 'cfo', requested_by: 'ceo', state: 'running' });
      expect([MANAGER_NODE, WORKER_NODE]).toContain(cfo?.node);
    });
    expect((await request(p, 'cfo')).body).toEqual({ status: 'already_running', agent: 'cfo' });
    expect(await replicas(p, 'cfo')).toBe('1');
  });

  it('evicts the least recently active agent when the pool is full, and never touches infrastructure', async () => {
    const p = await start({ env: { MAX_AGENTS: '2' } });
    for (const agent of ['ceo', 'cto']) {
      await request(p, agent);
      p.advance(100);
    }
    await p.http('POST', '/heartbeat', { agent: 'ceo' });
    p.advance(61);
    expect((await request(p, 'qa', 'ceo')).body).toEqual({ status: 'started', agent: 'qa', evicted: 'cto' });
    expect(await p.runningInDocker()).toEqual(['ceo', 'qa']);
    expect(await replicas(p, 'cto')).toBe('0');
    expect(await replicas(p, 'gateway')).toBe('1');
    expect(await p.stack.running()).toContain('gateway');
    expect((await request(p, 'gateway')).body).toEqual({ status: 'forbidden', agent: 'gateway', error: 'infrastructure service' });
    const events = (await readFile(join(p.poolDir, 'events.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    expect(events.find((e) => e.type === 'evicted')).toMatchObject({ agent: 'cto', for: 'qa', by: 'ceo' });
  });

  it('answers pool_full when every agent is inside the grace period, and swarm runs nothing more', async () => {
    const p = await start({ env: { MAX_AGENTS: '2' } });
    for (const agent of ['ceo', 'cto']) await request(p, agent);
    // Well inside the 60 s grace period, whatever real time the starts took.
    p.advance(30);
    expect((await request(p, 'qa')).body).toEqual({ status: 'pool_full', error: 'all agents recently active, try again later' });
    expect(await p.runningInDocker()).toEqual(['ceo', 'cto']);
    expect(await replicas(p, 'qa')).toBe('0');
  });

  it('releases an agent: its service goes back to 0, its task is gone and its slot is free', async () => {
    const p = await start();
    await request(p, 'cfo');
    expect((await p.http('POST', '/release', { agent: 'cfo' })).body).toEqual({ status: 'stopped', agent: 'cfo' });
    expect(await replicas(p, 'cfo')).toBe('0');
    expect((await p.stack.liveTasks()).map((t) => t.agent)).toEqual(['gateway']);
    expect((await p.http('POST', '/release', { agent: 'cfo' })).body).toEqual({ status: 'not_running', agent: 'cfo' });
    expect((await status(p)).slots_free).toBe(3);
  });

  it('follows a docker service scale behind its back: drops the agent scaled down, adopts the one scaled up', async () => {
    // No periodic sync: swarm's service events alone must bring the daemon in line.
    const p = await start({ env: { SYNC_INTERVAL: '3600' } });
    await request(p, 'cfo');
    await p.stack.scale('cfo', 0);
    await p.stack.scale('designer', 1);
    await eventually(async () => expect((await p.http('GET', '/available')).body).toEqual({ agents: ['designer'] }), 20_000);
    const [designer] = (await status(p)).running;
    expect(designer).toMatchObject({ id: 'designer', requested_by: 'adopted', state: 'running' });
    expect([MANAGER_NODE, WORKER_NODE]).toContain(designer?.node);
    expect(p.logs.some((l) => /^lost cfo/.test(l))).toBe(true);
    expect(p.logs.some((l) => /^adopted designer/.test(l))).toBe(true);
  });

  it('shows the node of each agent in status: on the bridge, on the socket and in poolctl', async () => {
    const p = await start({ services: { remote: onNode(WORKER_NODE), local: onNode(MANAGER_NODE) } });
    await p.client.request('remote', { requestedBy: 'ceo' });
    await request(p, 'local');
    const nodes = (s: StatusReply) => Object.fromEntries(s.running.map((a) => [a.id, a.node]));
    const where = { remote: WORKER_NODE, local: MANAGER_NODE };
    await eventually(async () => expect(nodes(await status(p))).toEqual(where));
    expect(nodes(await p.client.status())).toEqual(where);
    expect((await p.stack.liveTasks()).find((t) => t.agent === 'remote')?.node).toBe(WORKER_NODE);
    const run = await poolctl(['status', '--socket', p.socketPath]);
    expect(run.code).toBe(0);
    const lines = run.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^AGENT\s+STATE\s+NODE\s+STARTED\s+LAST ACTIVE\s+REQUESTED BY\s+EVICTABLE$/);
    expect(lines.slice(1, 3).sort()).toEqual([
      expect.stringMatching(new RegExp(`^local\\s+running\\s+${MANAGER_NODE}\\s+.+\\s+api\\s+no \\(grace\\b.*\\)$`)),
      expect.stringMatching(new RegExp(`^remote\\s+running\\s+${WORKER_NODE}\\s+.+\\s+ceo\\s+no \\(grace\\b.*\\)$`)),
    ]);
  });

  it("lets an agent on the worker node request a peer through the bridge at the manager's address", async () => {
    const p = await start({ env: { POOL_BIND: `127.0.0.1,${MANAGER_ADDR}`, POOL_TOKEN: 'swarm-secret' } });
    const port = new URL(p.url).port;
    const caller = `${p.stack.name}-caller`;
    // The in-container shim as it ships, in a task on the worker: the README's set-up for agents on other nodes.
    await execa('docker', [
      'service', 'create', '--detach', '--no-resolve-image', '--name', caller,
      '--constraint', `node.hostname == ${WORKER_NODE}`, '--network', 'host', '--restart-condition', 'none',
      '--mount', `type=bind,source=${SHIMS},target=/shims,readonly`,
      '--env', `POOL_HOST=${MANAGER_ADDR}`, '--env', `POOL_PORT=${port}`, '--env', 'POOL_TOKEN=swarm-secret', '--env', 'AGENT_ID=ceo',
      TEST_IMAGE, 'sh', '/shims/request-agent', 'cfo',
    ]);
    try {
      await eventually(async () => expect((await status(p)).running).toMatchObject([{ id: 'cfo', requested_by: 'ceo', state: 'running' }]), 30_000);
      const tasks = await execa('docker', ['service', 'ps', '--format', '{{.Node}} {{.CurrentState}}', caller]);
      expect(tasks.stdout).toMatch(new RegExp(`^${WORKER_NODE} `));
    } finally {
      await execa('docker', ['service', 'rm', caller]);
    }
  });

  it('answers started for a service with a healthcheck only once it is healthy', async () => {
    const healthchecked = {
      ...onNode(MANAGER_NODE),
      // Healthy once /tmp/ready exists, a few checks after the start.
      command: ['sh', '-c', "trap 'exit 0' TERM; sleep 3; touch /tmp/ready; while :; do sleep 0.2; done"],
      healthcheck: { test: ['CMD', 'test', '-f', '/tmp/ready'], interval: '1s', timeout: '1s', retries: 30 },
    };
    const p = await start({ services: { slow: healthchecked } });
    expect((await request(p, 'slow')).body).toEqual({ status: 'started', agent: 'slow' });
    const { stdout: id } = await execa('docker', ['ps', '-q', '--filter', `label=com.docker.swarm.service.name=${p.stack.name}_slow`]);
    const { stdout: health } = await execa('docker', ['inspect', '--format', '{{.State.Health.Status}}', id.trim()]);
    expect(health).toBe('healthy');
  });

  it("reports a task that no node has room for with the scheduler's reason, and frees its slot", async () => {
    const p = await start({ env: { MAX_AGENTS: '1' }, services: { huge: swarmAgentService({ resources: { reservations: { memory: '4096G' } } }) } });
    const reply = await request(p, 'huge');
    expect(reply.body).toEqual({
      status: 'error',
      agent: 'huge',
      error: `${p.stack.name}_huge: task cannot be placed: no suitable node (insufficient resources on 2 nodes)`,
    });
    expect((await status(p)).slots_free).toBe(1);
    expect(await replicas(p, 'huge')).toBe('0');
    const events = (await readFile(join(p.poolDir, 'events.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    expect(events.find((e) => e.type === 'failed')).toMatchObject({ agent: 'huge', reason: expect.stringContaining('insufficient resources') });
    expect((await request(p, 'ceo')).body).toEqual({ status: 'started', agent: 'ceo' });
  });

  it('refuses to start on an engine that is not a swarm manager, with a clear message and exit 1', async () => {
    const scratch = await mkdtemp(join(tmpdir(), 'pool-'));
    try {
      const shim = join(scratch, 'docker-on-worker');
      await writeFile(shim, `#!/bin/sh\nexec docker -H ${WORKER_HOST} "$@"\n`);
      await chmod(shim, 0o755);
      const daemon = spawnDaemon(scratch, {
        POOL_DRIVER: 'swarm',
        SWARM_STACK: 'openclaw',
        DOCKER_BIN: shim,
        POOL_DIR: join(scratch, 'pool'),
        POOL_SOCKET: join(scratch, 's.sock'),
        POOL_PORT: '0',
        POOL_BIND: '127.0.0.1',
      });
      const code = await daemon.exited;
      expect(code).toBe(1);
      expect(daemon.output()).toMatch(
        /cannot start: cannot read the swarm stack openclaw: POOL_DRIVER=swarm needs a swarm manager: this Docker engine is a swarm worker, not a manager/,
      );
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  });
});

import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DriverError } from '../../src/contract/errors.js';
import { createSwarmDriver } from '../../src/drivers/swarm.js';
import { eventually } from '../support/daemon.js';
import { TEST_IMAGE } from '../support/docker.js';
import { managerEngine, workerEngine } from './engines.js';
import { MANAGER_NODE, type SwarmStack, WORKER_HOST, WORKER_NODE, createSwarmStack, requireSwarm, swarmAgentService } from '../support/swarm.js';

const swarm = await requireSwarm();

/** A DOCKER_BIN that records each invocation, then runs the real docker with `prefix` arguments first. */
async function dockerShim(dir: string, prefix = ''): Promise<{ bin: string; calls: () => Promise<string[]> }> {
  const log = join(dir, 'calls.log');
  const bin = join(dir, 'docker-shim');
  await writeFile(bin, `#!/bin/sh\necho "$*" >> ${log}\nexec docker ${prefix} "$@"\n`);
  await chmod(bin, 0o755);
  await writeFile(log, '');
  return { bin, calls: async () => (await readFile(log, 'utf8')).split('\n').filter(Boolean) };
}

/** The two ways the driver reads the swarm; its writes (docker service scale) go through the CLI on both. */
const READS = [
  { via: 'the docker CLI', api: false },
  { via: 'the Engine API', api: true },
];

const replicas = async (service: string) => (await execa('docker', ['service', 'inspect', '--format', '{{.Spec.Mode.Replicated.Replicas}}', service])).stdout.trim();

describe.skipIf(!swarm).each(READS)('the swarm driver on a real two-node swarm, reading through $via', (reads) => {
  let stack: SwarmStack;
  let scratch: string;
  beforeAll(async () => {
    stack = await createSwarmStack({
      ceo: swarmAgentService(),
      cto: swarmAgentService(),
      remote: swarmAgentService({ placement: { constraints: [`node.hostname == ${WORKER_NODE}`] } }),
      huge: swarmAgentService({ resources: { reservations: { memory: '4096G' } } }),
      ghost: { ...swarmAgentService(), image: 'openclaw-pool/absent:1' },
      gateway: swarmAgentService({ replicas: 1 }),
    });
    scratch = await mkdtemp(join(tmpdir(), 'pool-swarm-'));
  });
  afterAll(async () => {
    await stack?.remove();
    await rm(scratch, { recursive: true, force: true });
  });
  const driverFor = (dockerBin = 'docker', stackName = stack.name, engine = reads.api ? managerEngine() : undefined) =>
    createSwarmDriver({ dockerBin, stack: stackName, ...(engine !== undefined && { engine }) });

  it("reads the stack's services by its namespace label, and not a service that only shares the name prefix", async () => {
    await execa('docker', ['service', 'create', '--detach', '--no-resolve-image', '--replicas', '0', '--name', `${stack.name}_rogue`, TEST_IMAGE]);
    try {
      const info = await driverFor().init();
      expect(info).toEqual({ name: stack.name, services: ['ceo', 'cto', 'gateway', 'ghost', 'huge', 'remote'], networks: [] });
    } finally {
      await execa('docker', ['service', 'rm', `${stack.name}_rogue`]);
    }
  });

  it('starts an agent by scaling its service to 1, lists it with its node, and stops it by scaling to 0', async () => {
    const driver = driverFor();
    await driver.start('ceo');
    expect(await replicas(`${stack.name}_ceo`)).toBe('1');
    const listed = (await driver.list()).filter((o) => o.running);
    expect(listed.map((o) => o.agent).sort()).toEqual(['ceo', 'gateway']);
    expect([MANAGER_NODE, WORKER_NODE]).toContain(listed.find((o) => o.agent === 'ceo')?.node);
    await driver.start('ceo');
    expect((await stack.liveTasks()).filter((t) => t.agent === 'ceo')).toHaveLength(1);
    await driver.stop('ceo', 3000);
    expect(await replicas(`${stack.name}_ceo`)).toBe('0');
    expect((await stack.liveTasks()).map((t) => t.agent)).toEqual(['gateway']);
    await driver.stop('ceo', 3000);
  });

  it('runs a task wherever the scheduler places it: here on the worker node, and lists it there', async () => {
    const driver = driverFor();
    await driver.start('remote');
    expect((await driver.list()).find((o) => o.agent === 'remote' && o.running)?.node).toBe(WORKER_NODE);
    expect((await stack.liveTasks()).find((t) => t.agent === 'remote')).toMatchObject({ node: WORKER_NODE, state: 'Running' });
    await driver.stop('remote', 3000);
  });

  it(`lists the whole stack in ${reads.api ? 'API calls, with no docker process' : 'one docker call'}, however many agents run`, async () => {
    const shim = await dockerShim(await mkdtemp(join(scratch, 'list-')));
    const driver = driverFor(shim.bin);
    await Promise.all(['ceo', 'cto'].map((a) => driver.start(a)));
    const before = (await shim.calls()).length;
    expect((await driver.list()).filter((o) => o.running).map((o) => o.agent).sort()).toEqual(['ceo', 'cto', 'gateway']);
    expect((await shim.calls()).slice(before)).toEqual(reads.api ? [] : [expect.stringMatching(/^stack ps /)]);
    await Promise.all(['ceo', 'cto'].map((a) => driver.stop(a, 3000)));
  });

  it("fails a start that no node has room for with the scheduler's reason, and scales the service back to 0", async () => {
    const error = (await driverFor().start('huge').catch((e: unknown) => e)) as DriverError;
    expect(error).toBeInstanceOf(DriverError);
    expect(error.message).toMatch(new RegExp(`^${stack.name}_huge: task cannot be placed: no suitable node \\(insufficient resources on 2 nodes\\)`));
    expect(error.stderr).toMatch(/insufficient resources/);
    expect(error.argv).toEqual(['docker', 'service', 'scale', '--detach', `${stack.name}_huge=1`]);
    expect(await replicas(`${stack.name}_huge`)).toBe('0');
    expect((await stack.liveTasks()).filter((t) => t.agent === 'huge')).toEqual([]);
  });

  it("fails a start whose task a node rejects with the node's error, and scales the service back to 0", async () => {
    const driver = driverFor();
    for (let attempt = 0; attempt < 2; attempt++) {
      // The second attempt has the first one's failed tasks in the service's history: only its own count.
      const error = (await driver.start('ghost').catch((e: unknown) => e)) as DriverError;
      expect(error).toBeInstanceOf(DriverError);
      expect(error.message).toMatch(/_ghost: task rejected on \S+: No such image: openclaw-pool\/absent:1/);
      expect(await replicas(`${stack.name}_ghost`)).toBe('0');
    }
    expect((await stack.liveTasks()).filter((t) => t.agent === 'ghost')).toEqual([]);
  });

  it('refuses an engine that is a swarm worker, saying to run on a manager', async () => {
    const shim = await dockerShim(await mkdtemp(join(scratch, 'worker-')), `-H ${WORKER_HOST}`);
    const error = (await driverFor(shim.bin, stack.name, reads.api ? workerEngine() : undefined).init().catch((e: unknown) => e)) as Error;
    expect(error).toBeInstanceOf(DriverError);
    expect(error.message).toMatch(/^POOL_DRIVER=swarm needs a swarm manager: this Docker engine is a swarm worker, not a manager \(run openclaw-pool on a manager node/);
  });

  it('refuses a stack that has no services, saying how to deploy it', async () => {
    await expect(driverFor('docker', 'pstnosuchstack').init()).rejects.toThrow(
      'stack pstnosuchstack has no services; deploy it first (docker stack deploy -c compose.yaml pstnosuchstack)',
    );
  });

  it('follows service changes of the stack, and says when a change has converged on its node', async () => {
    const abort = new AbortController();
    const seen: { agent: string; action: string }[] = [];
    const following = (async () => {
      for await (const event of driverFor().events(abort.signal)) {
        seen.push(event);
        if (event.agent === 'cto' && event.action === 'converged') abort.abort();
      }
    })();
    await new Promise((resolve) => setTimeout(resolve, 300));
    await stack.scale('cto', 1);
    await following;
    expect(seen).toEqual([{ agent: 'cto', action: 'update' }, { agent: 'cto', action: 'converged' }]);
    // Converged means its task runs: what the reconcile that follows will see.
    expect(await stack.running()).toContain('cto');
    await stack.scale('cto', 0);
    await eventually(async () => expect((await stack.liveTasks()).map((t) => t.agent)).toEqual(['gateway']), 20_000);
  });

  it('ends its events at once when stopped while a change is still converging', async () => {
    const abort = new AbortController();
    let abortedAt = 0;
    const following = (async () => {
      for await (const event of driverFor().events(abort.signal)) {
        if (event.agent !== 'huge') continue;
        abortedAt = performance.now();
        abort.abort();
      }
    })();
    await new Promise((resolve) => setTimeout(resolve, 300));
    // No node has room for it: its replicas never converge, so the stream is still polling them.
    await stack.scale('huge', 1);
    await following;
    expect(performance.now() - abortedAt).toBeLessThan(1000);
    await stack.scale('huge', 0);
    await eventually(async () => expect((await stack.liveTasks()).map((t) => t.agent)).toEqual(['gateway']), 20_000);
  });
});

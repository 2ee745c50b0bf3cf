import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DriverError } from '../../src/contract/errors.js';
import { createComposeDriver } from '../../src/drivers/compose.js';
import { createEngineApi } from '../../src/drivers/engine-api.js';
import { execa } from 'execa';
import { type ComposeProject, TEST_IMAGE, agentService, createComposeProject, requireDocker } from '../support/docker.js';

const docker = await requireDocker();

/**
 * A DOCKER_BIN that records each invocation and then runs the real docker, optionally failing or
 * hanging on chosen subcommands: real Docker underneath, with the faults a test needs on top.
 */
async function dockerShim(dir: string, behaviour = ''): Promise<{ bin: string; calls: () => Promise<string[]> }> {
  const log = join(dir, 'calls.log');
  const bin = join(dir, 'docker-shim');
  await writeFile(bin, `#!/bin/sh\necho "$*" >> ${log}\n${behaviour}\nexec docker "$@"\n`);
  await chmod(bin, 0o755);
  await writeFile(log, '');
  return { bin, calls: async () => (await readFile(log, 'utf8')).split('\n').filter(Boolean) };
}

/** What `extra_hosts: x:host-gateway` puts in a container's /etc/hosts on this engine: the ground truth. */
async function resolveHostGateway(project: ComposeProject): Promise<string> {
  const { stdout } = await execa('docker', ['run', '--rm', '--network', 'none', '--add-host', 'probe:host-gateway', '--label', `com.docker.compose.project=${project.name}-probe`, TEST_IMAGE, 'sh', '-c', 'grep probe /etc/hosts']);
  return stdout.trim().split(/\s+/)[0]!;
}

describe.skipIf(!docker)('the compose driver against real dockerd', () => {
  let project: ComposeProject;
  let scratch: string;
  const agents = ['ceo', 'cto', 'cfo', 'qa'];
  beforeAll(async () => {
    project = await createComposeProject({
      ...Object.fromEntries(agents.map((a) => [a, agentService()])),
      stubborn: agentService({ command: ['sh', '-c', "trap '' TERM; while :; do sleep 0.2; done"] }),
      bridged: { ...agentService(), network_mode: undefined },
      ghost: agentService({ image: 'openclaw-pool/absent:1' }),
      unready: agentService({ healthcheck: { test: ['CMD-SHELL', 'echo not yet; exit 1'], interval: '500ms', retries: 1000 } }),
      // OpenClaw's shape: agents behind profiles, depending on infrastructure behind another one.
      designer: agentService({ profiles: ['series-a'], depends_on: ['ollama'] }),
      ollama: { ...agentService({ profiles: ['gpu'] }), network_mode: undefined, networks: ['models'] },
    }, { networks: { models: {} } });
    // Compose reads COMPOSE_PROFILES from the project's .env: neither profile above is in it.
    await writeFile(join(project.dir, '.env'), 'COMPOSE_PROFILES=seed\n');
    scratch = await mkdtemp(join(tmpdir(), 'pool-shim-'));
  });
  afterAll(async () => {
    await project?.remove();
    await rm(scratch, { recursive: true, force: true });
  });
  /** Reads go through the Engine API, as the daemon's do, except through a shim, whose calls are the point. */
  const engine = createEngineApi({ kind: 'unix', socketPath: '/var/run/docker.sock', host: 'unix:///var/run/docker.sock' });
  const driverFor = (dockerBin = 'docker', commandTimeoutMs?: number) =>
    createComposeDriver({ dockerBin, composeDir: project.dir, project: undefined, infraServices: ['ollama'], ...(commandTimeoutMs && { commandTimeoutMs }), ...(dockerBin === 'docker' && { engine }) });

  it('reads the project name, its services and the networks they use from the compose file', async () => {
    const info = await driverFor().init();
    expect(info.name).toBe(project.name);
    expect(info.services.sort()).toEqual(['bridged', 'ceo', 'cfo', 'cto', 'designer', 'ghost', 'ollama', 'qa', 'stubborn', 'unready']);
    // `models` is used by infrastructure only: agents never call from it.
    expect(info.networks).toEqual([`${project.name}_default`]);
  });

  it('starts an agent behind an inactive profile alone, without the infrastructure it depends on', async () => {
    const driver = driverFor();
    await driver.init();
    await driver.start('designer');
    expect(await project.containers()).toEqual([{ service: 'designer', state: 'running' }]);
    await driver.stop('designer', 2000);
    expect((await driver.list()).find((o) => o.agent === 'designer')?.running).toBe(false);
    await project.compose('rm', '--force', 'designer');
  });

  it('starts one service, lists it by its compose label, and stops it', async () => {
    const driver = driverFor();
    await driver.init();
    const before = Date.now();
    await driver.start('cto');
    const listed = await driver.list();
    // On the host's network: no address of its own (a caller from it is the host's loopback).
    expect(listed).toEqual([{ agent: 'cto', running: true, startedAt: expect.any(Number), container: expect.stringMatching(/^[0-9a-f]{64}$/), addresses: [] }]);
    expect(listed[0]!.startedAt).toBeGreaterThan(before - 5000);
    await driver.start('cto');
    expect((await project.containers()).filter((c) => c.service === 'cto')).toHaveLength(1);
    await driver.stop('cto', 3000);
    expect(await project.containers()).toEqual([{ service: 'cto', state: 'exited' }]);
    await driver.stop('cto', 3000);
  });

  it('lists the whole project in one docker call, however many agents run', async () => {
    const shim = await dockerShim(await mkdtemp(join(scratch, 'list-')));
    const driver = driverFor(shim.bin);
    await driver.init();
    await Promise.all(agents.map((a) => driver.start(a)));
    const before = (await shim.calls()).length;
    const listed = await driver.list();
    expect(listed.filter((o) => o.running).map((o) => o.agent).sort()).toEqual(['ceo', 'cfo', 'cto', 'qa']);
    expect((await shim.calls()).slice(before)).toEqual([expect.stringMatching(/^ps --all/)]);
    await Promise.all(agents.map((a) => driver.stop(a, 3000)));
  });

  it('measures the memory of each running service of a listing with one docker stats through the CLI and no listing of its own, and nothing when none runs', async () => {
    const shim = await dockerShim(await mkdtemp(join(scratch, 'usage-')));
    const driver = driverFor(shim.bin);
    await driver.init();
    expect(await driver.usage(await driver.list())).toEqual(new Map());
    await Promise.all(['ceo', 'cfo'].map((a) => driver.start(a)));
    const listed = await driver.list();
    const before = (await shim.calls()).length;
    const usage = await driver.usage(listed);
    expect((await shim.calls()).slice(before)).toEqual([expect.stringMatching(/^stats --no-stream/)]);
    expect([...usage.keys()].sort()).toEqual(['ceo', 'cfo']);
    for (const { memoryBytes } of usage.values()) expect(memoryBytes).toBeGreaterThan(0);
    await Promise.all(['ceo', 'cfo'].map((a) => driver.stop(a, 3000)));
  });

  it('kills an agent that ignores SIGTERM once the stop timeout passes', async () => {
    const driver = driverFor();
    await driver.init();
    await driver.start('stubborn');
    const started = Date.now();
    await driver.stop('stubborn', 1000);
    expect(Date.now() - started).toBeLessThan(8000);
    expect((await driver.list()).find((o) => o.agent === 'stubborn')?.running).toBe(false);
  });

  it('falls back to kill when the stop command fails, and resolves once Docker says it is down', async () => {
    const shim = await dockerShim(await mkdtemp(join(scratch, 'stopfail-')), `case "$*" in *" stop "*) echo "simulated stop failure" >&2; exit 1;; esac`);
    const driver = driverFor(shim.bin);
    await driver.init();
    await driver.start('qa');
    await driver.stop('qa', 2000);
    expect((await shim.calls()).some((c) => / kill -- qa$/.test(c))).toBe(true);
    expect((await driver.list()).find((o) => o.agent === 'qa')?.running).toBe(false);
  });

  it('throws a DriverError with argv, exit code and what Docker said when a start fails', async () => {
    const driver = driverFor();
    await driver.init();
    const error = (await driver.start('ghost').catch((e: unknown) => e)) as DriverError;
    expect(error).toBeInstanceOf(DriverError);
    expect(error.message).toMatch(/no such image: openclaw-pool\/absent:1/i);
    expect(error.exitCode).toBe(1);
    expect(error.argv).toEqual(['docker', 'compose', '--project-directory', project.dir, '--profile', '*', '-p', project.name, 'up', '--detach', '--no-deps', '--', 'ghost']);
    expect(error.stderr).toMatch(/absent/);
  });

  it('does not take compose up --wait at its word: an unhealthy start is stopped when the wait ends, even if compose returned at once', async () => {
    // As compose does when it inspects a container before dockerd has set its health: no wait at all.
    const shim = await dockerShim(await mkdtemp(join(scratch, 'nowait-')), `for a do shift; if [ "$skip" = 1 ]; then skip=0; continue; fi; case "$a" in --wait) ;; --wait-timeout) skip=1 ;; *) set -- "$@" "$a" ;; esac; done`);
    const driver = createComposeDriver({ dockerBin: shim.bin, composeDir: project.dir, project: undefined, readyTimeoutMs: 1500, stopTimeoutMs: 1000 });
    await driver.init();
    await expect(driver.start('unready')).rejects.toThrow(/^unready did not become healthy within 2 s \(health: starting; last check said: not yet\); stopped it$/);
    expect((await shim.calls()).some((c) => / up --detach --no-deps --wait --wait-timeout 2 -- unready$/.test(c))).toBe(true);
    expect((await driver.list()).find((o) => o.agent === 'unready')?.running).toBe(false);
    await project.compose('rm', '--force', 'unready');
  });

  it('kills a compose command that hangs past its timeout, with its children, and says so', async () => {
    const shim = await dockerShim(await mkdtemp(join(scratch, 'hang-')), `case "$*" in *" up "*) sh -c 'sleep 30' & sleep 30;; esac`);
    const driver = driverFor(shim.bin, 500);
    await driver.init();
    const started = Date.now();
    await expect(driver.start('cfo')).rejects.toThrow(/timed out after 0.5 s/);
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it('names a missing docker binary', async () => {
    await expect(driverFor('/nonexistent/docker').init()).rejects.toThrow('/nonexistent/docker not found');
  });

  it('follows docker events for the project', async () => {
    const driver = driverFor();
    await driver.init();
    const abort = new AbortController();
    const seen: { agent: string; action: string }[] = [];
    const following = (async () => {
      for await (const event of driver.events(abort.signal)) {
        seen.push(event);
        if (event.agent === 'ceo' && event.action === 'start') abort.abort();
      }
    })();
    await new Promise((resolve) => setTimeout(resolve, 300));
    await driver.start('ceo');
    await following;
    expect(seen).toContainEqual({ agent: 'ceo', action: 'start' });
    await driver.stop('ceo', 2000);
  });

  it('finds no address to listen on beside loopback when every agent runs on the host network, asking Docker nothing', async () => {
    const shim = await dockerShim(await mkdtemp(join(scratch, 'hostonly-')));
    const hostOnly = await createComposeProject({ solo: agentService(), gateway: { ...agentService(), network_mode: undefined } });
    try {
      const driver = createComposeDriver({ dockerBin: shim.bin, composeDir: hostOnly.dir, project: undefined, infraServices: ['gateway'] });
      await driver.init();
      const before = (await shim.calls()).length;
      expect(await driver.bridgeAddresses()).toEqual([]);
      expect(await shim.calls()).toHaveLength(before);
    } finally {
      await hostOnly.remove();
    }
  });

  it("finds the agents' network gateway while the network exists, and the address host-gateway resolves to", async () => {
    const fresh = await createComposeProject({ solo: { ...agentService(), network_mode: undefined } });
    try {
      const driver = createComposeDriver({ dockerBin: 'docker', composeDir: fresh.dir, project: undefined, engine });
      await driver.init();
      const hostGateway = await resolveHostGateway(fresh);
      expect(await driver.bridgeAddresses()).toEqual([hostGateway]);
      await driver.start('solo');
      const { stdout } = await execa('docker', ['network', 'inspect', '--format', '{{range .IPAM.Config}}{{.Gateway}}{{end}}', `${fresh.name}_default`]);
      expect(await driver.bridgeAddresses()).toEqual([stdout.trim(), hostGateway]);
      await fresh.compose('down', '--timeout', '0');
      expect(await driver.bridgeAddresses()).toEqual([hostGateway]);
    } finally {
      await fresh.remove();
    }
  });
});

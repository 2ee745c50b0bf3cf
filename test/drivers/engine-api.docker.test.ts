import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DriverError } from '../../src/contract/errors.js';
import { createComposeCommands } from '../../src/drivers/compose-commands.js';
import { type ProjectContainer, apiReads, cliReads } from '../../src/drivers/compose-reads.js';
import { loadConfig } from '../../src/contract/config.js';
import { createComposeDriver } from '../../src/drivers/compose.js';
import { createEngineApi, negotiate, parseDockerHost, resolveEngineEndpoint } from '../../src/drivers/engine-api.js';
import { openDriver } from '../../src/drivers/index.js';
import { execa } from 'execa';
import { type ComposeProject, agentService, createComposeProject, requireDocker } from '../support/docker.js';

const docker = await requireDocker();

describe('DOCKER_HOST parsing', () => {
  it.each([
    { host: 'unix:///var/run/docker.sock', expected: { kind: 'unix', socketPath: '/var/run/docker.sock' } },
    { host: 'unix:///run/user/1000/docker.sock', expected: { kind: 'unix', socketPath: '/run/user/1000/docker.sock' } },
    { host: 'tcp://10.0.0.5:2375', expected: { kind: 'tcp', hostname: '10.0.0.5', port: 2375 } },
    { host: 'tcp://docker.internal', expected: { kind: 'tcp', hostname: 'docker.internal', port: 2375 } },
    { host: 'tcp://[::1]:2376', expected: { kind: 'tcp', hostname: '::1', port: 2376 } },
    { host: 'ssh://me@build-box', expected: { kind: 'cli' } },
  ])('reads $host', ({ host, expected }) => {
    expect(parseDockerHost(host)).toMatchObject({ ...expected, host });
  });

  it('refuses what is none of them', () => {
    expect(() => parseDockerHost('npipe:////./pipe/docker_engine')).toThrow(/expected unix/);
  });
});

describe('which engine the docker CLI would use', () => {
  let home: string;
  beforeAll(async () => {
    home = await mkdtemp(join(tmpdir(), 'pool-home-'));
    for (const [name, host] of [['remote', 'tcp://10.1.2.3:2375'], ['tunnel', 'ssh://me@far']] as const) {
      const dir = join(home, '.docker', 'contexts', 'meta', createHash('sha256').update(name).digest('hex'));
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, 'meta.json'), JSON.stringify({ Name: name, Endpoints: { docker: { Host: host, SkipTLSVerify: false } } }));
    }
  });
  afterAll(() => rm(home, { recursive: true, force: true }));
  const writeConfig = (config: object) => writeFile(join(home, '.docker', 'config.json'), JSON.stringify(config));

  it.each([
    { what: 'no config at all', config: undefined, env: {}, host: 'unix:///var/run/docker.sock', kind: 'unix' },
    { what: 'the default context', config: { currentContext: 'default' }, env: {}, host: 'unix:///var/run/docker.sock', kind: 'unix' },
    { what: 'the current context', config: { currentContext: 'remote' }, env: {}, host: 'tcp://10.1.2.3:2375', kind: 'tcp' },
    { what: 'DOCKER_CONTEXT over the current one', config: { currentContext: 'remote' }, env: { DOCKER_CONTEXT: 'tunnel' }, host: 'ssh://me@far', kind: 'cli' },
    { what: 'DOCKER_HOST over any context', config: { currentContext: 'remote' }, env: { DOCKER_HOST: 'unix:///tmp/d.sock', DOCKER_CONTEXT: 'tunnel' }, host: 'unix:///tmp/d.sock', kind: 'unix' },
    { what: 'a TLS tcp host, left to the CLI', config: undefined, env: { DOCKER_HOST: 'tcp://10.0.0.5:2376', DOCKER_TLS_VERIFY: '1' }, host: 'tcp://10.0.0.5:2376', kind: 'cli' },
  ])('$what', async ({ config, env, host, kind }) => {
    await rm(join(home, '.docker', 'config.json'), { force: true });
    if (config !== undefined) await writeConfig(config);
    expect(await resolveEngineEndpoint(env, home)).toMatchObject({ host, kind });
  });

  it('names a context whose metadata is missing', async () => {
    await writeConfig({ currentContext: 'gone' });
    await expect(resolveEngineEndpoint({}, home)).rejects.toThrow(/docker context gone: cannot read/);
  });
});

describe('API version negotiation', () => {
  it.each([
    { engine: '1.41', minimum: '1.12', expected: '1.41' },
    { engine: '1.47', minimum: '1.24', expected: '1.41' },
    { engine: '1.40', minimum: '1.12', expected: '1.40' },
    { engine: '1.52', minimum: '1.44', expected: '1.44' },
  ])('asks $expected of an engine speaking $engine (from $minimum)', ({ engine, minimum, expected }) => {
    expect(negotiate(engine, minimum)).toBe(expected);
  });
});

describe('an engine that does not answer', () => {
  it('gives a DriverError naming the call at once when nothing listens on the socket', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pool-'));
    const started = performance.now();
    const error = await createEngineApi({ kind: 'unix', socketPath: join(dir, 'none.sock'), host: `unix://${dir}/none.sock` }).get('/containers/json').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DriverError);
    expect((error as DriverError).message).toMatch(/^GET \/version: cannot connect to Docker at unix:\/\/.*none\.sock \(ENOENT\)/);
    expect(performance.now() - started).toBeLessThan(500);
    await rm(dir, { recursive: true, force: true });
  });

  it('times out on a socket that accepts and never answers', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pool-'));
    const hung = createServer(() => {}).listen(join(dir, 'hung.sock'));
    const api = createEngineApi({ kind: 'unix', socketPath: join(dir, 'hung.sock'), host: 'unix://hung' }, 300);
    const error = await api.get('/containers/json').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DriverError);
    expect((error as DriverError).message).toMatch(/did not answer within 0.3 s \(timed out/);
    // The probe beside a start has a deadline of its own.
    expect(await api.ping(200).catch((e: unknown) => (e as Error).message)).toMatch(/^GET \/_ping: .*did not answer within 0.2 s \(timed out/);
    hung.close();
    await rm(dir, { recursive: true, force: true });
  });
});

describe('a read its caller gives up on', () => {
  it('ends at once with the caller\'s reason, and closes its connection, not at the timeout', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pool-'));
    // Answers the version, then nothing: an engine that hangs after the negotiation.
    let open = 0;
    const engine = createHttpServer((req, res) => {
      if (req.url === '/version') res.end(JSON.stringify({ ApiVersion: '1.41', MinAPIVersion: '1.12' }));
    }).listen(join(dir, 'engine.sock'));
    engine.on('connection', (socket) => {
      open++;
      socket.on('close', () => open--);
    });
    const api = createEngineApi({ kind: 'unix', socketPath: join(dir, 'engine.sock'), host: 'unix://engine' }, 60_000);
    const gaveUp = new AbortController();
    const read = api.get('/containers/json', {}, gaveUp.signal).catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 200));
    expect(open).toBe(1);
    const abortedAt = performance.now();
    gaveUp.abort(new Error('the engine probe gave up'));
    expect(((await read) as Error).message).toBe('the engine probe gave up');
    expect(performance.now() - abortedAt).toBeLessThan(1000);
    await new Promise((r) => setTimeout(r, 100));
    expect(open).toBe(0);
    engine.close();
    await rm(dir, { recursive: true, force: true });
  });
});

describe.skipIf(!docker)('the Engine API against real dockerd', () => {
  const api = createEngineApi({ kind: 'unix', socketPath: '/var/run/docker.sock', host: 'unix:///var/run/docker.sock' });
  let project: ComposeProject;
  beforeAll(async () => {
    project = await createComposeProject({
      ceo: agentService(),
      cto: agentService(),
      cfo: agentService(),
      // On the project's bridge network, which has per-container traffic counters, and busy: it spins.
      busy: agentService({ network_mode: undefined, command: ['sh', '-c', 'while :; do :; done'] }),
    });
    await project.compose('up', '-d', 'ceo', 'cto', 'busy');
    await project.compose('stop', '-t', '0', 'cto');
  });
  afterAll(() => project?.remove());
  const commandsFor = () => {
    const commands = createComposeCommands({ dockerBin: 'docker', composeDir: project.dir, project: project.name });
    return { api: apiReads(api, commands), cli: cliReads(commands) };
  };

  it('negotiates the version this engine speaks, capped at the one the driver reads', async () => {
    const { stdout } = await execa('docker', ['version', '--format', '{{.Server.APIVersion}}']);
    expect(await api.apiVersion()).toBe(negotiate(stdout.trim(), '1.12'));
    await expect(api.ping(1000)).resolves.toBeUndefined();
  });

  it("lists the project's containers, by label, as docker ps sees them", async () => {
    const reads = commandsFor();
    const sorted = (list: { service: string }[]) => [...list].sort((a, b) => a.service.localeCompare(b.service));
    // The same containers; only the API's listing carries their addresses (identity by peer address).
    const withoutAddresses = (list: readonly ProjectContainer[]) => list.map(({ addresses: _, ...rest }) => rest);
    for (const all of [true, false]) expect(sorted(withoutAddresses(await reads.api.containers(all)))).toEqual(sorted(await reads.cli.containers(all)));
    for (const { id, service, addresses } of await reads.api.containers(false)) {
      const inspected = (await execa('docker', ['inspect', '--format', '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}', id])).stdout.split(' ').filter(Boolean);
      expect({ service, addresses }).toEqual({ service, addresses: inspected });
    }
    expect((await reads.api.containers(false)).find((c) => c.service === 'busy')?.addresses).toEqual([expect.stringMatching(/^\d+\.\d+\.\d+\.\d+$/)]);
    expect((await reads.api.containers(true)).map((c) => `${c.service} ${c.state}`).sort()).toEqual(['busy running', 'ceo running', 'cto exited']);
    const driver = createComposeDriver({ dockerBin: 'docker', composeDir: project.dir, project: undefined, engine: api });
    await driver.init();
    const cliDriver = createComposeDriver({ dockerBin: 'docker', composeDir: project.dir, project: undefined });
    await cliDriver.init();
    expect(sorted((await driver.list()).map(({ addresses: _, ...o }) => ({ ...o, service: o.agent })))).toEqual(sorted((await cliDriver.list()).map((o) => ({ ...o, service: o.agent }))));
  });

  it('reads the health and the networks as the CLI does', async () => {
    const reads = commandsFor();
    expect(await reads.api.health('ceo')).toEqual(await reads.cli.health('ceo'));
    expect(await reads.api.health('cfo')).toBeUndefined();
    const names = [`${project.name}_default`];
    const byName = (list: { name: string }[]) => [...list].sort((a, b) => a.name.localeCompare(b.name));
    expect(byName(await reads.api.networks(names))).toEqual(byName(await reads.cli.networks(names)));
  });

  it("reads each running container's memory as docker stats counts it, with its CPU time and, off the host's network, its traffic", async () => {
    const reads = commandsFor();
    const running = await reads.api.containers(false);
    const [api1, cli] = [await reads.api.usage(running), await reads.cli.usage(running)];
    expect([...api1.keys()].sort()).toEqual(['busy', 'ceo']);
    for (const [service, usage] of api1) {
      const shown = cli.get(service)?.memoryBytes ?? 0;
      // Two samples a moment apart, and docker stats rounds to 3 figures: close, not equal.
      expect(Math.abs(usage.memoryBytes - shown)).toBeLessThanOrEqual(Math.max(shown * 0.25, 256 * 1024));
      expect(usage.cpuNanos).toBeGreaterThan(0);
    }
    expect(api1.get('ceo')?.networkBytes).toBeUndefined();
    expect(api1.get('busy')?.networkBytes).toBeGreaterThanOrEqual(0);
    await new Promise((r) => setTimeout(r, 500));
    const api2 = await reads.api.usage(running);
    const cpuMs = (service: string) => ((api2.get(service)?.cpuNanos ?? 0) - (api1.get(service)?.cpuNanos ?? 0)) / 1e6;
    // The spinning one used a good part of a core in between (seconds, with docker stats' wait), the napping one a sliver of it.
    expect(cpuMs('busy')).toBeGreaterThan(100);
    expect(cpuMs('busy')).toBeGreaterThan(10 * cpuMs('ceo'));
  });
});

describe.skipIf(!docker)('the compose backend opened for the daemon', () => {
  let project: ComposeProject;
  beforeAll(async () => {
    project = await createComposeProject({ ceo: agentService() });
  });
  afterAll(() => project?.remove());
  const open = async (env: Record<string, string>) => {
    const saved = process.env.DOCKER_HOST;
    Object.assign(process.env, env);
    try {
      return await openDriver(loadConfig({ file: { COMPOSE_DIR: project.dir }, cwd: project.dir }));
    } finally {
      if (saved === undefined) delete process.env.DOCKER_HOST;
      else process.env.DOCKER_HOST = saved;
    }
  };

  it('reads through the Engine API and says nothing about it on the local engine', async () => {
    const opened = await open({});
    expect(opened.notice).toBeUndefined();
    expect(await opened.driver.list()).toEqual([]);
  });

  it('falls back to the docker CLI for an ssh:// engine, and says so', async () => {
    const opened = await open({ DOCKER_HOST: 'ssh://nobody@127.0.0.1:1' });
    expect(opened.notice).toMatch(/docker reads go through the docker CLI, not the Engine API: .*ssh/);
  });
});

import { access, chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createPoolClient } from '../../sdk/index.js';
import { type ComposeProject, agentService, createComposeProject, requireDocker } from '../support/docker.js';
import { eventually } from '../support/daemon.js';
import { http } from '../support/http.js';
import { type SpawnedDaemon, spawnDaemon } from '../support/spawn-daemon.js';

const docker = await requireDocker();

describe('the openclaw-pool process: configuration errors', () => {
  it('stops at start-up with a message naming the bad variable and value, exit code 78', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pool-'));
    try {
      await writeFile(join(dir, 'pool.env'), 'MAX_AGENTS=lots\nPOOL_PORT=19000\n');
      const d = spawnDaemon(dir);
      expect(await d.exited).toBe(78);
      expect(d.output()).toContain('MAX_AGENTS="lots": expected a whole number');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses a --config file that does not exist', async () => {
    const d = spawnDaemon(tmpdir(), {}, ['--config', '/nonexistent/pool.env']);
    expect(await d.exited).toBe(78);
    expect(d.output()).toContain('/nonexistent/pool.env: no such file (named by --config)');
  });

  it('names a COMPOSE_DIR that does not exist and exits 78, which systemd does not restart', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pool-'));
    try {
      await writeFile(join(dir, 'pool.env'), `COMPOSE_DIR=${dir}/gone\nPOOL_DIR=${dir}/pool\nPOOL_SOCKET=${dir}/s.sock\nPOOL_PORT=0\nPOOL_BIND=127.0.0.1\n`);
      const d = spawnDaemon(dir);
      expect(await d.exited).toBe(78);
      expect(d.output()).toContain(`COMPOSE_DIR ${dir}/gone: no such directory`);
      expect(d.output()).not.toContain('not found: is Docker installed');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('answers --help with usage and exit code 0, and an unknown flag with exit code 2', async () => {
    const help = spawnDaemon(tmpdir(), {}, ['--help']);
    expect(await help.exited).toBe(0);
    expect(help.output()).toContain('Usage: openclaw-pool [--config PATH]');
    const bad = spawnDaemon(tmpdir(), {}, ['--bogus']);
    expect(await bad.exited).toBe(2);
  });
});

describe.skipIf(!docker)('the openclaw-pool process on real Docker', () => {
  let project: ComposeProject;
  let dir: string;
  const running: SpawnedDaemon[] = [];
  beforeAll(async () => {
    project = await createComposeProject(Object.fromEntries(['ceo', 'cto', 'cfo', 'gateway'].map((n) => [n, agentService()])));
    return async () => project.remove();
  });
  afterEach(async () => {
    for (const d of running.splice(0)) await d.kill();
    await project.compose('down', '-t', '0');
    await rm(dir, { recursive: true, force: true });
  });
  const start = async (envFile: string): Promise<SpawnedDaemon> => {
    const d = spawnDaemon(project.dir, {}, ['--config', envFile]);
    running.push(d);
    await d.ready(20_000);
    return d;
  };
  const writeEnv = async (extra = '') => {
    dir = await mkdtemp(join(tmpdir(), 'pool-'));
    const file = join(dir, 'pool.env');
    await writeFile(file, `COMPOSE_PROJECT=${project.name}\nPOOL_DIR=${dir}/pool\nPOOL_SOCKET=${dir}/s.sock\nPOOL_PORT=0\nPOOL_BIND=127.0.0.1\nINFRA_SERVICES=gateway\n${extra}`);
    return file;
  };

  it('exits 0 on SIGTERM, removes its socket and leaves the agents running', async () => {
    const env = await writeEnv('MAX_AGENTS=3\n');
    const d = await start(env);
    const client = createPoolClient({ socketPath: join(dir, 's.sock') });
    await client.request('ceo');
    client.close();
    d.child.kill('SIGTERM');
    expect(await d.exited).toBe(0);
    expect(d.output()).toContain('shutting down (SIGTERM); agents keep running');
    await expect(access(join(dir, 's.sock'))).rejects.toThrow();
    expect(await project.containers()).toEqual([{ service: 'ceo', state: 'running' }]);
  });

  it('warns of a misspelt variable, naming the one meant, and starts with the rest', async () => {
    const env = await writeEnv('MAX_AGNETS=1\n');
    const d = await start(env);
    expect(d.output()).toContain(`warning: ${env}: MAX_AGNETS is not an openclaw-pool variable; ignored (did you mean MAX_AGENTS?)`);
    expect(d.output()).toContain('ready: 3 slots');
  });

  it('tells systemd it is ready once it listens, with Docker down, and how full the pool is', async () => {
    const env = await writeEnv('MAX_AGENTS=2\nSYNC_INTERVAL=60\n');
    const bin = join(dir, 'bin');
    await mkdir(bin);
    await writeFile(join(bin, 'systemd-notify'), `#!/bin/sh\necho "$*" >> ${dir}/notified\n`);
    await chmod(join(bin, 'systemd-notify'), 0o755);
    const d = spawnDaemon(project.dir, { NOTIFY_SOCKET: '@test', PATH: `${bin}:${process.env.PATH}`, DOCKER_HOST: `unix://${dir}/no-docker.sock` }, ['--config', env]);
    running.push(d);
    await eventually(async () => expect(await readFile(join(dir, 'notified'), 'utf8')).toContain('READY=1 STATUS=0 of 2 slots used'), 20_000);
    const health = await eventually(async () => {
      const reply = (await http(d.url(), 'GET', '/health')).body;
      expect(reply.status).toBe('degraded');
      return reply;
    });
    expect(health.reason).toMatch(/docker/i);
    await eventually(async () => expect(await readFile(join(dir, 'notified'), 'utf8')).toContain('STATUS=0 of 2 slots used; Docker unreachable'));
    d.child.kill('SIGTERM');
    expect(await d.exited).toBe(0);
    expect(await readFile(join(dir, 'notified'), 'utf8')).toContain('STOPPING=1');
  });

  it('says the agents were stopped when poolctl shutdown --stop-agents stopped them', async () => {
    const env = await writeEnv('MAX_AGENTS=3\n');
    const d = await start(env);
    const client = createPoolClient({ socketPath: join(dir, 's.sock') });
    await client.request('ceo');
    await client.shutdown({ stopAgents: true });
    client.close();
    expect(await d.exited).toBe(0);
    expect(d.output()).toContain('shutting down (poolctl shutdown --stop-agents); pooled agents stopped');
    expect(d.output()).not.toContain('agents keep running');
  });

  it('makes a second daemon on the same socket exit 1, naming the socket', async () => {
    const env = await writeEnv();
    await start(env);
    const second = spawnDaemon(project.dir, {}, ['--config', env]);
    expect(await second.exited).toBe(1);
    expect(second.output()).toContain(`another openclaw-pool daemon is already listening on ${dir}/s.sock`);
  });

  it('re-reads pool.env on SIGHUP and brings the pool under a lowered cap', async () => {
    const env = await writeEnv('MAX_AGENTS=3\nEVICT_GRACE_SECONDS=0\n');
    const d = await start(env);
    const client = createPoolClient({ socketPath: join(dir, 's.sock') });
    for (const agent of ['ceo', 'cto', 'cfo']) await client.request(agent);
    await writeFile(env, (await readFile(env, 'utf8')).replace('MAX_AGENTS=3', 'MAX_AGENTS=1'));
    d.child.kill('SIGHUP');
    await eventually(async () => {
      expect((await project.containers()).filter((c) => c.state === 'running')).toHaveLength(1);
      expect((await client.status()).slots_total).toBe(1);
    }, 20_000);
    expect(d.output()).toContain('reloaded configuration: MAX_AGENTS=1');
    client.close();
  });

  it("applies a reload when a unit's EnvironmentFile= copied pool.env into the environment, and keeps the operator's own override", async () => {
    const env = await writeEnv('MAX_AGENTS=3\nEVICT_GRACE_SECONDS=60\n');
    // As systemd's EnvironmentFile= would: every variable of the file, plus one set apart from it.
    const copies = Object.fromEntries((await readFile(env, 'utf8')).trim().split('\n').map((line) => line.split('=') as [string, string]));
    const d = spawnDaemon(project.dir, { ...copies, EVICT_GRACE_SECONDS: '0' }, ['--config', env]);
    running.push(d);
    await d.ready(20_000);
    await writeFile(env, (await readFile(env, 'utf8')).replace('MAX_AGENTS=3', 'MAX_AGENTS=2').replace('EVICT_GRACE_SECONDS=60', 'EVICT_GRACE_SECONDS=30'));
    d.child.kill('SIGHUP');
    await eventually(() => expect(d.output()).toContain('reloaded configuration: MAX_AGENTS=2, EVICT_GRACE_SECONDS=0'), 20_000);
  });
});

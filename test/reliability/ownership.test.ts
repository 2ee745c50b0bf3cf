import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type ComposeProject, agentService, createComposeProject, requireDocker } from '../support/docker.js';
import { eventually } from '../support/daemon.js';
import { scratchDir } from './support.js';
import { http } from '../support/http.js';
import { type SpawnedDaemon, buildOnce, daemonEnv, spawnDaemon } from '../support/spawn-daemon.js';

/**
 * What a pool must count and refuse beyond its own requests, on the real engine: a second daemon
 * on the same compose project, a container paused behind the daemon's back, and a compose file
 * that stops loading while the daemon runs.
 */
const docker = await requireDocker();
const AGENTS = ['a1', 'a2', 'a3', 'a4'];

describe.skipIf(!docker)('one project, one pool: ownership, paused containers, an invalid project', () => {
  let project: ComposeProject;
  const daemons: SpawnedDaemon[] = [];
  const scratches: string[] = [];

  beforeAll(async () => {
    await buildOnce();
  });

  afterEach(async () => {
    for (const d of daemons.splice(0)) await d.kill();
    await project?.remove();
    for (const dir of scratches.splice(0)) await rm(dir, { recursive: true, force: true });
  });

  /** A daemon of `project` with a socket, a port and a POOL_DIR of its own (`scratch` reuses another's, as a restart does). */
  async function daemonOf(env: Record<string, string>, scratch?: string) {
    const dir = scratch ?? (await scratchDir());
    if (scratch === undefined) scratches.push(dir);
    const d = spawnDaemon(project.dir, daemonEnv(project, dir, env));
    daemons.push(d);
    return { daemon: d, dir, socket: join(dir, 's.sock') };
  }

  /** The refused daemon's exit code, or 'still running' if it took the project beside the first. */
  const exitCode = (d: SpawnedDaemon) => Promise.race([d.exited, sleep(20_000).then(() => 'still running')]);
  const running = async () => (await project.containers()).filter((c) => c.state === 'running' || c.state === 'paused');
  const request = (url: string, agent: string) => http(url, 'POST', '/request', { agent, requested_by: 'test' });
  const stateOf = async (url: string) =>
    Object.fromEntries(((await http(url, 'GET', '/status')).body.running as { id: string; state: string }[]).map((a) => [a.id, a.state]));

  it('refuses a second daemon on the project, naming the first, and lets a restart take over at once after kill -9 or a stop', async () => {
    project = await createComposeProject(Object.fromEntries(AGENTS.map((a) => [a, agentService()])));
    const first = await daemonOf({ MAX_AGENTS: '2' });
    await first.daemon.ready();

    const second = await daemonOf({ MAX_AGENTS: '2' });
    expect(await exitCode(second.daemon)).toBeTypeOf('number');
    expect(await second.daemon.exited).not.toBe(0);
    expect(second.daemon.output()).toContain(`already managed by another openclaw-pool daemon (pid ${first.daemon.child.pid}, socket ${first.socket}`);

    // kill -9: no stop, no cleanup; the kernel drops the lock with the process.
    await first.daemon.kill();
    const restarted = await daemonOf({ MAX_AGENTS: '2' }, first.dir);
    await restarted.daemon.ready(10_000);
    const third = await daemonOf({ MAX_AGENTS: '2' });
    expect(await exitCode(third.daemon)).toBeTypeOf('number');
    expect(await third.daemon.exited).not.toBe(0);
    expect(third.daemon.output()).toContain(`pid ${restarted.daemon.child.pid}, socket ${restarted.socket}`);

    // systemctl restart: SIGTERM, the process exits, the next one starts.
    restarted.daemon.child.kill('SIGTERM');
    expect(await restarted.daemon.exited).toBe(0);
    const again = await daemonOf({ MAX_AGENTS: '2' }, first.dir);
    await again.daemon.ready(10_000);
  });

  it('counts and shows a paused agent, never starts it twice, and unpauses it on request', async () => {
    project = await createComposeProject(Object.fromEntries(AGENTS.map((a) => [a, agentService()])));
    const { daemon } = await daemonOf({ MAX_AGENTS: '3', EVICT_GRACE_SECONDS: '3600', SYNC_INTERVAL: '1' });
    const url = await daemon.ready();
    for (const agent of ['a1', 'a2', 'a3']) expect((await request(url, agent)).body.status).toBe('started');

    await execa('docker', ['compose', '--project-directory', project.dir, '-p', project.name, 'pause', 'a2']);
    await eventually(async () => expect(await stateOf(url)).toEqual({ a1: 'running', a2: 'paused', a3: 'running' }), 10_000, 100);
    expect((await http(url, 'GET', '/status')).body.slots_free).toBe(0);

    // Everyone is in their grace period and the paused one still holds its slot: no fourth container.
    expect((await request(url, 'a4')).body).toMatchObject({ status: 'pool_full' });
    expect(await running()).toHaveLength(3);

    expect((await request(url, 'a2')).body).toEqual({ status: 'started', agent: 'a2' });
    expect((await project.containers()).filter((c) => c.state === 'running').map((c) => c.service).sort()).toEqual(['a1', 'a2', 'a3']);
    expect(await stateOf(url)).toEqual({ a1: 'running', a2: 'running', a3: 'running' });
  });

  it('evicts nobody for a start that cannot succeed while compose.yaml does not load, and says so in health and metrics', async () => {
    project = await createComposeProject(Object.fromEntries(AGENTS.map((a) => [a, agentService()])));
    const { daemon } = await daemonOf({ MAX_AGENTS: '2', EVICT_GRACE_SECONDS: '0' });
    const url = await daemon.ready();
    for (const agent of ['a1', 'a2']) expect((await request(url, agent)).body.status).toBe('started');

    const composeFile = join(project.dir, 'compose.yaml');
    const valid = await execa('cat', [composeFile]);
    await writeFile(composeFile, 'services:\n  a1: [not, a, mapping\n');
    const refused = (await request(url, 'a3')).body;
    expect(refused).toMatchObject({ status: 'error', agent: 'a3' });
    expect(refused.error).toMatch(/yaml|mapping|services/i);
    expect((await running()).map((c) => c.service).sort()).toEqual(['a1', 'a2']);
    expect(await stateOf(url)).toEqual({ a1: 'running', a2: 'running' });

    const health = (await http(url, 'GET', '/health')).body;
    expect(health).toMatchObject({ status: 'degraded' });
    expect(health.reason).toContain('project invalid');
    expect((await http(url, 'GET', '/metrics')).text).toMatch(/^openclaw_pool_project_valid 0$/m);

    await writeFile(composeFile, valid.stdout);
    expect((await request(url, 'a3')).body).toMatchObject({ status: 'started', agent: 'a3', evicted: 'a1' });
    expect((await http(url, 'GET', '/health')).body).toMatchObject({ status: 'ok' });
    expect((await http(url, 'GET', '/metrics')).text).toMatch(/^openclaw_pool_project_valid 1$/m);
  });
});

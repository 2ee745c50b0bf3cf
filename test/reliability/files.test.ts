import { access, mkdir, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { agentService, requireDocker } from '../support/docker.js';
import { eventually } from '../support/daemon.js';
import { createProjectOn, scratchDir } from './support.js';
import { http } from '../support/http.js';
import { type SpawnedDaemon, buildOnce, daemonEnv, spawnDaemon } from '../support/spawn-daemon.js';

const docker = await requireDocker();
/** Mounting a read-only tmpfs needs CAP_SYS_ADMIN (root in the test container); skip that case without it. */
const canMount = process.getuid?.() === 0 && (await execa('sh', ['-c', 'd=$(mktemp -d) && mount -t tmpfs -o size=1m tmpfs "$d" && umount "$d"; r=$?; rmdir "$d"; exit $r'], { reject: false })).exitCode === 0;

/** Damaged, missing and unwritable files under POOL_DIR, against the real daemon binary on the machine's dockerd. */
describe.skipIf(!docker)('files under POOL_DIR', () => {
  let project: Awaited<ReturnType<typeof createProjectOn>>;
  let scratch: string;
  let daemon: SpawnedDaemon | undefined;
  const mounts: string[] = [];

  beforeAll(async () => {
    await buildOnce();
    project = await createProjectOn(undefined, { ceo: agentService(), cto: agentService(), cfo: agentService(), gateway: agentService() });
    return async () => project.remove();
  });
  afterEach(async () => {
    await daemon?.kill();
    if (process.env.POOL_TEST_LOGS) console.log(daemon?.output());
    daemon = undefined;
    for (const m of mounts.splice(0)) await execa('umount', [m], { reject: false });
    await project.compose('down', '--timeout', '0');
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });
  afterAll(async () => {
    for (const m of mounts.splice(0)) await execa('umount', [m], { reject: false });
  });

  const envFor = (poolDir: string, extra: Record<string, string> = {}) =>
    daemonEnv(project, scratch, { POOL_DIR: poolDir, MAX_AGENTS: '2', SYNC_INTERVAL: '1', STOP_TIMEOUT_SECONDS: '2', ...extra });

  const corruptions: [string, string][] = [
    ['truncated', '{"version":1,"agents":{"ceo":{"status":"running","started_at":"2026-11-25T10:'],
    ['not JSON', 'this is not json at all\n\u0000\u0001'],
    ['the wrong shape', '{"agents":[1,2,3]}'],
    ['empty', ''],
  ];
  it.each(corruptions)('a %s state.json is logged, moved aside, and the state is rebuilt from Docker (running containers adopted)', async (_kind, text) => {
    scratch = await scratchDir();
    const poolDir = join(scratch, 'pool');
    await project.compose('up', '-d', 'cto', 'gateway');
    await writeFile(join(poolDir, 'state.json'), text);
    daemon = spawnDaemon(project.dir, envFor(poolDir));
    const url = await daemon.ready();

    const line = daemon.output().split('\n').find((l) => l.includes('state.json was unreadable'));
    expect(line).toBeDefined();
    expect(line).toMatch(/state\.json was unreadable \(.+\); moved to .*state\.json\.corrupt-\d{8}T\d{6}Z; rebuilding the state from Docker/);
    const aside = (await readdir(poolDir)).filter((n) => n.startsWith('state.json.corrupt-'));
    expect(aside).toHaveLength(1);
    expect(await readFile(join(poolDir, aside[0]!), 'utf8')).toBe(text);
    expect(line).toContain(aside[0]);

    const status = (await http(url, 'GET', '/status')).body as { running: { id: string; requested_by: string }[] };
    expect(status.running.map((r) => [r.id, r.requested_by])).toEqual([['cto', 'adopted']]);
    expect(daemon.output()).toMatch(/adopted cto/);
    // The rebuilt state is written back, in shape, and the pool works.
    await eventually(async () => {
      const saved = JSON.parse(await readFile(join(poolDir, 'state.json'), 'utf8')) as { agents: Record<string, unknown> };
      expect(Object.keys(saved.agents)).toEqual(['cto']);
    }, 5000);
    expect((await http(url, 'POST', '/request', { agent: 'ceo' })).body).toEqual({ status: 'started', agent: 'ceo' });
    expect(await project.running()).toEqual(['ceo', 'cto', 'gateway']);
  });

  it('a POOL_DIR that cannot be a directory (its parent is a regular file): a clear message and exit 1, socket removed', async () => {
    scratch = await scratchDir();
    await writeFile(join(scratch, 'plain-file'), 'not a directory\n');
    const poolDir = join(scratch, 'plain-file', 'pool');
    const startedAt = Date.now();
    daemon = spawnDaemon(project.dir, envFor(poolDir));
    const code = await Promise.race([daemon.exited, sleep(30_000).then(() => 'hung')]);
    expect(code).toBe(1);
    expect(Date.now() - startedAt).toBeLessThan(30_000);
    expect(daemon.output()).toContain(`cannot start: cannot use POOL_DIR ${poolDir}: ENOTDIR`);
    expect(daemon.output()).toContain('it must be a writable directory');
    await expect(access(join(scratch, 's.sock'))).rejects.toThrow();
    // Nothing was started or touched.
    expect(await project.running()).toEqual([]);
  });

  it.skipIf(!canMount)('a read-only POOL_DIR at start: a clear message and exit 1', async () => {
    scratch = await scratchDir();
    const poolDir = join(scratch, 'pool');
    await execa('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', poolDir]);
    mounts.push(poolDir);
    await mkdir(join(poolDir, 'activity'));
    await execa('mount', ['-o', 'remount,ro', poolDir]);
    daemon = spawnDaemon(project.dir, envFor(poolDir));
    const code = await Promise.race([daemon.exited, sleep(30_000).then(() => 'hung')]);
    expect(code).toBe(1);
    expect(daemon.output()).toContain(`cannot start: cannot use POOL_DIR ${poolDir}: EROFS`);
  });

  it.skipIf(!canMount)('a POOL_DIR that turns read-only while running: degraded health naming it, the daemon stays up, and it recovers', async () => {
    scratch = await scratchDir();
    const poolDir = join(scratch, 'pool');
    await execa('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', poolDir]);
    mounts.push(poolDir);
    daemon = spawnDaemon(project.dir, envFor(poolDir));
    const url = await daemon.ready();
    expect((await http(url, 'POST', '/request', { agent: 'ceo' })).body).toEqual({ status: 'started', agent: 'ceo' });
    await execa('mount', ['-o', 'remount,ro', poolDir]);

    // The next state change cannot be saved: the start itself happened in Docker and is reported.
    const reply = await http(url, 'POST', '/request', { agent: 'cto' });
    expect(reply.status).toBe(200);
    expect(['started', 'error']).toContain(reply.body.status);
    const h = await eventually(async () => {
      const health = await http(url, 'GET', '/health');
      expect(health.status).toBe(200);
      expect(health.body.status).toBe('degraded');
      return health.body;
    }, 10_000, 100);
    expect(String(h.reason)).toMatch(/cannot write state: .*(EROFS|read-only)/i);
    expect(daemon.output()).toMatch(/error saving state\.json: .*(EROFS|read-only)/i);
    expect(daemon.child.exitCode).toBeNull();

    // Writable again: the pending state is flushed and health returns to ok without a restart.
    await execa('mount', ['-o', 'remount,rw', poolDir]);
    await eventually(async () => expect((await http(url, 'GET', '/health')).body.status).toBe('ok'), 10_000, 100);
    const saved = JSON.parse(await readFile(join(poolDir, 'state.json'), 'utf8')) as { agents: Record<string, unknown> };
    expect(Object.keys(saved.agents).sort()).toEqual((await project.running()).filter((s) => s !== 'gateway'));
  });

  it('a missing activity/ directory (deleted while running) is recreated; no crash, marks work again', async () => {
    scratch = await scratchDir();
    const poolDir = join(scratch, 'pool');
    daemon = spawnDaemon(project.dir, envFor(poolDir));
    const url = await daemon.ready();
    expect((await http(url, 'POST', '/request', { agent: 'ceo' })).body).toEqual({ status: 'started', agent: 'ceo' });
    await stat(join(poolDir, 'activity'));

    await rm(join(poolDir, 'activity'), { recursive: true, force: true });
    // SYNC_INTERVAL=1: the next reconcile reads the marks and finds the directory gone.
    await eventually(async () => expect((await stat(join(poolDir, 'activity'))).isDirectory()).toBe(true), 10_000, 100);
    expect(daemon.child.exitCode).toBeNull();
    expect((await http(url, 'GET', '/health')).body.status).toBe('ok');

    // A mark written into the recreated directory is read: ceo's last_active moves to its mtime.
    const before = ((await http(url, 'GET', '/status')).body.running as { id: string; last_active: string }[])[0]!.last_active;
    await sleep(1100);
    await writeFile(join(poolDir, 'activity', 'ceo'), '');
    await eventually(async () => {
      const now = ((await http(url, 'GET', '/status')).body.running as { id: string; last_active: string }[])[0]!.last_active;
      expect(Date.parse(now)).toBeGreaterThan(Date.parse(before));
    }, 10_000, 200);
    expect((await http(url, 'POST', '/heartbeat', { agent: 'ceo' })).body).toEqual({ status: 'ok' });
    expect((await http(url, 'POST', '/request', { agent: 'cto' })).body).toEqual({ status: 'started', agent: 'cto' });
    expect(daemon.output()).not.toMatch(/error reading activity marks/);
  });
});

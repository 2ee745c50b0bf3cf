import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentService, requireDocker } from '../support/docker.js';
import { eventually } from '../support/daemon.js';
import { type PrivateDockerd, type createProjectOn, daemonOnPrivateEngine } from './support.js';
import { http } from '../support/http.js';
import { type SpawnedDaemon } from '../support/spawn-daemon.js';

const docker = await requireDocker();
const dockerdAvailable = docker && (await import('node:child_process')).spawnSync('dockerd', ['--version']).status === 0;

/**
 * Docker goes away under a running daemon: a private dockerd (its own socket, data-root and
 * containerd) is stopped and restarted, so nobody else's containers are harmed.
 */
describe.skipIf(!dockerdAvailable)('Docker down and back, under a running daemon', () => {
  let engine: PrivateDockerd;
  let project: Awaited<ReturnType<typeof createProjectOn>>;
  let daemon: SpawnedDaemon;
  let url: string;
  const figures: Record<string, number> = {};

  let remove: () => Promise<void>;
  beforeAll(async () => {
    const services = {
      ceo: agentService(),
      cto: agentService(),
      cfo: agentService(),
      // A start Docker refuses: the image does not exist and may not be pulled.
      ghost: agentService({ image: 'openclaw-pool/does-not-exist:1', pull_policy: 'never' }),
    };
    ({ engine, project, daemon, url, remove } = await daemonOnPrivateEngine(services, { MAX_AGENTS: '2', EVICT_GRACE_SECONDS: '0', SYNC_INTERVAL: '1', STOP_TIMEOUT_SECONDS: '2' }));
  });

  afterAll(async () => {
    console.info(`docker-down figures: ${JSON.stringify(figures)}`);
    await remove?.();
  });

  it('starts an agent on the private engine', async () => {
    expect((await http(url, 'POST', '/request', { agent: 'ceo' })).body).toEqual({ status: 'started', agent: 'ceo' });
    expect(await project.running()).toEqual(['ceo']);
    expect((await http(url, 'GET', '/health')).body.status).toBe('ok');
  });

  it('a start Docker refuses (missing image, pull_policy never) frees its slot and leaves the state as before', async () => {
    const before = (await http(url, 'GET', '/status')).body;
    const reply = await http(url, 'POST', '/request', { agent: 'ghost' });
    expect(reply.status).toBe(200);
    expect(reply.body.status).toBe('error');
    expect(reply.body.agent).toBe('ghost');
    expect(String(reply.body.error)).toMatch(/does-not-exist|No such image|pull/i);
    const after = (await http(url, 'GET', '/status')).body;
    expect(after.slots_free).toBe(before.slots_free);
    expect((after.running as { id: string }[]).map((r) => r.id)).toEqual(['ceo']);
    expect(await project.running()).toEqual(['ceo']);
    expect(daemon.output()).toMatch(/failed ghost .*start failed/);
    // The freed slot is usable: a second request starts with no eviction needed.
    expect((await http(url, 'POST', '/request', { agent: 'ghost' })).body.status).toBe('error');
    expect((await http(url, 'GET', '/status')).body.slots_free).toBe(1);
  });

  it('stays up, reports degraded, answers from state, refuses starts promptly and backs off while Docker is down', async () => {
    const stoppedAt = Date.now();
    await engine.down();
    figures.engineStopMs = Date.now() - stoppedAt;
    const downAt = Date.now();

    // /health: degraded with a reason, still HTTP 200.
    const degraded = await eventually(async () => {
      const h = await http(url, 'GET', '/health', undefined, { timeoutMs: 5000 });
      expect(h.status).toBe(200);
      expect(h.body.status).toBe('degraded');
      return h.body;
    }, 15_000, 100);
    figures.degradedAfterEngineGoneMs = Date.now() - downAt;
    figures.degradedAfterSigtermMs = Date.now() - stoppedAt;
    expect(degraded.docker).toBe('unreachable');
    expect(String(degraded.reason)).toMatch(/docker unreachable: .+/);

    // /status still answers, from the state.
    const status = await http(url, 'GET', '/status', undefined, { timeoutMs: 5000 });
    expect(status.status).toBe(200);
    expect((status.body.running as { id: string }[]).map((r) => r.id)).toEqual(['ceo']);

    // A request for another agent: an error reply naming the cause, promptly.
    const asked = Date.now();
    const reply = await http(url, 'POST', '/request', { agent: 'cto' }, { timeoutMs: 20_000 });
    figures.errorReplyMs = Date.now() - asked;
    expect(reply.status).toBe(200);
    expect(reply.body).toMatchObject({ status: 'error', agent: 'cto' });
    expect(String(reply.body.error)).toMatch(/docker daemon|docker\.sock|connect/i);
    expect(figures.errorReplyMs).toBeLessThan(15_000);
    // The failed start left no slot taken.
    expect((await http(url, 'GET', '/status')).body.slots_free).toBe(1);

    // The reconcile loop retries at its interval, not in a tight loop; the events follower backs off.
    const countReconcileErrors = () => daemon.output().split('\n').filter((l) => l.includes('error reconciling with Docker')).length;
    const before = countReconcileErrors();
    await sleep(5000);
    const errorsIn5s = countReconcileErrors() - before;
    figures.reconcileErrorsIn5s = errorsIn5s;
    expect(errorsIn5s).toBeGreaterThanOrEqual(1);
    expect(errorsIn5s).toBeLessThanOrEqual(10);
    const delays = [...daemon.output().matchAll(/docker events stream ended; reconnecting in (\d+(?:\.\d+)?) s/g)].map((m) => Number(m[1]));
    figures.eventsReconnects = delays.length;
    expect(delays.length).toBeLessThanOrEqual(6);
    for (let i = 1; i < delays.length; i++) expect(delays[i]!).toBeGreaterThanOrEqual(delays[i - 1]!);
    expect(daemon.child.exitCode).toBeNull();
    expect((await http(url, 'GET', '/health')).status).toBe(200);
  });

  it('catches up by itself when Docker is back: lost agents dropped, health ok, requests work', async () => {
    const restartAt = Date.now();
    await engine.up();
    const upAt = Date.now();
    figures.engineRestartMs = upAt - restartAt;
    await eventually(async () => {
      const h = await http(url, 'GET', '/health', undefined, { timeoutMs: 5000 });
      expect(h.body.status).toBe('ok');
    }, 20_000, 100);
    figures.recoveryAfterEngineUpMs = Date.now() - upAt;
    // The engine has no live-restore: ceo died with it and the pool drops it.
    await eventually(async () => {
      expect(daemon.output()).toMatch(/lost ceo/);
      expect((await http(url, 'GET', '/status')).body.running).toEqual([]);
    }, 10_000, 100);
    const t = Date.now();
    expect((await http(url, 'POST', '/request', { agent: 'cto' })).body).toEqual({ status: 'started', agent: 'cto' });
    figures.firstStartAfterRecoveryMs = Date.now() - t;
    expect(await project.running()).toEqual(['cto']);
    expect((await http(url, 'POST', '/request', { agent: 'ceo' })).body).toEqual({ status: 'started', agent: 'ceo' });
    expect(await project.running()).toEqual(['ceo', 'cto']);
    expect(daemon.child.exitCode).toBeNull();
  });
  it('a hung Docker (dockerd stopped with SIGSTOP: connections accepted, never answered): degraded and prompt error replies, then recovery', async () => {
    // A free slot, so the request below needs a start only (no eviction).
    expect((await http(url, 'POST', '/release', { agent: 'cto' })).body).toEqual({ status: 'stopped', agent: 'cto' });
    await engine.signal('SIGSTOP');
    const hungAt = Date.now();
    try {
      const asked = Date.now();
      const reply = await http(url, 'POST', '/request', { agent: 'cfo' }, { timeoutMs: 60_000 });
      figures.hungErrorReplyMs = Date.now() - asked;
      expect(reply.status).toBe(200);
      expect(reply.body).toMatchObject({ status: 'error', agent: 'cfo' });
      expect(String(reply.body.error)).toMatch(/docker/i);
      expect(figures.hungErrorReplyMs).toBeLessThan(20_000);
      expect((await http(url, 'GET', '/status', undefined, { timeoutMs: 5000 })).body.slots_free).toBe(1);

      await eventually(async () => {
        const h = await http(url, 'GET', '/health', undefined, { timeoutMs: 5000 });
        expect(h.status).toBe(200);
        expect(h.body.status).toBe('degraded');
      }, 40_000, 200);
      figures.hungDegradedMs = Date.now() - hungAt;
      expect(figures.hungDegradedMs).toBeLessThan(40_000);
    } finally {
      await engine.signal('SIGCONT');
    }
    const resumedAt = Date.now();
    await eventually(async () => expect((await http(url, 'GET', '/health', undefined, { timeoutMs: 5000 })).body.status).toBe('ok'), 40_000, 200);
    figures.hungRecoveryMs = Date.now() - resumedAt;
    expect((await http(url, 'POST', '/request', { agent: 'cfo' })).body).toEqual({ status: 'started', agent: 'cfo' });
    expect(await project.running()).toEqual(['ceo', 'cfo']);
    expect(daemon.child.exitCode).toBeNull();
  });
});

import { spawnSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENT_IMAGE, ensureAgentImage } from '../support/agent-image.js';
import { eventually } from '../support/daemon.js';
import { requireDocker } from '../support/docker.js';
import { type PrivateDockerd, type createProjectOn, daemonOnPrivateEngine } from '../reliability/support.js';
import { http } from '../support/http.js';
import type { SpawnedDaemon } from '../support/spawn-daemon.js';

const docker = await requireDocker();
const dockerdAvailable = docker && spawnSync('dockerd', ['--version']).status === 0;

const MAX_AGENTS = 2;
const SYNC_INTERVAL = 1;
const STOP_TIMEOUT = 2;

/**
 * OpenClaw's agents have `restart: unless-stopped` (some `always`), so Docker itself starts
 * containers again when its engine restarts, behind the pool's back. A private dockerd (its own
 * socket and data-root) is restarted under a running daemon; the machine's engine is never touched.
 * The private engine runs in a network namespace of its own, so the project's bridge network cannot
 * overlap the main engine's networks; the daemon is asked over loopback, which needs none of it.
 */
describe.skipIf(!dockerdAvailable)('restart policies across a restart of the Docker engine', () => {
  let engine: PrivateDockerd;
  let project: Awaited<ReturnType<typeof createProjectOn>>;
  let daemon: SpawnedDaemon;
  let url: string;
  const figures: Record<string, number> = {};

  const agent = (restart: 'unless-stopped' | 'always') => ({
    image: AGENT_IMAGE,
    pull_policy: 'never',
    user: '1001:1001',
    init: true,
    restart,
  });
  const request = async (name: string) => (await http(url, 'POST', '/request', { agent: name })).body;
  const pooled = async () =>
    ((await http(url, 'GET', '/status')).body.running as { id: string; requested_by: string }[]).map((r) => r.id).sort();
  const runningAgents = async () => (await project.running()).filter((service) => service !== 'gateway');
  const startedAt = async (service: string) => {
    const ps = await project.compose('ps', '--all', '--quiet', service);
    const inspect = await engine.docker(['inspect', '--format', '{{.State.StartedAt}}', ps.stdout.trim()]);
    return Date.parse(inspect.stdout.trim());
  };
  /** Whether the host (this test's network namespace) has an interface of that name. */
  const hostHas = async (link: string) => !(await execa('ip', ['link', 'show', link], { reject: false })).failed;
  /** The Linux bridge of the project's default network on the private engine. */
  const projectBridge = async () => {
    const id = await engine.docker(['network', 'inspect', '--format', '{{.Id}}', `${project.name}_default`]);
    if (id.failed) throw new Error(`no default network on the private engine: ${id.stderr}`);
    return `br-${id.stdout.trim().slice(0, 12)}`;
  };
  let hostHadDocker0: boolean;

  let remove: () => Promise<void>;
  beforeAll(async () => {
    hostHadDocker0 = await hostHas('docker0');
    const services = {
      ceo: agent('unless-stopped'),
      cto: agent('unless-stopped'),
      cfo: agent('unless-stopped'),
      designer: agent('unless-stopped'),
      legal: agent('always'),
      gateway: agent('unless-stopped'),
    };
    const env = { MAX_AGENTS: String(MAX_AGENTS), EVICT_GRACE_SECONDS: '0', SYNC_INTERVAL: String(SYNC_INTERVAL), STOP_TIMEOUT_SECONDS: String(STOP_TIMEOUT) };
    ({ engine, project, daemon, url, remove } = await daemonOnPrivateEngine(services, env, async (privateEngine, created) => {
      await ensureAgentImage(privateEngine.host);
      const up = await created.compose('up', '-d', 'gateway');
      if (up.failed) throw new Error(`cannot start gateway on the private engine: ${up.stderr}`);
    }));
  });

  afterAll(async () => {
    console.info(`restart-policy figures: ${JSON.stringify(figures)}`);
    await remove?.();
  });

  it('the private engine keeps its networks to itself: the host keeps its docker0 and has none of the private bridges', async () => {
    expect(await hostHas('docker0')).toBe(hostHadDocker0);
    const bridge = await projectBridge();
    expect((await engine.docker(['network', 'ls', '--format', '{{.Name}}'])).stdout).toContain(`${project.name}_default`);
    expect(await hostHas(bridge)).toBe(false);
  });

  it('fills the pool, evicting one unless-stopped agent and the always agent and releasing another: Docker runs only what the pool holds', async () => {
    expect(await request('ceo')).toEqual({ status: 'started', agent: 'ceo' });
    expect(await request('legal')).toEqual({ status: 'started', agent: 'legal' });
    expect(await request('cto')).toEqual({ status: 'started', agent: 'cto', evicted: 'ceo' });
    expect((await http(url, 'POST', '/release', { agent: 'cto' })).body).toEqual({ status: 'stopped', agent: 'cto' });
    expect(await request('cfo')).toEqual({ status: 'started', agent: 'cfo' });
    expect(await request('designer')).toEqual({ status: 'started', agent: 'designer', evicted: 'legal' });
    expect(await pooled()).toEqual(['cfo', 'designer']);
    expect(await runningAgents()).toEqual(['cfo', 'designer']);
  });

  it('after the engine restarts, the pool is back under MAX_AGENTS within a reconcile; agents it had stopped stay stopped and uncounted; the always agent Docker restarted is adopted or evicted', async () => {
    const downAt = Date.now();
    await engine.down();
    await engine.up();
    const backAt = Date.now();
    figures.engineRestartMs = backAt - downAt;

    // Docker started `legal` (restart: always) on its own, though the pool had stopped it.
    await eventually(async () => expect(await startedAt('legal')).toBeGreaterThanOrEqual(downAt - 1000), 30_000, 200);

    // Back under the cap, and the pool's view is Docker's. A reconcile and a stop take a second or
    // two; the bound leaves room for a loaded machine, and the figure says how long it took.
    await eventually(async () => {
      const running = await runningAgents();
      expect(running.length).toBeLessThanOrEqual(MAX_AGENTS);
      expect(await pooled()).toEqual(running);
    }, (SYNC_INTERVAL + STOP_TIMEOUT) * 1000 * 5, 100);
    figures.backUnderCapMs = Date.now() - backAt;

    expect(daemon.output()).toMatch(/adopted legal/);
    expect(daemon.output()).toMatch(/docker events stream ended; reconnecting/);
    // unless-stopped agents the pool had stopped (evicted ceo, released cto) were left stopped by Docker.
    const running = await runningAgents();
    expect(running).not.toContain('ceo');
    expect(running).not.toContain('cto');
    expect(await pooled()).not.toContain('ceo');
    expect(await pooled()).not.toContain('cto');
    // The infrastructure came back through its own restart policy and is not the pool's.
    expect(await project.running()).toContain('gateway');
    expect(await pooled()).not.toContain('gateway');
    expect(await hostHas('docker0')).toBe(hostHadDocker0);
    expect(await hostHas(await projectBridge())).toBe(false);

    // It stays that way: the next reconciles change nothing, and the slots add up.
    await sleep(SYNC_INTERVAL * 3000);
    const settled = await runningAgents();
    expect(settled).toEqual(running);
    expect(await pooled()).toEqual(settled);
    const status = (await http(url, 'GET', '/status')).body;
    expect(status.slots_free).toBe(MAX_AGENTS - settled.length);
    expect((await http(url, 'GET', '/health')).body).toMatchObject({ status: 'ok' });
  });
});

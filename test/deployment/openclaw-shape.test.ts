import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureAgentImage } from '../support/agent-image.js';
import { eventually } from '../support/daemon.js';
import { requireDocker } from '../support/docker.js';
import { http } from '../support/http.js';
import { type SpawnedDaemon, buildOnce, spawnDaemon } from '../support/spawn-daemon.js';
import { type OpenclawProject, createOpenclawProject } from './openclaw-project.js';

const docker = await requireDocker();

/**
 * The daemon with its defaults (no POOL_BIND, no token) on a compose project shaped like
 * OpenClaw's: bridge networks, profiles, agents as uid 1001 reaching `pool-manager` through
 * host-gateway, driven from inside the containers by the project's shims and by the earlier bash
 * manager's kind of client. The tests run in order on one pool, each from the state the last left.
 */

const AGENTS = ['ceo', 'cfo', 'cto', 'researcher', 'software-engineer'];
const MAX_AGENTS = 3;
const EVICT_GRACE_SECONDS = 3;
const OLD_CLIENT = '/opt/clients/old-pool-client.sh';

interface AgentRow {
  id: string;
  last_active: string;
  requested_by: string;
  state: string;
  protection: string | null;
}
interface StatusBody {
  running: AgentRow[];
  slots_total: number;
  slots_free: number;
  queue: { agent: string; requested_by: string }[];
}

describe.skipIf(!docker)('an OpenClaw-shaped compose project under the daemon with its defaults', () => {
  let project: OpenclawProject;
  let scratch: string;
  let daemon: SpawnedDaemon;
  let url: string;
  let gatewayBefore: string;

  const status = async () => (await http(url, 'GET', '/status')).body as unknown as StatusBody;
  const row = async (agent: string) => {
    const found = (await status()).running.find((r) => r.id === agent);
    if (found === undefined) throw new Error(`${agent} is not in the pool`);
    return found;
  };
  const lastActive = async (agent: string) => Date.parse((await row(agent)).last_active);
  /** `<id> <state>` of a service's container, as `docker ps --all` lists it. */
  const containerOf = async (service: string) =>
    (await execa('docker', ['ps', '--all', '--filter', `label=com.docker.compose.project=${project.name}`,
      '--filter', `label=com.docker.compose.service=${service}`, '--format', '{{.ID}} {{.State}}'])).stdout;
  /** `<full id> <StartedAt>`: the same container, never restarted, gives the same line (the gateway must keep the one the test started). */
  const startedAt = async (service: string) => {
    const id = (await containerOf(service)).split(' ')[0] ?? '';
    return (await execa('docker', ['inspect', '--format', '{{.Id}} {{.State.StartedAt}}', id])).stdout;
  };
  const json = (text: string) => JSON.parse(text) as Record<string, unknown>;

  /** What the pool lists is what Docker runs, within the cap; the infrastructure is up and untouched, `ollama` was never created. */
  async function expectPoolMatchesDocker(): Promise<void> {
    const pooled = (await status()).running.map((r) => r.id).sort();
    expect(await project.running()).toEqual(['gateway', ...pooled].sort());
    expect(pooled.length).toBeLessThanOrEqual(MAX_AGENTS);
    expect(await project.created()).not.toContain('ollama');
    expect(await startedAt('gateway')).toBe(gatewayBefore);
  }

  beforeAll(async () => {
    await buildOnce();
    await ensureAgentImage();
    project = await createOpenclawProject('# started when the pool starts\nsoftware-engineer\n');
    // The operator's part: infrastructure is up before the pool.
    await project.compose('up', '-d', 'gateway');
    gatewayBefore = await startedAt('gateway');
    scratch = await mkdtemp('/tmp/pool-');
    const poolEnv = join(scratch, 'pool.env');
    await writeFile(
      poolEnv,
      [
        `MAX_AGENTS=${MAX_AGENTS}`,
        'INFRA_SERVICES=gateway,ollama',
        `COMPOSE_DIR=${project.dir}`,
        `POOL_SOCKET=${join(scratch, 's.sock')}`,
        `POOL_PORT=${project.port}`,
        `EVICT_GRACE_SECONDS=${EVICT_GRACE_SECONDS}`,
        // Activity marks are read at each reconcile.
        'SYNC_INTERVAL=1',
        '',
      ].join('\n'),
    );
    daemon = spawnDaemon(project.dir, { POOL_ENV: poolEnv });
    url = await daemon.ready();
  });

  afterAll(async () => {
    await daemon?.kill();
    if (process.env.POOL_TEST_LOGS) console.log(daemon?.output());
    await project?.remove();
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  it('the fixture has the OpenClaw shape: YAML anchors, .env values, uid 1001 agents behind profiles on two networks, no host networking', async () => {
    const yaml = await readFile(join(project.dir, 'compose.yaml'), 'utf8');
    expect(yaml).toMatch(/^\s+<<: \*agent-base$/m);
    expect(yaml).toMatch(/^\s+<<: \*agent-env$/m);
    expect(yaml).not.toContain('network_mode');
    const config = JSON.parse(await project.compose('--profile', '*', 'config', '--format', 'json')) as {
      services: Record<string, Record<string, unknown>>;
    };
    expect(Object.keys(config.services).sort()).toEqual([...AGENTS, 'gateway', 'ollama'].sort());
    for (const agent of AGENTS) {
      expect(config.services[agent]).toMatchObject({
        image: 'openclaw-pool/agent:test',
        pull_policy: 'never',
        user: '1001:1001',
        init: true,
        restart: 'unless-stopped',
        extra_hosts: ['pool-manager=host-gateway'],
        environment: { AGENT_ID: agent, POOL_HOST: 'pool-manager', POOL_PORT: String(project.port) },
        volumes: expect.arrayContaining([expect.objectContaining({ type: 'bind', source: join(project.dir, 'pool', 'shared'), target: '/pool' })]),
        depends_on: { gateway: expect.anything() },
      });
    }
    expect(config.services.cfo).toMatchObject({ profiles: ['seed', 'series-a'] });
    expect(config.services['software-engineer']).toMatchObject({ profiles: ['series-a'] });
    expect(config.services.researcher).toMatchObject({ profiles: ['series-b'], networks: { research: null } });
    expect(config.services.cto).toMatchObject({ container_name: project.ctoContainerName });
    expect(config.services.ollama).toMatchObject({ profiles: ['gpu'] });
    // What the operator's compose sees with COMPOSE_PROFILES=seed from .env: neither software-engineer nor researcher nor ollama.
    expect((await project.compose('config', '--services')).split('\n').sort()).toEqual(['ceo', 'cfo', 'cto', 'gateway']);
  });

  it('knows every profile\'s services as agents and no infrastructure service, whatever COMPOSE_PROFILES says', async () => {
    const reply = await http(url, 'POST', '/request', { agent: 'nobody' });
    expect(reply.body).toMatchObject({ status: 'unknown_agent', agent: 'nobody' });
    expect([...(reply.body.known as string[])].sort()).toEqual(AGENTS);
  });

  it('starts software-engineer, listed in autostart.txt behind a profile COMPOSE_PROFILES leaves out, at start-up, and nothing else', async () => {
    await eventually(
      async () => expect((await status()).running.map((r) => [r.id, r.requested_by, r.state])).toEqual([['software-engineer', 'autostart', 'running']]),
      30_000,
      200,
    );
    await expectPoolMatchesDocker();
  });

  it('with no POOL_BIND listens on loopback, the gateway of each network the agents use and host-gateway\'s address, never on all interfaces', async () => {
    const gatewayOf = async (network: string) =>
      (await execa('docker', ['network', 'inspect', '--format', '{{range .IPAM.Config}}{{.Gateway}}{{end}}', network])).stdout.trim();
    // Not assumed: what host-gateway resolved to is in an agent's /etc/hosts (the engine wrote it there).
    const hosts = await project.exec('software-engineer', ['grep', 'pool-manager', '/etc/hosts']);
    const hostGateway = hosts.stdout.split(/\s+/)[0] ?? '';
    expect(hostGateway).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    const expected = ['127.0.0.1', hostGateway, await gatewayOf(`${project.name}_default`), await gatewayOf(`${project.name}_research`)];
    const listening = [...daemon.output().matchAll(/bridge listening on http:\/\/([^\s]+):(\d+)/g)].map((m) => {
      expect(m[2]).toBe(String(project.port));
      return m[1];
    });
    expect([...new Set(listening)].sort()).toEqual([...new Set(expected)].sort());
    expect(listening).not.toContain('0.0.0.0');
  });

  it('the agent image runs as uid 1001 with no passwd entry, with busybox sh, bash, curl and jq, and stops at once on SIGTERM', async () => {
    const out = await project.exec('software-engineer', ['sh', '-c',
      'id -u; id -g; readlink /bin/sh; bash -c \'echo "bash $BASH_VERSION"\'; curl --version | head -n1; jq --version; test -e /etc/passwd || echo no-passwd; command -v request-agent; command -v heartbeat']);
    expect(out.code).toBe(0);
    expect(out.stdout.split('\n')).toEqual([
      '1001', '1001', 'busybox', expect.stringMatching(/^bash 5\./), expect.stringMatching(/^curl /), expect.stringMatching(/^jq-/), 'no-passwd',
      '/usr/local/bin/request-agent', '/usr/local/bin/heartbeat',
    ]);
    // A throwaway container of the same image: `docker stop` with a 10 s timeout returns long before it.
    const name = `${project.name}-sigterm`;
    await execa('docker', ['run', '-d', '--name', name, '--network', 'none', '--init', '--user', '1001:1001', 'openclaw-pool/agent:test']);
    try {
      const began = Date.now();
      await execa('docker', ['stop', '--time', '10', name]);
      expect((Date.now() - began) / 10_000).toBeLessThan(0.3);
      expect((await execa('docker', ['inspect', '--format', '{{.State.ExitCode}}', name])).stdout).toBe('0');
    } finally {
      await execa('docker', ['rm', '-f', name], { reject: false });
    }
  });

  it('from the default network, ceo\'s request-agent (busybox sh, uid 1001) starts researcher, whose profile is not in COMPOSE_PROFILES', async () => {
    expect((await http(url, 'POST', '/request', { agent: 'ceo', requested_by: 'operator' })).body).toEqual({ status: 'started', agent: 'ceo' });
    const out = await project.exec('ceo', ['request-agent', 'researcher']);
    expect(out.stderr).toBe('');
    expect(out.code).toBe(0);
    expect(json(out.stdout)).toEqual({ status: 'started', agent: 'researcher' });
    expect(await row('researcher')).toMatchObject({ requested_by: 'ceo' });
    await expectPoolMatchesDocker();
  });

  it('from both networks, the old bash client reads /status and sends heartbeats, and the heartbeat shim (curl or busybox wget) beats and creates its activity mark as uid 1001', async () => {
    for (const agent of ['ceo', 'researcher']) {
      const seen = await project.exec(agent, [OLD_CLIENT, 'status']);
      expect(seen.code).toBe(0);
      const body = json(seen.stdout) as unknown as StatusBody;
      expect(body).toMatchObject({ slots_total: MAX_AGENTS, slots_free: 0 });
      expect(body.running.map((r) => r.id).sort()).toEqual(['ceo', 'researcher', 'software-engineer']);

      // Status times have second precision: a beat one second on is visibly later.
      const before = await lastActive(agent);
      await sleep(1100);
      const beat = await project.exec(agent, [OLD_CLIENT, 'heartbeat']);
      expect(beat.code).toBe(0);
      expect(json(beat.stdout)).toEqual({ status: 'ok' });
      expect(await lastActive(agent)).toBeGreaterThan(before);

      const shim = await project.exec(agent, ['heartbeat', '--once']);
      expect(shim).toMatchObject({ code: 0, stderr: '' });
      // Without curl on PATH the shim beats through busybox wget, as in images that have no curl.
      const viaWget = await project.exec(agent, ['env', 'PATH=/usr/local/bin:/bin', 'heartbeat', '--once']);
      expect(viaWget).toMatchObject({ code: 0, stderr: '' });
      // The shim skips the mark silently when /pool/activity is not writable: the file proves it was.
      expect((await stat(join(project.poolDir, 'shared', 'activity', agent))).uid).toBe(1001);
    }
  });

  it('touch /pool/activity/$AGENT_ID as uid 1001 succeeds and moves the agent\'s last_active in /status (both networks)', async () => {
    for (const agent of ['ceo', 'researcher']) {
      const before = await lastActive(agent);
      await sleep(1100);
      const touched = await project.exec(agent, ['sh', '-c', 'touch "/pool/activity/$AGENT_ID"']);
      expect(touched).toMatchObject({ code: 0, stderr: '' });
      const mark = Math.floor((await stat(join(project.poolDir, 'shared', 'activity', agent))).mtimeMs / 1000) * 1000;
      expect(mark).toBeGreaterThan(before);
      await eventually(async () => expect(await lastActive(agent)).toBeGreaterThanOrEqual(mark), 10_000, 200);
    }
  });

  it('ignores files in /pool/activity that name no pooled agent, and carries on reading the marks', async () => {
    const junk = await project.exec('ceo', ['sh', '-c',
      'cd /pool/activity && touch gateway ollama nobody .hidden "not an agent" && mkdir cfo-dir && echo x > "$(printf \'%0200d\' 0)"']);
    expect(junk).toMatchObject({ code: 0, stderr: '' });
    // A mark touched after the junk counts: a reconcile read the directory with the junk in it.
    const before = await lastActive('ceo');
    await sleep(1100);
    await project.exec('ceo', ['touch', '/pool/activity/ceo']);
    await eventually(async () => expect(await lastActive('ceo')).toBeGreaterThan(before), 10_000, 200);
    expect(daemon.child.exitCode).toBeNull();
    expect((await http(url, 'GET', '/health')).body).toMatchObject({ status: 'ok' });
    expect((await status()).running.map((r) => r.id).sort()).toEqual(['ceo', 'researcher', 'software-engineer']);
    expect(daemon.output()).not.toContain('error reading activity marks');
    await expectPoolMatchesDocker();
  });

  it('from the second network, the old client\'s request on a full pool evicts the least recently active agent, which Docker then leaves stopped', async () => {
    // software-engineer has done nothing since its autostart; ceo and researcher were active since.
    await eventually(async () => expect(await row('software-engineer')).toMatchObject({ protection: null }), (EVICT_GRACE_SECONDS + 5) * 1000, 200);
    expect(await lastActive('software-engineer')).toBeLessThan(Math.min(await lastActive('ceo'), await lastActive('researcher')));
    const out = await project.exec('researcher', [OLD_CLIENT, 'request', 'cfo']);
    expect(out.code).toBe(0);
    expect(json(out.stdout)).toEqual({ status: 'started', agent: 'cfo', evicted: 'software-engineer' });
    expect(await row('cfo')).toMatchObject({ requested_by: 'researcher' });
    expect(await containerOf('software-engineer')).toMatch(/ exited$/);
    await expectPoolMatchesDocker();
  });

  it('request-agent --wait in ceo queues while every agent is held busy, and takes the slot that the old client\'s release in researcher frees', async () => {
    for (const agent of ['ceo', 'cfo', 'researcher']) expect(await project.exec(agent, ['heartbeat', '--busy', '120'])).toMatchObject({ code: 0, stderr: '' });
    expect((await status()).running.map((r) => r.protection)).toEqual(['busy', 'busy', 'busy']);
    const waiting = project.exec('ceo', ['request-agent', '--wait', '60', 'cto']);
    await eventually(async () => expect((await status()).queue).toEqual([expect.objectContaining({ agent: 'cto', requested_by: 'ceo' })]), 20_000, 200);

    const released = await project.exec('researcher', [OLD_CLIENT, 'release', 'cfo']);
    expect(released.code).toBe(0);
    expect(json(released.stdout)).toEqual({ status: 'stopped', agent: 'cfo' });

    const out = await waiting;
    expect(out.code).toBe(0);
    const reply = json(out.stdout);
    expect(reply).toMatchObject({ status: 'started', agent: 'cto', waited_seconds: expect.any(Number) });
    expect(reply).not.toHaveProperty('evicted');
    // cto has a container_name: the pool found it by its compose labels all the same.
    expect((await execa('docker', ['inspect', '--format', '{{.State.Running}} {{index .Config.Labels "com.docker.compose.service"}}', project.ctoContainerName])).stdout).toBe('true cto');
    for (const agent of ['ceo', 'researcher']) expect(await project.exec(agent, ['heartbeat', '--busy', '0'])).toMatchObject({ code: 0 });
    await expectPoolMatchesDocker();
  });

  it('from the default network, the old client releases cto (stopped, exit 0), and a second release answers not_running', async () => {
    const first = await project.exec('ceo', [OLD_CLIENT, 'release', 'cto']);
    expect(first.code).toBe(0);
    expect(json(first.stdout)).toEqual({ status: 'stopped', agent: 'cto' });
    const second = await project.exec('ceo', [OLD_CLIENT, 'release', 'cto']);
    expect(second.code).toBe(0);
    expect(json(second.stdout)).toEqual({ status: 'not_running', agent: 'cto' });
    expect((await execa('docker', ['inspect', '--format', '{{.State.Running}}', project.ctoContainerName])).stdout).toBe('false');
    await expectPoolMatchesDocker();
  });

  it('never starts or stops infrastructure: requests and releases of gateway and ollama answer forbidden from either client, and exit 1', async () => {
    const asks: [string, string[]][] = [
      ['ceo', ['request-agent', 'gateway']],
      ['researcher', ['request-agent', 'ollama']],
      ['researcher', [OLD_CLIENT, 'request', 'gateway']],
      ['ceo', [OLD_CLIENT, 'release', 'gateway']],
      ['ceo', [OLD_CLIENT, 'release', 'ollama']],
    ];
    for (const [agent, command] of asks) {
      const out = await project.exec(agent, command);
      expect(out.code).toBe(1);
      expect(json(out.stdout)).toMatchObject({ status: 'forbidden', agent: command.at(-1), error: expect.any(String) });
    }
    expect((await status()).running.map((r) => r.id)).not.toContain('gateway');
    await expectPoolMatchesDocker();
  });
});

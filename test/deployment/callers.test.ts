import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENT_IMAGE, ensureAgentImage } from '../support/agent-image.js';
import { eventually } from '../support/daemon.js';
import { requireDocker } from '../support/docker.js';
import { http } from '../support/http.js';
import { type SpawnedDaemon, buildOnce, spawnDaemon } from '../support/spawn-daemon.js';
import { type OpenclawProject, createOpenclawProject } from './openclaw-project.js';

const docker = await requireDocker();

/**
 * Caller identity (CALLER_POLICY=agents, the default here: the compose driver reads the Engine
 * API) on the OpenClaw-shaped project: agents on bridge networks are known by their address, the
 * gateway as infrastructure, a container of no project as a stranger. The tests run in order on
 * one pool, each from the state the last left.
 */

interface Row {
  id: string;
  last_active: string;
  requested_by: string;
  protection: string | null;
  busy_until?: string;
}
interface Reply {
  code: number;
  body: Record<string, unknown>;
}

describe.skipIf(!docker)('who is calling: identity from the peer address on the bridge networks', () => {
  let project: OpenclawProject;
  let scratch: string;
  let daemon: SpawnedDaemon;
  let url: string;
  let network: string;

  const status = async () => (await http(url, 'GET', '/status')).body as unknown as { running: Row[] };
  const rows = async () => (await status()).running.map(({ id, last_active, requested_by, busy_until }) => ({ id, last_active, requested_by, busy_until }));
  const running = async () => (await status()).running.map((r) => r.id).sort();
  const events = async (agent: string) => ((await http(url, 'GET', `/events?agent=${agent}&limit=50`)).body as { events: { type: string; by: string; via?: string }[] }).events;
  /** `curl` as the shims do, from inside a service's container (uid 1001) to `pool-manager`; extra headers as given. */
  const curlArgs = (path: string, body: unknown, headers: string[] = [], host = 'pool-manager') => [
    'curl', '-s', '-X', 'POST', '-H', 'Content-Type: application/json', ...headers.flatMap((h) => ['-H', h]),
    '-d', JSON.stringify(body), '-w', '\n%{http_code}', `http://${host}:${project.port}${path}`,
  ];
  const parse = (stdout: string): Reply => {
    const lines = stdout.trim().split('\n');
    const code = Number(lines.pop());
    return { code, body: JSON.parse(lines.join('\n') || '{}') as Record<string, unknown> };
  };
  const post = async (from: string, path: string, body: unknown, headers?: string[], host?: string) => parse((await project.exec(from, curlArgs(path, body, headers, host))).stdout);
  /** A container of no project on the project's default network: a stranger, though it reaches the bridge as the agents do. */
  const stranger = async (script: string, ip?: string) =>
    (await execa('docker', ['run', '--rm', '--network', network, ...(ip === undefined ? [] : ['--ip', ip]), '--add-host', 'pool-manager:host-gateway',
      '--user', '1001:1001', AGENT_IMAGE, 'sh', '-c', script])).stdout;
  const strangerPost = async (path: string, body: unknown, headers?: string[], ip?: string) =>
    parse(await stranger(curlArgs(path, body, headers).map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' '), ip));
  const addressOf = async (service: string) =>
    (await execa('docker', ['ps', '--filter', `label=com.docker.compose.project=${project.name}`, '--filter', `label=com.docker.compose.service=${service}`,
      '--format', `{{.ID}}`]).then(({ stdout }) => execa('docker', ['inspect', '--format', `{{(index .NetworkSettings.Networks "${network}").IPAddress}}`, stdout.trim()]))).stdout.trim();
  const dockerOperations = async () => {
    const text = (await http(url, 'GET', '/metrics')).text;
    return [...text.matchAll(/^openclaw_pool_docker_operation_seconds_count\{[^}]*\} (\d+)$/gm)].reduce((sum, m) => sum + Number(m[1]), 0);
  };

  beforeAll(async () => {
    await buildOnce();
    await ensureAgentImage();
    project = await createOpenclawProject('');
    network = `${project.name}_default`;
    await project.compose('up', '-d', 'gateway');
    scratch = await mkdtemp('/tmp/pool-');
    const poolEnv = join(scratch, 'pool.env');
    await writeFile(
      poolEnv,
      [
        'MAX_AGENTS=4',
        'INFRA_SERVICES=gateway,ollama',
        `COMPOSE_DIR=${project.dir}`,
        `POOL_SOCKET=${join(scratch, 's.sock')}`,
        `POOL_PORT=${project.port}`,
        // No periodic reconcile during the tests: what keeps identity current is Docker's events.
        'SYNC_INTERVAL=600',
        '',
      ].join('\n'),
    );
    daemon = spawnDaemon(project.dir, { POOL_ENV: poolEnv });
    url = await daemon.ready();
    expect((await http(url, 'POST', '/request', { agent: 'ceo', requested_by: 'operator' })).body).toEqual({ status: 'started', agent: 'ceo' });
    expect((await http(url, 'POST', '/request', { agent: 'cto', requested_by: 'operator' })).body).toEqual({ status: 'started', agent: 'cto' });
  });

  afterAll(async () => {
    await daemon?.kill();
    if (process.env.POOL_TEST_LOGS) console.log(daemon?.output());
    await project?.remove();
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  it('an agent that requests a peer is its requester, whatever its body claimed (the bash manager sent the target), and the events say how it was known', async () => {
    const reply = await post('ceo', '/request', { agent: 'cfo', requested_by: 'cfo' });
    expect(reply).toEqual({ code: 200, body: { status: 'started', agent: 'cfo' } });
    expect((await status()).running.find((r) => r.id === 'cfo')).toMatchObject({ requested_by: 'ceo' });
    expect(await events('cfo')).toContainEqual(expect.objectContaining({ type: 'started', by: 'ceo', via: 'peer' }));
    // Said once, not per request.
    await post('ceo', '/request', { agent: 'cfo', requested_by: 'cfo' });
    expect(daemon.output().match(/caller ceo sent requested_by "cfo"/g)).toHaveLength(1);
  });

  it('an agent cannot heartbeat, hold busy or release another agent: forbidden with HTTP 200, and nothing changes', async () => {
    const before = await rows();
    const asks: [string, Record<string, unknown>, string][] = [
      ['/heartbeat', { agent: 'cto' }, 'ceo may not heartbeat for cto'],
      ['/heartbeat', { agent: 'cto', busy_seconds: 600 }, 'ceo may not heartbeat for cto'],
      ['/release', { agent: 'cto' }, 'ceo may not release cto'],
    ];
    for (const [path, body, error] of asks) {
      const reply = await post('ceo', path, body);
      expect(reply.code).toBe(200);
      expect(reply.body).toEqual({ status: 'forbidden', agent: 'cto', error: expect.stringMatching(new RegExp(`^${error}`)) });
    }
    expect(await rows()).toEqual(before);
    expect(await project.running()).toEqual(['ceo', 'cfo', 'cto', 'gateway']);
    // The old client's `curl -sf` prints the reason instead of failing to reach the pool manager.
    const old = await project.exec('ceo', ['/opt/clients/old-pool-client.sh', 'release', 'cto']);
    expect(JSON.parse(old.stdout)).toMatchObject({ status: 'forbidden', error: expect.stringMatching(/^ceo may not release cto/) });
    expect(await project.running()).toContain('cto');
  });

  it('forged X-Forwarded-For headers are ignored: the address is the socket peer', async () => {
    const cfo = await addressOf('cfo');
    for (const forged of [cfo, '127.0.0.1']) {
      expect((await post('ceo', '/heartbeat', { agent: 'cto' }, [`X-Forwarded-For: ${forged}`, `X-Real-IP: ${forged}`])).body).toMatchObject({ status: 'forbidden' });
      expect((await strangerPost('/heartbeat', { agent: 'cfo' }, [`X-Forwarded-For: ${forged}`])).code).toBe(403);
    }
  });

  it('an agent heartbeats and holds busy itself, and releases an agent it requested', async () => {
    expect(await post('cfo', '/heartbeat', { agent: 'cfo', busy_seconds: 60 })).toEqual({ code: 200, body: { status: 'ok' } });
    expect((await status()).running.find((r) => r.id === 'cfo')).toMatchObject({ protection: 'busy' });
    expect(await post('ceo', '/release', { agent: 'cfo' })).toEqual({ code: 200, body: { status: 'stopped', agent: 'cfo' } });
    expect(await events('cfo')).toContainEqual(expect.objectContaining({ type: 'released', by: 'ceo', via: 'peer' }));
    expect(await running()).toEqual(['ceo', 'cto']);
  });

  it('the gateway (infrastructure) requests and releases agents, and cannot heartbeat for them', async () => {
    // The gateway has no pool-manager host entry: it calls the bridge on its network's gateway address.
    const bridge = (await execa('docker', ['network', 'inspect', '--format', '{{range .IPAM.Config}}{{.Gateway}}{{end}}', network])).stdout.trim();
    const fromGateway = (path: string, body: unknown) => post('gateway', path, body, [], bridge);
    expect(await fromGateway('/request', { agent: 'cfo' })).toEqual({ code: 200, body: { status: 'started', agent: 'cfo' } });
    expect((await status()).running.find((r) => r.id === 'cfo')).toMatchObject({ requested_by: 'gateway' });
    expect((await fromGateway('/heartbeat', { agent: 'cfo' })).body).toMatchObject({ status: 'forbidden', error: expect.stringMatching(/^gateway may not heartbeat for cfo/) });
    expect(await fromGateway('/release', { agent: 'cfo' })).toEqual({ code: 200, body: { status: 'stopped', agent: 'cfo' } });
  });

  it('a container outside the project on the same network gets 403 on every POST and can still read; nothing changes', async () => {
    const before = await rows();
    for (const [path, body] of [['/request', { agent: 'cfo' }], ['/release', { agent: 'cto' }], ['/heartbeat', { agent: 'ceo' }]] as const) {
      const reply = await strangerPost(path, body);
      expect(reply.code).toBe(403);
      expect(reply.body).toEqual({ error: expect.stringMatching(/^forbidden: .+ is not a container of this project/) });
    }
    const read = await stranger(`curl -s -o /dev/null -w '%{http_code}' http://pool-manager:${project.port}/status`);
    expect(read).toBe('200');
    expect(await rows()).toEqual(before);
  });

  it('a flood of POSTs from a stranger is answered from memory, with no Docker call', async () => {
    const before = await dockerOperations();
    const out = await stranger(`for i in $(seq 200); do curl -s -o /dev/null -w '%{http_code}\\n' -X POST -d '{"agent":"cfo"}' http://pool-manager:${project.port}/request; done`);
    expect(out.split('\n').filter((c) => c === '403')).toHaveLength(200);
    expect(await dockerOperations()).toBe(before);
    expect((await http(url, 'GET', '/metrics')).text).toMatch(/^openclaw_pool_bridge_callers_total\{caller="stranger",via="none",verdict="stranger"\} (\d+)$/m);
  });

  it('loopback is the host and may still do everything', async () => {
    expect((await http(url, 'POST', '/heartbeat', { agent: 'ceo', busy_seconds: 0 })).body).toEqual({ status: 'ok' });
    expect((await http(url, 'POST', '/release', { agent: 'cto', requested_by: 'operator' })).body).toEqual({ status: 'stopped', agent: 'cto' });
    expect(await events('cto')).toContainEqual(expect.objectContaining({ type: 'released', by: 'operator', via: 'host' }));
  });

  it('identity follows a container restarted with a new address, after its event: its old address is nobody', async () => {
    const old = await addressOf('ceo');
    // An agent may release itself; its reply dies with its container, the event log keeps it.
    await post('ceo', '/release', { agent: 'ceo' });
    await eventually(async () => expect(await events('ceo')).toContainEqual(expect.objectContaining({ type: 'released', by: 'ceo', via: 'peer' })), 20_000, 200);
    expect(await running()).toEqual([]);
    // A stranger takes ceo's old address while ceo is down (the engine hands out the lowest free
    // one), and ceo comes back on another.
    const squatter = `${project.name}-squatter`;
    await execa('docker', ['run', '-d', '--name', squatter, '--network', network, '--add-host', 'pool-manager:host-gateway', '--user', '1001:1001', AGENT_IMAGE]);
    try {
      expect((await execa('docker', ['inspect', '--format', `{{(index .NetworkSettings.Networks "${network}").IPAddress}}`, squatter])).stdout.trim()).toBe(old);
      expect((await http(url, 'POST', '/request', { agent: 'ceo', requested_by: 'operator' })).body).toEqual({ status: 'started', agent: 'ceo' });
      expect(await addressOf('ceo')).not.toBe(old);
      const squat = async () => parse((await execa('docker', ['exec', squatter, ...curlArgs('/heartbeat', { agent: 'ceo' })])).stdout);
      await eventually(async () => expect((await squat()).code).toBe(403), 10_000, 200);
      await eventually(async () => expect(await post('ceo', '/heartbeat', { agent: 'ceo' })).toEqual({ code: 200, body: { status: 'ok' } }), 10_000, 200);
      expect((await post('ceo', '/heartbeat', { agent: 'cto' })).body).toMatchObject({ status: 'forbidden' });
    } finally {
      await execa('docker', ['rm', '-f', squatter], { reject: false });
    }
  });
});

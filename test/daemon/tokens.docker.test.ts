import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENT_IMAGE, ensureAgentImage } from '../support/agent-image.js';
import { eventually } from '../support/daemon.js';
import { type ComposeProject, agentService, createComposeProject, requireDocker } from '../support/docker.js';
import { BIN, type SpawnedDaemon, buildOnce, spawnDaemon } from '../support/spawn-daemon.js';

const docker = await requireDocker();

const CEO = 'ceo-token-0123456789abcdef';
const CFO = 'cfo-token-0123456789abcdef';
const HOST = 'host-token-0123456789abcdef';

/**
 * Per-agent tokens where addresses tell nothing: every agent on `network_mode: host`, so that each
 * arrives from loopback, as the host does. The tokens file decides who calls; its `host` entry
 * keeps an agent from passing for the host. The tests run in order on one daemon.
 */
describe.skipIf(!docker)('per-agent tokens on network_mode: host', () => {
  let project: ComposeProject;
  let scratch: string;
  let daemon: SpawnedDaemon;
  let url: string;
  let poolEnv: string;

  const call = async (path: string, body: unknown, token?: string) => {
    const res = await fetch(`${url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token !== undefined && { authorization: `Bearer ${token}` }) },
      body: JSON.stringify(body),
    });
    return { code: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  const status = async () => ((await (await fetch(`${url}/status`)).json()) as { running: { id: string; requested_by: string; last_active: string }[] }).running;
  const events = async (agent: string) => ((await (await fetch(`${url}/events?agent=${agent}`)).json()) as { events: { type: string; by: string; via?: string }[] }).events;

  beforeAll(async () => {
    await buildOnce();
    await ensureAgentImage();
    project = await createComposeProject({ ceo: agentService(), cfo: agentService(), cto: agentService() });
    scratch = await mkdtemp(join(tmpdir(), 'pool-tokens-'));
    const tokens = join(scratch, 'tokens');
    await writeFile(tokens, `# one per agent, and the host's\nceo ${CEO}\ncfo ${CFO}\nhost ${HOST}\n`);
    await chmod(tokens, 0o600);
    poolEnv = join(scratch, 'pool.env');
    await writeFile(poolEnv, [
      `COMPOSE_DIR=${project.dir}`, `COMPOSE_PROJECT=${project.name}`, `POOL_SOCKET=${join(scratch, 's.sock')}`, 'POOL_PORT=0',
      `POOL_TOKENS_FILE=${tokens}`, 'MAX_AGENTS=3', 'INFRA_SERVICES=', '',
    ].join('\n'));
    daemon = spawnDaemon(scratch, { POOL_ENV: poolEnv });
    url = await daemon.ready(30_000);
  });

  afterAll(async () => {
    await daemon?.kill();
    if (process.env.POOL_TEST_LOGS) console.log(daemon?.output());
    await project?.remove();
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  it('with a host entry, a POST from loopback without a token, or with a wrong one, is 401, and changes nothing', async () => {
    for (const token of [undefined, 'not-a-token-of-anybody-at-all', CEO.slice(0, -1)]) {
      const reply = await call('/request', { agent: 'cto' }, token);
      expect(reply.code).toBe(401);
      expect(JSON.stringify(reply.body)).not.toContain(CEO);
    }
    expect(await status()).toEqual([]);
    // GET endpoints stay open.
    expect((await fetch(`${url}/status`)).status).toBe(200);
  });

  it('the token decides the identity: ceo requests under its own name, and cannot heartbeat or release another agent', async () => {
    expect(await call('/request', { agent: 'cfo', requested_by: 'cto' }, CEO)).toEqual({ code: 200, body: { status: 'started', agent: 'cfo' } });
    expect((await status()).find((r) => r.id === 'cfo')).toMatchObject({ requested_by: 'ceo' });
    expect(await events('cfo')).toContainEqual(expect.objectContaining({ type: 'started', by: 'ceo', via: 'token' }));
    expect(await call('/request', { agent: 'cto' }, CFO)).toEqual({ code: 200, body: { status: 'started', agent: 'cto' } });
    const before = await status();
    expect((await call('/heartbeat', { agent: 'cto', busy_seconds: 60 }, CEO)).body).toEqual({ status: 'forbidden', agent: 'cto', error: expect.stringMatching(/^ceo may not heartbeat for cto/) });
    expect((await call('/release', { agent: 'cto' }, CEO)).body).toEqual({ status: 'forbidden', agent: 'cto', error: expect.stringMatching(/^ceo may not release cto/) });
    expect(await status()).toEqual(before);
    // The host's token is the host: it may do everything.
    expect(await call('/heartbeat', { agent: 'cto', busy_seconds: 0 }, HOST)).toEqual({ code: 200, body: { status: 'ok' } });
  });

  it("the shims send the agent's token as POOL_TOKEN: request-agent in a host-network container is its agent", async () => {
    const port = new URL(url).port;
    const out = await execa('docker', ['run', '--rm', '--network', 'host', '--user', '1001:1001',
      '-e', 'AGENT_ID=cfo', '-e', 'POOL_HOST=127.0.0.1', '-e', `POOL_PORT=${port}`, '-e', `POOL_TOKEN=${CFO}`,
      AGENT_IMAGE, 'request-agent', 'ceo'], { reject: false });
    expect(out.exitCode).toBe(0);
    expect(JSON.parse(out.stdout)).toEqual({ status: 'started', agent: 'ceo' });
    expect((await status()).find((r) => r.id === 'ceo')).toMatchObject({ requested_by: 'cfo' });
  });

  it('a revoked token stops working after the reload (SIGHUP), and the others keep theirs', async () => {
    const revoked = await execa(process.execPath, [BIN, 'tokens', 'revoke', 'ceo'], { env: { POOL_ENV: poolEnv }, reject: false });
    expect(revoked.exitCode).toBe(0);
    // Until the reload the daemon still knows it.
    expect((await call('/heartbeat', { agent: 'ceo' }, CEO)).code).toBe(200);
    const from = daemon.output().length;
    daemon.child.kill('SIGHUP');
    await daemon.waitFor('reloaded per-agent tokens: cfo, host', from);
    await eventually(async () => expect((await call('/heartbeat', { agent: 'ceo' }, CEO)).code).toBe(401), 5_000, 100);
    expect(await call('/heartbeat', { agent: 'cfo' }, CFO)).toEqual({ code: 200, body: { status: 'ok' } });
    expect(await readFile(join(scratch, 'tokens'), 'utf8')).not.toContain(CEO);
    expect(daemon.output()).not.toContain(CEO);
  });
});

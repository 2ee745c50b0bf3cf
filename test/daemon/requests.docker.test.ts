import { utimes, writeFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterEach, describe, expect, it } from 'vitest';
import { StateFile } from '../../src/contract/index.js';
import { requireDocker } from '../support/docker.js';
import { type TestDaemon, type TestDaemonOptions, eventually, startTestDaemon } from '../support/daemon.js';

const docker = await requireDocker();

describe.skipIf(!docker)('the pool on real Docker, through the HTTP bridge', () => {
  let pool: TestDaemon | undefined;
  const start = async (options: TestDaemonOptions = {}) => (pool = await startTestDaemon(options));
  afterEach(async () => {
    await pool?.stop();
    pool = undefined;
  });
  const request = (p: TestDaemon, agent: string, requested_by?: string) => p.http('POST', '/request', { agent, ...(requested_by && { requested_by }) });

  it('writes state.json and roster.json at start-up, with nothing running and nothing to change', async () => {
    const p = await start({ infra: [] });
    const roster = await eventually(async () => JSON.parse(await readFile(join(p.poolDir, 'roster.json'), 'utf8')) as { slots_free: number });
    expect(roster.slots_free).toBe(3);
    expect(StateFile.parse(JSON.parse(await readFile(join(p.poolDir, 'state.json'), 'utf8'))).agents).toEqual({});
  });

  it('starts an agent into a free slot and Docker runs it', async () => {
    const p = await start();
    const reply = await request(p, 'cfo', 'ceo');
    expect(reply).toMatchObject({ status: 200, body: { status: 'started', agent: 'cfo' } });
    expect(await p.runningInDocker()).toEqual(['cfo']);
    const status = (await p.http('GET', '/status')).body as { running: { id: string; requested_by: string; state: string }[] };
    expect(status.running).toMatchObject([{ id: 'cfo', requested_by: 'ceo', state: 'running' }]);
  });

  it('answers already_running for a running agent and refreshes its last activity', async () => {
    const p = await start();
    await request(p, 'cfo');
    p.advance(30);
    expect((await request(p, 'cfo')).body).toEqual({ status: 'already_running', agent: 'cfo' });
    const status = await p.client.status();
    expect(Date.parse(status.running[0]!.last_active)).toBeGreaterThanOrEqual(Math.floor(p.now() / 1000) * 1000 - 1000);
    expect(await p.runningInDocker()).toEqual(['cfo']);
  });

  it('evicts the least recently active agent when the pool is full, and says whom', async () => {
    const p = await start();
    for (const agent of ['ceo', 'cto', 'cfo']) {
      await request(p, agent);
      p.advance(100);
    }
    await p.http('POST', '/heartbeat', { agent: 'ceo' });
    p.advance(61);
    expect((await request(p, 'qa', 'ceo')).body).toEqual({ status: 'started', agent: 'qa', evicted: 'cto' });
    expect(await p.runningInDocker()).toEqual(['ceo', 'cfo', 'qa']);
    const events = (await readFile(join(p.poolDir, 'events.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    expect(events.find((e) => e.type === 'evicted')).toMatchObject({ agent: 'cto', for: 'qa', by: 'ceo' });
  });

  it('answers pool_full when every agent is inside the grace period, and changes nothing', async () => {
    const p = await start();
    for (const agent of ['ceo', 'cto', 'cfo']) await request(p, agent);
    p.advance(30);
    expect((await request(p, 'qa')).body).toEqual({ status: 'pool_full', error: 'all agents recently active, try again later' });
    expect(await p.runningInDocker()).toEqual(['ceo', 'cfo', 'cto']);
  });

  it('never evicts a pinned agent', async () => {
    const p = await start({ env: { MAX_AGENTS: '1', PINNED_AGENTS: 'ceo' } });
    await request(p, 'ceo');
    p.advance(3600);
    expect((await request(p, 'cto')).body).toMatchObject({ status: 'pool_full' });
  });

  it('releases an agent: Docker stops it and its slot is free', async () => {
    const p = await start();
    await request(p, 'cfo');
    expect((await p.http('POST', '/release', { agent: 'cfo' })).body).toEqual({ status: 'stopped', agent: 'cfo' });
    expect(await p.runningInDocker()).toEqual([]);
    expect((await p.http('POST', '/release', { agent: 'cfo' })).body).toEqual({ status: 'not_running', agent: 'cfo' });
    expect(((await p.http('GET', '/status')).body as { slots_free: number }).slots_free).toBe(3);
  });

  it('moves last_active on a heartbeat, and ignores a heartbeat of an agent that is not running', async () => {
    const p = await start();
    await request(p, 'cfo');
    const before = (await p.client.status()).running[0]!.last_active;
    p.advance(40);
    expect((await p.http('POST', '/heartbeat', { agent: 'cfo' })).body).toEqual({ status: 'ok' });
    expect((await p.http('POST', '/heartbeat', { agent: 'qa' })).body).toEqual({ status: 'ok' });
    const after = await p.client.status();
    expect(Date.parse(after.running[0]!.last_active) - Date.parse(before)).toBeGreaterThanOrEqual(39_000);
    expect(after.running.map((a) => a.id)).toEqual(['cfo']);
  });

  it('counts a touch of the activity file as activity, at the next reconcile', async () => {
    const p = await start({ env: { SYNC_INTERVAL: '0.5', MAX_AGENTS: '1' } });
    await request(p, 'cfo');
    p.advance(300);
    const touched = new Date(p.now() - 5000);
    await writeFile(join(p.poolDir, 'activity', 'cfo'), '');
    await utimes(join(p.poolDir, 'activity', 'cfo'), touched, touched);
    await eventually(async () => {
      const status = await p.client.status();
      expect(status.running[0]!.protection).toBe('grace');
    });
    expect((await request(p, 'qa')).body).toMatchObject({ status: 'pool_full' });
  });

  it('refuses infrastructure services and never stops them', async () => {
    const p = await start({ env: { MAX_AGENTS: '1', EVICT_GRACE_SECONDS: '0' } });
    expect((await request(p, 'gateway')).body).toEqual({ status: 'forbidden', agent: 'gateway', error: 'infrastructure service' });
    expect((await p.http('POST', '/release', { agent: 'litellm' })).body).toEqual({ status: 'forbidden', agent: 'litellm', error: 'infrastructure service' });
    await request(p, 'ceo');
    p.advance(5);
    await request(p, 'cto');
    const states = Object.fromEntries((await p.project.containers()).map((c) => [c.service, c.state]));
    expect(states).toMatchObject({ gateway: 'running', litellm: 'running', cto: 'running', ceo: 'exited' });
    expect((await p.http('GET', '/available')).body).toEqual({ agents: ['cto'] });
  });

  it('answers unknown_agent with the known agents for a name that is not a service', async () => {
    const p = await start();
    expect((await request(p, 'janitor')).body).toEqual({
      status: 'unknown_agent',
      agent: 'janitor',
      error: expect.stringContaining('unknown agent "janitor"'),
      known: ['ceo', 'cfo', 'cto', 'designer', 'legal', 'marketing', 'qa', 'software-engineer'],
    });
  });

  it('drops an agent stopped behind its back and adopts one started behind its back', async () => {
    const p = await start({ env: { SYNC_INTERVAL: '0.5' } });
    await request(p, 'cfo');
    await p.project.compose('stop', '-t', '0', 'cfo');
    await p.project.compose('up', '-d', 'designer');
    await eventually(async () => {
      expect((await p.http('GET', '/available')).body).toEqual({ agents: ['designer'] });
    });
    const designer = (await p.client.status()).running[0]!;
    expect(designer).toMatchObject({ id: 'designer', requested_by: 'adopted', state: 'running' });
    expect(p.logs.some((l) => /^lost cfo/.test(l))).toBe(true);
    expect(p.logs.some((l) => /^adopted designer/.test(l))).toBe(true);
  });

  it('brings an over-full pool back under the cap after adopting containers', async () => {
    const p = await start({ env: { SYNC_INTERVAL: '0.5', MAX_AGENTS: '2' } });
    await p.project.compose('up', '-d', 'ceo', 'cto', 'cfo', 'qa');
    await eventually(async () => {
      expect(await p.runningInDocker()).toHaveLength(2);
      expect((await p.client.status()).running.filter((a) => a.state === 'running')).toHaveLength(2);
    }, 20_000);
  });

  it('autostarts the listed agents in order until the pool is full', async () => {
    const p = await start({ autostart: '# boot order\ncfo\ngateway\nceo\n\njanitor\nqa\ncto\n' });
    await eventually(async () => expect(await p.runningInDocker()).toEqual(['ceo', 'cfo', 'qa']), 20_000);
    const status = await p.client.status();
    expect(status.running.map((a) => [a.id, a.requested_by])).toEqual([['cfo', 'autostart'], ['ceo', 'autostart'], ['qa', 'autostart']]);
    expect(p.logs.some((l) => l.includes('autostart: skipping cto (pool_full)'))).toBe(true);
  });

  it('reports a failed start with what Docker said, and frees the slot', async () => {
    const p = await start({ env: { MAX_AGENTS: '1' } });
    await writeFile(
      join(p.project.dir, 'compose.override.yaml'),
      JSON.stringify({ services: { cfo: { image: 'openclaw-pool/no-such-image:1' } } }),
    );
    const reply = await request(p, 'cfo');
    expect(reply.body).toEqual({ status: 'error', agent: 'cfo', error: expect.stringMatching(/no such image/i) });
    expect((await p.client.status()).slots_free).toBe(1);
    expect((await request(p, 'ceo')).body).toEqual({ status: 'started', agent: 'ceo' });
  });

  it('keeps state.json in line with Docker after every change', async () => {
    const p = await start({ env: { EVICT_GRACE_SECONDS: '0', MAX_AGENTS: '2' } });
    for (const agent of ['ceo', 'cto', 'cfo']) await request(p, agent);
    await p.http('POST', '/release', { agent: 'cfo' });
    const file = StateFile.parse(JSON.parse(await readFile(join(p.poolDir, 'state.json'), 'utf8')));
    expect(Object.keys(file.agents).sort()).toEqual(await p.runningInDocker());
    const { stdout } = await execa('docker', ['ps', '-q', '--filter', `label=com.docker.compose.project=${p.project.name}`]);
    expect(stdout.split('\n').filter(Boolean)).toHaveLength(1 + 2);
  });
});

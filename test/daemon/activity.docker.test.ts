import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import type { PoolEvent, StatusReply } from '../../src/contract/index.js';
import { type ComposeProject, agentService, createComposeProject, requireDocker } from '../support/docker.js';
import { type TestDaemon, eventually, startTestDaemon } from '../support/daemon.js';

const docker = await requireDocker();
const SHIMS = fileURLToPath(new URL('../../shims/', import.meta.url)).replace(/\/$/, '');

/**
 * A busybox agent running the stock heartbeat loop every second: it touches its activity mark
 * (which the daemon reads each reconcile) unless the roster says work mode; its POSTs go nowhere
 * (the bridge listens on the host's loopback), which the loop shrugs off, unless `environment`
 * points them at the bridge. `burn`: it also keeps a quarter of a core busy. The loop's pid is in
 * /tmp/heartbeat.pid, for a test to kill it.
 */
function beating(name: string, poolDir: string, burn = false, environment: Record<string, string> = {}): Record<string, unknown> {
  const work = burn ? 'yes > /dev/null & ' : '';
  return agentService({
    volumes: [`${SHIMS}:/opt/shims:ro`, `${poolDir}:/pool`],
    environment: { AGENT_ID: name, HEARTBEAT_INTERVAL: '1', POOL_TIMEOUT: '1', ...environment },
    ...(burn && { cpus: 0.25 }),
    command: ['sh', '-c', `${work}sh /opt/shims/heartbeat 2>/dev/null & echo $! > /tmp/heartbeat.pid; trap 'kill 0; exit 0' TERM INT; while :; do sleep 0.2; done`],
  });
}

describe.skipIf(!docker)('real idleness and idle stop on real Docker (issue 17)', () => {
  let pool: TestDaemon | undefined;
  let project: ComposeProject | undefined;
  let scratch: string | undefined;
  afterEach(async () => {
    await pool?.stop();
    await project?.remove();
    if (scratch !== undefined) await rm(scratch, { recursive: true, force: true });
    pool = project = scratch = undefined;
  });
  const request = async (agent: string) => (await pool!.http('POST', '/request', { agent })).body as Record<string, unknown>;
  const status = async () => (await pool!.http('GET', '/status')).body as StatusReply;
  const events = async () => (await readFile(join(pool!.poolDir, 'events.jsonl'), 'utf8')).trim().split('\n').map((line) => JSON.parse(line) as PoolEvent);

  /** A full pool of three beating agents, `busy` burning CPU, and a fourth agent to ask for; grace 3 s, a reconcile (and a sample) each second. */
  async function fullPool(mode: 'heartbeat' | 'work', env: Record<string, string> = {}) {
    scratch = await mkdtemp(join(tmpdir(), 'pool-activity-'));
    const poolDir = join(scratch, 'pool');
    await mkdir(poolDir, { recursive: true });
    project = await createComposeProject({
      busy: beating('busy', poolDir, true),
      idle1: beating('idle1', poolDir),
      idle2: beating('idle2', poolDir),
      newcomer: beating('newcomer', poolDir),
    });
    pool = await startTestDaemon({ project, infra: [], poolDir, env: { MAX_AGENTS: '3', EVICT_GRACE_SECONDS: '3', SYNC_INTERVAL: '1', ACTIVITY_MODE: mode, ...env } });
    // The busy one first: least recently started, it would be the victim if its work did not count.
    for (const agent of ['busy', 'idle1', 'idle2']) expect((await request(agent)).status).toBe('started');
    return pool;
  }

  it('in work mode, a request on a full pool evicts an agent that only beats, never the one that works nor one that made a request', async () => {
    await fullPool('work');
    // Until the grace period of the idle ones is over (by real time: a clock advanced between two samples would dilute the CPU measured).
    await eventually(async () => {
      const running = (await status()).running;
      expect(running.find((a) => a.id === 'busy')).toMatchObject({ active_reason: 'work' });
      expect(running.filter((a) => a.protection === null).map((a) => a.id).sort()).toEqual(['idle1', 'idle2']);
    }, 30_000, 250);
    // A request idle1 makes is its activity: idle2 is left the only one to go.
    expect((await pool!.http('POST', '/request', { agent: 'busy', requested_by: 'idle1' })).body).toMatchObject({ status: 'already_running' });
    expect((await status()).running.find((a) => a.id === 'idle1')).toMatchObject({ active_reason: 'request', protection: 'grace' });
    expect(await request('newcomer')).toEqual({ status: 'started', agent: 'newcomer', evicted: 'idle2' });
    expect(await pool!.runningInDocker()).toEqual(['busy', 'idle1', 'newcomer']);
  });

  it('in heartbeat mode, the same pool answers pool_full: every beat is activity', async () => {
    await fullPool('heartbeat');
    // Three reconciles past everyone's grace period, had the beats not counted.
    await eventually(async () => expect(await pool!.runningInDocker()).toEqual(['busy', 'idle1', 'idle2']));
    await new Promise((resolve) => setTimeout(resolve, 5000));
    expect((await status()).running.every((a) => a.protection === 'grace')).toBe(true);
    expect(await request('newcomer')).toMatchObject({ status: 'pool_full' });
    expect(await pool!.runningInDocker()).toEqual(['busy', 'idle1', 'idle2']);
  });

  it('in work mode, an agent whose heartbeat loop is killed is unresponsive after three intervals and evicted first on a full pool; a pinned one that stops beating is not', async () => {
    scratch = await mkdtemp(join(tmpdir(), 'pool-unresponsive-'));
    const poolDir = join(scratch, 'pool');
    await mkdir(poolDir, { recursive: true });
    // Host networking: the loops reach the bridge on loopback, at the port the daemon binds, which
    // compose reads from the project's .env when it starts them (written once the port is known).
    const toBridge = { POOL_HOST: '127.0.0.1', POOL_PORT: '${AGENT_POOL_PORT:-19000}' };
    project = await createComposeProject(Object.fromEntries(['alive', 'silent', 'pinned', 'newcomer'].map((name) => [name, beating(name, poolDir, false, toBridge)])));
    // A grace period nobody outlives here: only silence can make room.
    pool = await startTestDaemon({
      project,
      infra: [],
      poolDir,
      env: { MAX_AGENTS: '3', EVICT_GRACE_SECONDS: '600', SYNC_INTERVAL: '1', ACTIVITY_MODE: 'work', HEARTBEAT_INTERVAL: '1', PINNED_AGENTS: 'pinned' },
    });
    await writeFile(join(project.dir, '.env'), `AGENT_POOL_PORT=${new URL(pool.url).port}\n`);
    for (const agent of ['alive', 'silent', 'pinned']) expect((await request(agent)).status).toBe('started');
    // Each has beaten: state.json keeps the last beat of each (saved within a second).
    await eventually(async () => {
      const saved = JSON.parse(await readFile(join(poolDir, 'state.json'), 'utf8')) as { agents: Record<string, { last_beat?: string }> };
      expect(Object.entries(saved.agents).filter(([, a]) => a.last_beat !== undefined).map(([id]) => id).sort()).toEqual(['alive', 'pinned', 'silent']);
    }, 30_000, 250);
    expect((await request('newcomer')).status).toBe('pool_full');

    for (const agent of ['silent', 'pinned']) await project.compose('exec', '-T', agent, 'sh', '-c', 'kill "$(cat /tmp/heartbeat.pid)"');
    const killedAt = Date.now();
    await eventually(async () => {
      const states = Object.fromEntries((await status()).running.map((a) => [a.id, [a.state, a.protection]]));
      expect(states).toEqual({ alive: ['running', 'grace'], silent: ['unresponsive', null], pinned: ['unresponsive', 'pinned'] });
    }, 30_000, 250);
    // Three intervals of 1 s: not before, give or take the last beat's second.
    expect(Date.now() - killedAt).toBeGreaterThanOrEqual(2000);
    await eventually(async () => expect((await events()).filter((e) => e.type === 'unresponsive').map((e) => e.agent).sort()).toEqual(['pinned', 'silent']), 10_000, 250);

    expect(await request('newcomer')).toEqual({ status: 'started', agent: 'newcomer', evicted: 'silent' });
    expect(await pool!.runningInDocker()).toEqual(['alive', 'newcomer', 'pinned']);
    expect((await events()).find((e) => e.type === 'evicted')).toMatchObject({ agent: 'silent', for: 'newcomer', reason: 'unresponsive' });
    // More reconciles: one event per silence, not one per reconcile.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    expect((await events()).filter((e) => e.type === 'unresponsive')).toHaveLength(2);
  });

  it('idle stop stops an idle agent after IDLE_STOP_SECONDS, pool full or not, and leaves a CPU-busy one running', async () => {
    await fullPool('work', { MAX_AGENTS: '5', IDLE_STOP_SECONDS: '6' });
    await eventually(async () => expect(await pool!.runningInDocker()).toEqual(['busy']), 30_000, 250);
    const idle = (await events()).filter((e) => e.type === 'idle');
    expect(idle.map((e) => e.agent).sort()).toEqual(['idle1', 'idle2']);
    expect(idle[0]).toMatchObject({ by: 'idle', reason: 'idle for 6 s (IDLE_STOP_SECONDS)' });
    // Several more reconciles: the busy one keeps working and keeps running.
    await new Promise((resolve) => setTimeout(resolve, 6000));
    expect(await pool!.runningInDocker()).toEqual(['busy']);
    expect((await status()).running.map((a) => a.id)).toEqual(['busy']);
  });
});

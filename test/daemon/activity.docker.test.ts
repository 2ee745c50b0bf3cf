import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
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
 * (the bridge listens on the host's loopback), which the loop shrugs off. `burn`: it also keeps a
 * quarter of a core busy.
 */
function beating(name: string, poolDir: string, burn = false): Record<string, unknown> {
  const work = burn ? 'yes > /dev/null & ' : '';
  return agentService({
    volumes: [`${SHIMS}:/opt/shims:ro`, `${poolDir}:/pool`],
    environment: { AGENT_ID: name, HEARTBEAT_INTERVAL: '1', POOL_TIMEOUT: '1' },
    ...(burn && { cpus: 0.25 }),
    command: ['sh', '-c', `${work}sh /opt/shims/heartbeat 2>/dev/null & trap 'kill 0; exit 0' TERM INT; while :; do sleep 0.2; done`],
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

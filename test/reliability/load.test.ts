import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireDocker } from '../support/docker.js';
import { type TestDaemon, eventually, startTestDaemon } from '../support/daemon.js';

const docker = await requireDocker();

const CLIENTS = 200;
const MAX_AGENTS = 3;
const LOAD_MS = 30_000;
const AGENTS = Array.from({ length: 12 }, (_, i) => `agent-${String(i + 1).padStart(2, '0')}`);
/**
 * An agent no client names: nothing refreshes it once it runs, so after its grace it is the least
 * recently active agent and the next request that finds the pool full must evict it.
 */
const COLD = 'agent-cold';

type Op = 'request' | 'release' | 'heartbeat' | 'status';
/** Weighted mix: requests dominate, releases keep slots turning over. */
const MIX: [Op, number][] = [['request', 40], ['heartbeat', 20], ['release', 15], ['status', 25]];

function pickOp(): Op {
  let r = Math.random() * 100;
  for (const [op, weight] of MIX) {
    if ((r -= weight) < 0) return op;
  }
  return 'status';
}
const pick = <T>(list: readonly T[]): T => list[Math.floor(Math.random() * list.length)]!;

/**
 * 200 concurrent HTTP clients against a 3-slot pool of 12 agents on the real (shared) dockerd,
 * in a fresh compose project, while a watcher lists the project's running containers as fast as
 * Docker answers: the cap must hold at every observed instant, and the final state must match Docker.
 */
describe.skipIf(!docker)('load: 200 concurrent clients, 12 agents, 3 slots', () => {
  let pool: TestDaemon;

  beforeAll(async () => {
    pool = await startTestDaemon({
      agents: [...AGENTS, COLD],
      infra: ['gateway'],
      env: { MAX_AGENTS: String(MAX_AGENTS), EVICT_GRACE_SECONDS: '1', SYNC_INTERVAL: '2', STOP_TIMEOUT_SECONDS: '2' },
    });
  });
  afterAll(async () => {
    await pool?.stop({ stopAgents: false });
  });

  it('holds the cap under load, answers every client, and ends matching Docker', async () => {
    const served = { total: 0, byOp: {} as Record<string, number> };
    const outcomes: Record<string, number> = {};
    const errors: Record<string, number> = {};
    const count = (map: Record<string, number>, key: string) => (map[key] = (map[key] ?? 0) + 1);
    const deadline = Date.now() + LOAD_MS;
    const latencies: number[] = [];
    let statusMax = 0;

    // The watcher: `docker ps` for the project's running containers, back to back.
    let maxRunning = 0;
    let polls = 0;
    let overCap: string[] | undefined;
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        const r = await execa('docker', ['ps', '--filter', `label=com.docker.compose.project=${pool.project.name}`, '--filter', 'status=running',
          '--format', '{{.Label "com.docker.compose.service"}}'], { reject: false, timeout: 30_000 });
        if (r.failed) {
          count(errors, 'watcher docker ps failed');
          continue;
        }
        polls++;
        const running = r.stdout.split('\n').filter((s) => s && s !== 'gateway');
        if (running.length > maxRunning) maxRunning = running.length;
        if (running.length > MAX_AGENTS) overCap ??= running;
      }
    })();

    const client = async (id: number) => {
      while (Date.now() < deadline) {
        const op = pickOp();
        const agent = pick(AGENTS);
        const t = Date.now();
        try {
          const res = await fetch(`${pool.url}/${op}`, {
            method: op === 'status' ? 'GET' : 'POST',
            ...(op !== 'status' && { body: JSON.stringify(op === 'request' ? { agent, requested_by: `client-${id}` } : { agent }) }),
            signal: AbortSignal.timeout(60_000),
          });
          const text = await res.text();
          latencies.push(Date.now() - t);
          served.total++;
          count(served.byOp, op);
          if (res.status !== 200) {
            count(errors, `http ${res.status} on /${op}`);
            continue;
          }
          const body = JSON.parse(text) as { status?: string; running?: { state?: string }[]; evicted?: string; slots_free?: number };
          if (op === 'status') {
            if (!Array.isArray(body.running) || typeof body.slots_free !== 'number' || body.slots_free < 0) {
              count(errors, 'status malformed');
              continue;
            }
            // During an eviction the victim (stopping) hands its slot to the newcomer (starting): both are
            // listed, so the list may exceed the cap; agents starting or running never may.
            statusMax = Math.max(statusMax, body.running.length);
            const live = body.running.filter((a) => a.state === 'starting' || a.state === 'running').length;
            if (live > MAX_AGENTS) count(errors, 'status: more than MAX_AGENTS starting or running');
            continue;
          }
          count(outcomes, `${op}:${body.status}`);
          if (body.evicted !== undefined) count(outcomes, 'request:started with evicted');
          if (body.evicted === COLD) count(outcomes, `request:evicted ${COLD}`);
          if (body.status === 'error') count(errors, `reply error on /${op}`);
        } catch (error) {
          const e = error as Error & { cause?: { code?: string } };
          count(errors, `network ${e.cause?.code ?? e.name}`);
        }
      }
    };

    // 200 clients keep every agent they name inside its 1 s grace (heartbeats and requests naming a
    // running agent refresh it), so among those the pool is full and nobody is evictable. The cold
    // agent is put in the wait line: first come first served, it takes the next slot a release
    // frees; then, untouched, it outlives its grace and a client's request must evict it. Again and
    // again, while the load lasts.
    let coldStarts = 0;
    const coldLoop = (async () => {
      while (Date.now() < deadline - 3000) {
        const reply = (await (
          await fetch(`${pool.url}/request`, { method: 'POST', body: JSON.stringify({ agent: COLD, requested_by: 'cold-loop', wait_seconds: 10 }), signal: AbortSignal.timeout(60_000) })
        ).json()) as { status: string };
        if (reply.status !== 'started') continue;
        coldStarts++;
        const coldRunning = async () => ((await (await fetch(`${pool.url}/status`)).json()) as { running: { id: string }[] }).running.some((a) => a.id === COLD);
        await eventually(async () => expect(await coldRunning()).toBe(false), Math.max(0, deadline - Date.now()), 100).catch(() => {});
      }
    })();

    const started = Date.now();
    await Promise.all(Array.from({ length: CLIENTS }, (_, i) => client(i)));
    await coldLoop;
    const loadMs = Date.now() - started;
    watching = false;
    await watcher;

    // A final reconcile (reload re-reads the same config and awaits one), then state.json vs Docker.
    await pool.daemon.reload(pool.config);
    const final = await eventually(async () => {
      const state = JSON.parse(await readFile(join(pool.poolDir, 'state.json'), 'utf8')) as { agents: Record<string, { status: string }> };
      const inState = Object.keys(state.agents).sort();
      const inDocker = await pool.runningInDocker();
      expect(Object.values(state.agents).every((a) => a.status === 'running')).toBe(true);
      expect(inState).toEqual(inDocker);
      return { inState, inDocker };
    }, 15_000, 250);

    latencies.sort((a, b) => a - b);
    const p = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0;
    console.info(
      `load: ${served.total} requests served in ${(loadMs / 1000).toFixed(1)} s by ${CLIENTS} clients ${JSON.stringify(served.byOp)}; ` +
        `outcomes ${JSON.stringify(outcomes)}; errors ${JSON.stringify(errors)}; latency p50 ${p(0.5)} ms p99 ${p(0.99)} ms max ${p(1)} ms; ` +
        `max agent containers running ${maxRunning}/${MAX_AGENTS} over ${polls} docker ps polls; longest /status list ${statusMax} entries; ${COLD} started ${coldStarts} times; ` +
        `final state.json [${final.inState.join(',')}] ${final.inState.join() === final.inDocker.join() ? 'matches' : 'DIFFERS from'} Docker [${final.inDocker.join(',')}]`,
    );

    expect(overCap).toBeUndefined();
    expect(maxRunning).toBeLessThanOrEqual(MAX_AGENTS);
    expect(polls).toBeGreaterThan(10);
    expect(served.total).toBeGreaterThan(1000);
    expect(errors).toEqual({});
    expect(outcomes['request:started'] ?? 0).toBeGreaterThan(0);
    expect(coldStarts).toBeGreaterThan(0);
    expect(outcomes[`request:evicted ${COLD}`] ?? 0).toBeGreaterThan(0);
    expect(outcomes['request:pool_full'] ?? 0).toBeGreaterThan(0);
    // The gateway (infrastructure) was never touched.
    expect((await pool.project.containers()).find((c) => c.service === 'gateway')?.state).toBe('running');
  });
});

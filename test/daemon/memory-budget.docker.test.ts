import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { StatusReply } from '../../src/contract/index.js';
import { type ComposeProject, agentService, createComposeProject, holding, requireDocker, watchDockerMemory } from '../support/docker.js';
import { type TestDaemon, eventually, startTestDaemon } from '../support/daemon.js';
import { poolctl } from '../support/cli.js';
import { http } from '../support/http.js';
import { parseExposition } from '../support/metrics.js';
import { type SpawnedDaemon, daemonEnv, spawnDaemon } from '../support/spawn-daemon.js';

const docker = await requireDocker();
const MiB = 1024 ** 2;
/** What busybox's sh and its sleep loop use beside what an agent holds: 0.7–1 MiB a container here. */
const BUSYBOX_SLACK_BYTES = 2 * MiB;

describe.skipIf(!docker)('a memory budget on real Docker (issue 17)', () => {
  let pool: TestDaemon | undefined;
  let project: ComposeProject | undefined;
  let scratch: string | undefined;
  const spawned: SpawnedDaemon[] = [];
  afterEach(async () => {
    for (const d of spawned.splice(0)) await d.kill();
    await pool?.stop();
    await project?.remove();
    if (scratch !== undefined) await rm(scratch, { recursive: true, force: true });
    pool = project = scratch = undefined;
  });
  const request = async (agent: string) => (await pool!.http('POST', '/request', { agent })).body;
  const status = async () => (await pool!.http('GET', '/status')).body as StatusReply;
  const metrics = async () => parseExposition((await pool!.http('GET', '/metrics')).text);
  /** Each reconcile (every second here) samples memory: wait until these agents' peaks are what they hold. */
  const measured = (atLeastMiB: Record<string, number>) =>
    eventually(async () => {
      const running = (await status()).running;
      for (const [agent, mib] of Object.entries(atLeastMiB)) expect(running.find((a) => a.id === agent)?.memory_peak_bytes ?? 0, agent).toBeGreaterThanOrEqual(mib * MiB);
    }, 20_000, 200);

  it('evicts exactly one for a third agent of three that fit two by two, two for a big one, and refuses one that never fits', async () => {
    project = await createComposeProject({
      a: holding(60),
      b: holding(60),
      c: holding(60),
      big: holding(120, { mem_limit: '140m' }),
      huge: agentService({ mem_limit: '400m' }),
    });
    pool = await startTestDaemon({ project, infra: [], env: { MAX_AGENTS: '5', MEMORY_BUDGET: '150M', AGENT_MEMORY_DEFAULT: '64M', SYNC_INTERVAL: '1' } });
    expect(await request('a')).toEqual({ status: 'started', agent: 'a' });
    pool.advance(100);
    expect(await request('b')).toEqual({ status: 'started', agent: 'b' });
    pool.advance(100);
    await measured({ a: 58, b: 58 });
    const before = await metrics();
    for (const kind of ['now', 'peak', 'expected']) expect(before.get(`openclaw_pool_agent_memory_bytes{agent="a",kind="${kind}"}`), kind).toBeGreaterThanOrEqual(58 * MiB);

    expect(await request('c')).toEqual({ status: 'started', agent: 'c', evicted: 'a' });
    expect(await pool.runningInDocker()).toEqual(['b', 'c']);
    pool.advance(100);
    await measured({ c: 58 });

    // 140 MiB (its compose limit, never measured) beside b and c's ~61 each: both must go, b first.
    expect(await request('big')).toEqual({ status: 'started', agent: 'big', evicted: 'b', evicted_all: ['b', 'c'] });
    expect(await pool.runningInDocker()).toEqual(['big']);
    const events = (await readFile(join(pool.poolDir, 'events.jsonl'), 'utf8')).trim().split('\n').map((line) => JSON.parse(line) as { type: string; agent: string; for?: string });
    expect(events.filter((e) => e.type === 'evicted' && e.for === 'big').map((e) => e.agent).sort()).toEqual(['b', 'c']);

    expect(await request('huge')).toEqual({
      status: 'pool_full',
      reason: 'too_large',
      error: 'huge is expected to need 400 MiB, more than the whole MEMORY_BUDGET of 150 MiB: it cannot start under this budget',
    });
    expect(await pool.runningInDocker()).toEqual(['big']);
    const shown = await status();
    expect(shown.memory_budget_bytes).toBe(150 * MiB);
    expect(shown.memory_used_bytes).toBeLessThanOrEqual(150 * MiB);
    expect(shown.memory_free_bytes).toBe(150 * MiB - shown.memory_used_bytes!);
    const after = await metrics();
    expect([...after.keys()].filter((name) => name.startsWith('openclaw_pool_agent_memory_bytes{')).map((name) => /agent="([^"]+)"/.exec(name)?.[1])).toEqual(
      expect.arrayContaining(['big']),
    );
    // The evicted agents' series went with them.
    expect([...after.keys()].some((name) => /openclaw_pool_agent_memory_bytes\{agent="[abc]"/.test(name))).toBe(false);
    expect([after.get('openclaw_pool_memory_bytes{kind="budget"}'), after.get('openclaw_pool_memory_bytes{kind="used"}'), after.get('openclaw_pool_memory_bytes{kind="free"}')]).toEqual([
      150 * MiB,
      shown.memory_used_bytes,
      shown.memory_free_bytes,
    ]);
  });

  it('shows each agent’s memory now, and rewrites state.json only when a peak rises, not for every sample', async () => {
    project = await createComposeProject({ a: holding(60) });
    pool = await startTestDaemon({ project, infra: [], env: { MAX_AGENTS: '5', MEMORY_BUDGET: '150M', AGENT_MEMORY_DEFAULT: '64M', SYNC_INTERVAL: '1' } });
    await request('a');
    await measured({ a: 58 });
    const [shown] = (await status()).running;
    expect(shown?.memory_bytes).toBeGreaterThanOrEqual(58 * MiB);
    expect(shown?.memory_bytes).toBeLessThanOrEqual(shown!.memory_peak_bytes!);
    // Six reconciles, six samples: state.json follows a peak that rises (saved within a second, so
    // one rise may be written after the window), never a sample alone.
    const stateFile = join(pool.poolDir, 'state.json');
    const writes = new Set<number>();
    const peaks = new Set<number>();
    for (let i = 0; i < 7; i++) {
      writes.add((await stat(stateFile)).mtimeMs);
      peaks.add((await status()).running[0]!.memory_peak_bytes!);
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
    expect(writes.size - 1).toBeLessThanOrEqual(peaks.size);
  });

  it('never lets Docker show the agents over the budget by more than one newcomer, through evictions for memory and concurrent requests', async () => {
    const holds = { a: 40, b: 40, c: 40, d: 40, e: 40, big: 70 };
    // Three of 40 MiB fit 150 MiB, four do not; big is counted at its 90 MiB limit until measured.
    // Each keeps its memory a second into its stop, so that dockerd reads it while it is evicted.
    project = await createComposeProject(Object.fromEntries(Object.entries(holds).map(([agent, mib]) => [agent, holding(mib, agent === 'big' ? { mem_limit: '90m' } : {}, 1)])));
    pool = await startTestDaemon({ project, infra: [], env: { MAX_AGENTS: '6', MEMORY_BUDGET: '150M', AGENT_MEMORY_DEFAULT: '48M', SYNC_INTERVAL: '1', EVICT_GRACE_SECONDS: '0' } });
    const wait = (agent: string) => pool!.http('POST', '/request', { agent, wait_seconds: 30 }).then((r) => r.body);
    /** When each step that evicts ran (ms). */
    const evicting: { from: number; to: number }[] = [];
    const evictingStep = async <T>(step: () => Promise<T>): Promise<T> => {
      const from = Date.now();
      const result = await step();
      evicting.push({ from, to: Date.now() });
      return result;
    };
    const sampler = watchDockerMemory(project);
    for (const agent of ['a', 'b', 'c']) expect(await request(agent)).toMatchObject({ status: 'started' });
    await measured({ a: 38, b: 38, c: 38 });
    // Decided together: d evicts one, e the others it needs while that one is still counted.
    const started = expect.objectContaining({ status: 'started' });
    expect(await evictingStep(() => Promise.all([request('d'), request('e')]))).toEqual([started, started]);
    await measured({ d: 38, e: 38 });
    expect(await evictingStep(() => request('big'))).toMatchObject({ status: 'started', evicted: expect.any(String) });
    await measured({ big: 68 });
    // Three at once: the first two evict, the third waits in line for the stops they made.
    expect(await evictingStep(() => Promise.all(['a', 'b', 'c'].map(wait)))).toEqual([started, started, started]);
    const samples = await sampler.stop();

    expect(await pool.runningInDocker()).toEqual(['a', 'b', 'c']);
    for (const { shown } of samples) {
      const total = [...shown.values()].reduce((sum, bytes) => sum + bytes, 0);
      // Whatever starts is one of those shown: the largest of them stands for the newcomer.
      const newcomer = Math.max(0, ...[...shown.keys()].map((agent) => holds[agent as keyof typeof holds] * MiB));
      const mib = Object.fromEntries([...shown].map(([agent, bytes]) => [agent, (bytes / MiB).toFixed(1)]));
      expect(total, JSON.stringify(mib)).toBeLessThanOrEqual(150 * MiB + newcomer + BUSYBOX_SLACK_BYTES * shown.size);
    }
    // dockerd reads every container once a second, and each evicting step lasts longer: each had readings.
    for (const step of evicting) expect(samples.filter((s) => s.at >= step.from && s.at <= step.to).length, JSON.stringify(step)).toBeGreaterThanOrEqual(1);
    expect(samples.length).toBeGreaterThanOrEqual(10);
  });

  it('answers pool_full for memory and evicts nobody when the agents that could go would not free enough', async () => {
    project = await createComposeProject({ a: holding(60), b: holding(60), c: holding(60) });
    pool = await startTestDaemon({ project, infra: [], env: { MAX_AGENTS: '5', MEMORY_BUDGET: '150M', AGENT_MEMORY_DEFAULT: '64M', SYNC_INTERVAL: '1' } });
    await request('a');
    await request('b');
    await measured({ a: 58 });
    // Both inside their grace period: nobody may go.
    expect(await request('c')).toEqual({ status: 'pool_full', reason: 'memory', error: expect.stringContaining('not enough memory for c') });
    expect(await pool.runningInDocker()).toEqual(['a', 'b']);
    // poolctl says what would have to go, from the status: a (least recently active, measured at ~61 MiB) would free enough, but is in its grace period.
    const refused = await poolctl(['start', 'c', '--socket', pool.socketPath]);
    expect(refused.code).toBe(1);
    const said = refused.stderr.trim().split('\n');
    expect(said[0]).toMatch(/^poolctl: not enough memory for c/);
    expect(said[1]).toMatch(/^short of \d+(\.\d)? MiB of memory \(c is expected to need 64 MiB; \d+(\.\d)? MiB of the 150 MiB budget is free\)$/);
    expect(said[2]).toBe('what would have to go, least recently active first:');
    expect(said.slice(3).map((line) => line.trim().split(/\s{2,}/))).toEqual([
      ['AGENT', 'EXPECTED', 'KEPT BY'],
      ['a', expect.stringMatching(/ MiB$/), expect.stringMatching(/^grace, \d+s left$/)],
    ]);
    const table = (await poolctl(['status', '--socket', pool.socketPath])).stdout.trim().split('\n');
    expect(table[0]).toMatch(/^AGENT\s+STATE\s+MEMORY NOW \/ PEAK \/ EXPECTED\s+STARTED/);
    expect(table[1]).toMatch(/^a\s+running\s+\d+(\.\d)? MiB \/ \d+(\.\d)? MiB \/ \d+(\.\d)? MiB\s/);
    expect(table).toContainEqual(expect.stringMatching(/^memory: \d+(\.\d)? MiB of the 150 MiB budget used, \d+(\.\d)? MiB free$/));
  });

  it('remembers an agent’s peak across a restart of the daemon’s process and counts it before the agent runs again', async () => {
    project = await createComposeProject({ a: holding(60), b: holding(90) });
    scratch = await mkdtemp(join(tmpdir(), 'pool-memory-'));
    // Counted at the 100 MiB default, a and b would not fit together in 170 MiB; at a's ~61 MiB peak they do.
    const env = daemonEnv(project, scratch, { INFRA_SERVICES: '', MAX_AGENTS: '5', MEMORY_BUDGET: '170M', AGENT_MEMORY_DEFAULT: '100M', SYNC_INTERVAL: '1' });
    const post = async (url: string, path: string, agent: string) => (await http(url, 'POST', path, { agent })).body;
    const peakOf = async (url: string, agent: string) => ((await http(url, 'GET', '/status')).body as StatusReply).running.find((a) => a.id === agent)?.memory_peak_bytes ?? 0;
    /** A daemon process with `agent` started on it and measured at `mib` MiB or more. */
    const daemonRunning = async (agent: string, mib: number) => {
      const daemon = spawnDaemon(project!.dir, env);
      spawned.push(daemon);
      const url = await daemon.ready();
      await post(url, '/request', agent);
      await eventually(async () => expect(await peakOf(url, agent)).toBeGreaterThanOrEqual(mib * MiB), 20_000, 200);
      return { daemon, url };
    };

    const first = await daemonRunning('a', 58);
    expect(await post(first.url, '/release', 'a')).toEqual({ status: 'stopped', agent: 'a' });
    first.daemon.child.kill('SIGTERM');
    expect(await first.daemon.exited).toBe(0);

    const saved = JSON.parse(await readFile(join(scratch, 'pool', 'state.json'), 'utf8')) as { memory?: Record<string, { peaks: number[] }> };
    expect(saved.memory?.a?.peaks[0]).toBeGreaterThanOrEqual(58 * MiB);
    const { url } = await daemonRunning('b', 88);
    expect(await post(url, '/request', 'a')).toEqual({ status: 'started', agent: 'a' });
    expect((await project.containers()).filter((c) => c.state === 'running').map((c) => c.service).sort()).toEqual(['a', 'b']);
  });

  it('under memory pressure refuses new starts and stops the least recently active agent, one per SYNC_INTERVAL, saying why', async () => {
    project = await createComposeProject({ a: holding(1), b: holding(1), c: holding(1) });
    // A minimum no host's MemAvailable reaches: the guard acts after its three readings.
    const env = { MAX_AGENTS: '5', MEMORY_PRESSURE_MIN: '1T', SYNC_INTERVAL: '1', EVICT_GRACE_SECONDS: '0' };
    // Up before the daemon, which adopts them: nothing to race with the guard's first readings.
    await project.compose('up', '-d', 'a');
    await project.compose('up', '-d', 'b');
    pool = await startTestDaemon({ project, infra: [], env });
    await eventually(async () => expect(await pool!.runningInDocker()).toEqual([]), 20_000, 200);
    expect(await request('c')).toMatchObject({ status: 'pool_full', reason: 'memory_pressure' });
    const events = (await readFile(join(pool.poolDir, 'events.jsonl'), 'utf8')).trim().split('\n').map((line) => JSON.parse(line) as { type: string; agent: string; by: string; reason?: string });
    const stops = events.filter((e) => e.type === 'evicted' && e.by === 'memory_pressure');
    expect(stops.map((e) => e.agent)).toEqual(['a', 'b']);
    expect(stops[0]?.reason).toMatch(/^the host is short of memory: MemAvailable .+, below MEMORY_PRESSURE_MIN 1 TiB$/);
    expect(await (await fetch(`${pool.url}/metrics`)).text()).toMatch(/openclaw_pool_evictions_total\{cause="memory_pressure"\} 2/);
  });
});

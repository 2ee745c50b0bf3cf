import { access, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../support/daemon.js';
import { agentService, requireDocker } from '../support/docker.js';
import { createProjectOn, scratchDir } from './support.js';
import { http } from '../support/http.js';
import { type SpawnedDaemon, buildOnce, daemonEnv, spawnDaemon } from '../support/spawn-daemon.js';

const docker = await requireDocker();
const LIBFAKETIME = '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1';
const faketime = await access(LIBFAKETIME).then(
  () => true,
  () => false,
);
if (!faketime) {
  if (process.env.CI === 'true') throw new Error(`${LIBFAKETIME} is missing: scripts/provision-docker.sh installs Debian's faketime`);
  console.warn(`clock-steps: skipped, ${LIBFAKETIME} is missing (apt-get install faketime)`);
}

const HOUR_S = 3600;
const AGENTS = ['a1', 'a2', 'a3', 'a4'];

/**
 * The built daemon under libfaketime: its wall clock (Date) is stepped by rewriting an offset file,
 * as NTP steps a VPS's clock at boot, while its monotonic clock runs on. Grace periods, busy holds,
 * waits, throttles and uptime must keep their length through steps both ways (issue 14, finding 4).
 */
describe.skipIf(!docker || !faketime)('wall-clock steps under a running daemon (libfaketime)', () => {
  let scratch: string;
  let project: Awaited<ReturnType<typeof createProjectOn>>;
  let daemon: SpawnedDaemon;
  let url: string;
  /** The daemon's wall-clock offset from the real one, in seconds. */
  let offset = 0;
  const offsetFile = () => join(scratch, 'faketime');
  const step = async (seconds: number) => {
    offset += seconds;
    stepsMade++;
    await writeFile(offsetFile(), `${offset >= 0 ? '+' : ''}${offset}\n`);
  };
  const post = (path: string, body: Record<string, unknown>) => http(url, 'POST', path, body);
  let stepsMade = 0;
  /** Waits for the daemon to log the latest step, and checks it saw that step's size and direction. */
  const stepLogged = (direction: 'back' | 'forward', seconds: number) =>
    eventually(() => {
      const seen = [...daemon.output().matchAll(/the wall clock stepped (back|forward) ([\d.]+) s/g)];
      expect(seen).toHaveLength(stepsMade);
      const [, said, size] = seen.at(-1)!;
      expect(said).toBe(direction);
      expect(Math.abs(Number(size) - seconds)).toBeLessThan(2);
    }, 10_000, 100);
  /** The daemon's wall-clock reading of an ISO time it showed, against the real clock plus its offset. */
  const skewOf = (iso: unknown) => Math.abs(Date.parse(String(iso)) - (Date.now() + offset * 1000)) / 1000;

  beforeAll(async () => {
    await buildOnce();
    scratch = await scratchDir();
    await writeFile(offsetFile(), '+0\n');
    project = await createProjectOn(undefined, Object.fromEntries([...AGENTS, 'gateway'].map((name) => [name, agentService()])));
    daemon = spawnDaemon(
      project.dir,
      daemonEnv(project, scratch, {
        MAX_AGENTS: '2',
        EVICT_GRACE_SECONDS: '2',
        SYNC_INTERVAL: '3600',
        STOP_TIMEOUT_SECONDS: '2',
        LD_PRELOAD: LIBFAKETIME,
        FAKETIME_TIMESTAMP_FILE: offsetFile(),
        FAKETIME_NO_CACHE: '1',
        FAKETIME_DONT_FAKE_MONOTONIC: '1',
      }),
    );
    url = await daemon.ready();
  });
  afterAll(async () => {
    await daemon?.kill();
    if (process.env.POOL_TEST_LOGS) console.log(daemon?.output());
    await project?.remove().catch(() => {});
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  it('a step back of an hour protects nobody for that hour, uptime stays positive, and the times shown follow the new wall clock', async () => {
    expect((await post('/request', { agent: 'a1', requested_by: 'test' })).body.status).toBe('started');
    expect((await post('/request', { agent: 'a2', requested_by: 'test' })).body.status).toBe('started');
    await sleep(2500); // both past their 2 s grace
    await step(-HOUR_S);
    // Right after the step, before the daemon has noticed it, and after: the LRU agent is evictable.
    expect((await post('/request', { agent: 'a3', requested_by: 'test' })).body).toMatchObject({ status: 'started', evicted: 'a1' });
    await stepLogged('back', HOUR_S);
    const health = (await http(url, 'GET', '/health')).body;
    expect(health.uptime_seconds).toBeGreaterThanOrEqual(0);
    expect(health.uptime_seconds).toBeLessThan(600);
    const running = (await http(url, 'GET', '/status')).body.running as { id: string; last_active: string }[];
    expect(running.map((a) => a.id).sort()).toEqual(['a2', 'a3']);
    for (const agent of running) expect(skewOf(agent.last_active)).toBeLessThan(60);
    // state.json is in the new wall clock's terms too, so a restart measures the same durations.
    await eventually(async () => {
      const saved = JSON.parse(await readFile(join(scratch, 'pool', 'state.json'), 'utf8')) as { agents: Record<string, { last_active: string }> };
      for (const agent of Object.values(saved.agents)) expect(skewOf(agent.last_active)).toBeLessThan(60);
    }, 5_000, 100);
  });

  it('a wait of 4 s across a step back is answered after 4 s, not an hour later', async () => {
    for (const agent of ['a2', 'a3']) expect((await post('/heartbeat', { agent, busy_seconds: 1800 })).body.status).toBe('ok');
    const waiting = post('/request', { agent: 'a4', requested_by: 'test', wait_seconds: 4 });
    await sleep(1000);
    await step(-HOUR_S);
    const reply = (await waiting).body;
    expect(reply.status).toBe('pool_full');
    expect(reply.waited_seconds).toBeGreaterThanOrEqual(4);
    expect(reply.waited_seconds).toBeLessThan(10);
    await stepLogged('back', HOUR_S);
  });

  it('a 30-minute busy hold set a second before a step forward of an hour still holds', async () => {
    for (const agent of ['a2', 'a3']) expect((await post('/heartbeat', { agent, busy_seconds: 1800 })).body.status).toBe('ok');
    await sleep(1000);
    await step(HOUR_S);
    expect((await post('/request', { agent: 'a1', requested_by: 'test' })).body.status).toBe('pool_full');
    await stepLogged('forward', HOUR_S);
    expect((await post('/request', { agent: 'a1', requested_by: 'test' })).body.status).toBe('pool_full');
    const running = (await http(url, 'GET', '/status')).body.running as { id: string; protection: string | null }[];
    expect(running.map((a) => [a.id, a.protection]).sort()).toEqual([['a2', 'busy'], ['a3', 'busy']]);
  });

  it('a service added after a step back is found once the unknown-name throttle has passed', async () => {
    // An unknown name makes the daemon read the services now, so the next read is throttled.
    expect((await post('/request', { agent: 'zz', requested_by: 'test' })).body.status).toBe('unknown_agent');
    await step(-2 * HOUR_S);
    const compose = JSON.parse(await readFile(join(project.dir, 'compose.yaml'), 'utf8')) as { services: Record<string, unknown> };
    compose.services['a5'] = agentService();
    await writeFile(join(project.dir, 'compose.yaml'), JSON.stringify(compose, null, 2));
    await stepLogged('back', 2 * HOUR_S);
    await sleep(5500); // past the 5 s throttle, on the monotonic clock
    // Known now; the pool is full of busy agents, so it waits its turn like any other.
    expect((await post('/request', { agent: 'a5', requested_by: 'test' })).body.status).toBe('pool_full');
  });
});

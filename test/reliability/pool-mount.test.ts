import { chmod, mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TEST_IMAGE, agentService, requireDocker } from '../support/docker.js';
import { eventually } from '../support/daemon.js';
import { createProjectOn, scratchDir } from './support.js';
import { http } from '../support/http.js';
import { type SpawnedDaemon, buildOnce, daemonEnv, spawnDaemon } from '../support/spawn-daemon.js';

const docker = await requireDocker();
/** A compose service name past the old 64-character rule, as compose accepts it. */
const LONG_NAME = `s${'x'.repeat(99)}`;
/** The symlink race below is bounded by this, and wins well within it against predictable temp names. */
const RACE_MS = 20_000;

/**
 * What a container with the `/pool` mount can do to the root daemon: plant symlinks, FIFOs and
 * marks dated in the future, fill activity/, and what a config file others may write does.
 * Against the real daemon binary, the machine's dockerd, and a real root container (busybox,
 * `--network none`, only the POOL_DIR mount).
 */
describe.skipIf(!docker)('a hostile /pool mount', () => {
  let project: Awaited<ReturnType<typeof createProjectOn>>;
  let scratch: string;
  let poolDir: string;
  const daemons: SpawnedDaemon[] = [];
  const containers: string[] = [];

  beforeAll(async () => {
    await buildOnce();
    project = await createProjectOn(undefined, { a1: agentService(), a2: agentService(), a3: agentService(), [LONG_NAME]: agentService(), gateway: agentService() });
    return async () => project.remove();
  });
  afterEach(async () => {
    for (const name of containers.splice(0)) await execa('docker', ['rm', '-f', name], { reject: false });
    for (const d of daemons.splice(0)) {
      await d.kill();
      if (process.env.POOL_TEST_LOGS) console.log(d.output());
    }
    await project.compose('down', '--timeout', '0');
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  async function start(extra: Record<string, string> = {}): Promise<{ daemon: SpawnedDaemon; url: string }> {
    const daemon = spawn(extra);
    return { daemon, url: await daemon.ready() };
  }
  function spawn(extra: Record<string, string> = {}): SpawnedDaemon {
    const daemon = spawnDaemon(project.dir, daemonEnv(project, scratch, {
      POOL_DIR: poolDir,
      MAX_AGENTS: '2',
      SYNC_INTERVAL: '1',
      STOP_TIMEOUT_SECONDS: '1',
      ...extra,
    }));
    daemons.push(daemon);
    return daemon;
  }
  /** A root busybox container with nothing but POOL_DIR (or the `mount` given) at /pool, running `script`. */
  async function container(script: string, env: Record<string, string> = {}, mount = poolDir): Promise<string> {
    const name = `poolmount-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
    containers.push(name);
    const envArgs = Object.entries(env).flatMap(([k, v]) => ['-e', `${k}=${v}`]);
    await execa('docker', ['run', '-d', '--name', name, '--network', 'none', '-v', `${mount}:/pool`, ...envArgs, TEST_IMAGE, 'sh', '-c', script]);
    return name;
  }
  async function hostFile(): Promise<string> {
    await mkdir(join(scratch, 'outside'), { recursive: true });
    const victim = join(scratch, 'outside', 'victim');
    await writeFile(victim, 'a host file the daemon must never write\n');
    return victim;
  }
  const untouched = 'a host file the daemon must never write\n';

  /** A POOL_DIR of the test's own, removed after it. */
  async function fresh(): Promise<void> {
    scratch = await scratchDir();
    poolDir = join(scratch, 'pool');
  }

  it("the README's narrow mount, POOL_DIR/shared at /pool: the roster and the agent's mark work, and nothing else is there", async () => {
    await fresh();
    const { url } = await start();
    expect((await http(url, 'POST', '/request', { agent: 'a1' })).body.status).toBe('started');
    const lastActive = async () => ((await http(url, 'GET', '/status')).body.running as { id: string; last_active: string }[]).find((a) => a.id === 'a1')!.last_active;
    const before = await lastActive();
    await sleep(1100);
    const agent = await container('ls -A /pool; cat /pool/roster.json && touch /pool/activity/a1 && echo touched', {}, join(poolDir, 'shared'));
    await eventually(async () => expect((await execa('docker', ['logs', agent])).stdout).toContain('touched'), 10_000, 100);
    const seen = (await execa('docker', ['logs', agent])).stdout.split('\n');
    expect(seen.slice(0, 2).sort()).toEqual(['activity', 'roster.json']);
    expect(JSON.parse(seen[2]!)).toMatchObject({ slots_total: 2, running: [expect.objectContaining({ id: 'a1' })] });
    await eventually(async () => expect(Date.parse(await lastActive())).toBeGreaterThan(Date.parse(before)), 10_000, 200);
  });

  it(`a container planting symlinks at the temp names it sees never makes the daemon write outside POOL_DIR (race bounded at ${RACE_MS / 1000} s)`, async () => {
    await fresh();
    const victim = await hostFile();
    const { daemon, url } = await start();
    expect((await http(url, 'POST', '/request', { agent: 'a1' })).body.status).toBe('started');
    // Watches /pool for a temp file, reads the writer's pid and sequence from its name, and plants
    // symlinks to the host file at the next 300 names of both writers.
    await container(
      `while :; do
        for f in /pool/*.tmp-*; do
          name=\${f#/pool/}; suffix=\${name#*.tmp-}; pid=\${suffix%-*}; n=\${suffix##*-}
          case "$pid$n" in ''|*[!0-9]*) continue;; esac
          [ "$pid-$n" = "$seen" ] && continue
          seen="$pid-$n"; echo "saw $name"
          i=1; while [ $i -le 300 ]; do
            for b in state.json roster.json; do ln -s "$TARGET" "/pool/$b.tmp-$pid-$((n + i))" 2>/dev/null; done
            i=$((i + 1))
          done
        done
      done`,
      { TARGET: victim },
    );
    // Heartbeats keep the state dirty: a state.json and a roster.json write every second.
    const startedAt = Date.now();
    let beats = 0;
    let won = false;
    while (Date.now() - startedAt < RACE_MS) {
      await http(url, 'POST', '/heartbeat', { agent: 'a1' });
      beats++;
      if ((await readFile(victim, 'utf8')) !== untouched) {
        won = true;
        break;
      }
      await sleep(50);
    }
    console.info(`symlink race: ${won ? `won after ${beats} heartbeats, ${Date.now() - startedAt} ms` : `never won in ${RACE_MS} ms (${beats} heartbeats)`}`);
    expect(await readFile(victim, 'utf8')).toBe(untouched);
    // The daemon still saves its state, as a regular file, and answers.
    const saved = JSON.parse(await readFile(join(poolDir, 'state.json'), 'utf8')) as { agents: Record<string, unknown> };
    expect(Object.keys(saved.agents)).toEqual(['a1']);
    expect((await http(url, 'GET', '/health')).body.status).toBe('ok');
    expect(daemon.child.exitCode).toBeNull();
  });

  it('events.jsonl replaced by a symlink to a host file: nothing is appended through it; it is moved aside and logged', async () => {
    await fresh();
    const victim = await hostFile();
    const { daemon, url } = await start();
    expect((await http(url, 'POST', '/request', { agent: 'a1' })).body.status).toBe('started');
    const planter = await container('ln -sf "$TARGET" /pool/events.jsonl && echo planted', { TARGET: victim });
    await eventually(async () => expect((await execa('docker', ['logs', planter])).stdout).toContain('planted'), 10_000, 100);
    expect((await http(url, 'POST', '/request', { agent: 'a2' })).body.status).toBe('started');
    // The event is logged to stdout when it is appended (or refused).
    await eventually(() => expect(daemon.output()).toMatch(/started a2/), 10_000, 100);
    await sleep(500);
    expect(await readFile(victim, 'utf8')).toBe(untouched);
    expect(daemon.output()).toMatch(/events\.jsonl is a symlink, not a regular file; moved it to .*events\.jsonl\.not-a-file-\d{8}T\d{6}Z/);
    // The next event starts a new, regular log.
    expect((await http(url, 'POST', '/release', { agent: 'a2' })).body.status).toBe('stopped');
    await eventually(async () => expect(await readFile(join(poolDir, 'events.jsonl'), 'utf8')).toMatch(/"type":"released","agent":"a2"/), 10_000, 100);
    expect(await readFile(victim, 'utf8')).toBe(untouched);
  });

  it('a FIFO at events.jsonl while running blocks nothing: events, /events and SIGTERM all still work', async () => {
    await fresh();
    const { daemon, url } = await start();
    expect((await http(url, 'POST', '/request', { agent: 'a1' })).body.status).toBe('started');
    await rm(join(poolDir, 'events.jsonl'), { force: true });
    await execa('mkfifo', [join(poolDir, 'events.jsonl')]);
    expect((await http(url, 'POST', '/request', { agent: 'a2' }, { timeoutMs: 10_000 })).body.status).toBe('started');
    expect((await http(url, 'POST', '/release', { agent: 'a2' }, { timeoutMs: 10_000 })).body.status).toBe('stopped');
    const events = await http(url, 'GET', '/events', undefined, { timeoutMs: 5_000 }).catch((error: Error) => ({ status: 0, body: { error: error.message } }));
    expect(events.status).toBe(200);
    expect(JSON.stringify(events.body)).toContain('"released"');
    expect(daemon.output()).toMatch(/events\.jsonl is a FIFO or a socket, not a regular file; moved it to/);
    daemon.child.kill('SIGTERM');
    expect(await Promise.race([daemon.exited, sleep(15_000).then(() => 'still running')])).toBe(0);
  });

  it('a FIFO at state.json does not hang start-up: it is moved aside, logged, and the state rebuilt from Docker', async () => {
    await fresh();
    await project.compose('up', '-d', 'a1');
    await execa('mkfifo', [join(poolDir, 'state.json')]);
    const daemon = spawn();
    const url = await daemon.ready(20_000);
    expect(daemon.output()).toMatch(/state\.json was unreadable \(a FIFO, not a regular file\); moved to .*state\.json\.not-a-file-\d{8}T\d{6}Z; rebuilding the state from Docker/);
    expect(((await http(url, 'GET', '/status')).body.running as { id: string }[]).map((a) => a.id)).toEqual(['a1']);
    expect((await readdir(poolDir)).filter((n) => n.startsWith('state.json.not-a-file-'))).toHaveLength(1);
  });

  it('a mark touched to 2030 by a container counts as one touch, not a protection until 2030', async () => {
    await fresh();
    const { url } = await start({ EVICT_GRACE_SECONDS: '2' });
    expect((await http(url, 'POST', '/request', { agent: 'a1' })).body.status).toBe('started');
    expect((await http(url, 'POST', '/request', { agent: 'a2' })).body.status).toBe('started');
    await sleep(1500); // a reconcile reads both marks as absent
    await container('touch -d "2030-01-01 00:00:00" /pool/activity/a1');
    await sleep(1500); // a reconcile reads a1's touch
    expect((await http(url, 'POST', '/heartbeat', { agent: 'a2' })).body.status).toBe('ok');
    const running = (await http(url, 'GET', '/status')).body.running as { id: string; last_active: string }[];
    for (const agent of running) expect(Date.parse(agent.last_active)).toBeLessThanOrEqual(Date.now() + 1000);
    await sleep(2500); // both out of their grace; a1's touch is the older activity
    expect((await http(url, 'POST', '/request', { agent: 'a3' })).body).toEqual({ status: 'started', agent: 'a3', evicted: 'a1' });
  });

  it("50,000 files in activity/ cost nothing: the daemon reads only the pool's agents' marks", async () => {
    await fresh();
    await mkdir(join(poolDir, 'activity'), { recursive: true });
    for (let n = 0; n < 50_000; n += 1000) {
      await Promise.all(Array.from({ length: 1000 }, (_, i) => writeFile(join(poolDir, 'activity', `planted-${n + i}`), '')));
    }
    const { daemon, url } = await start();
    expect((await http(url, 'POST', '/request', { agent: 'a1' })).body.status).toBe('started');
    await sleep(2000);
    const ticks = async () => {
      const fields = (await readFile(`/proc/${daemon.child.pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
      return Number(fields[11]) + Number(fields[12]); // utime + stime, in clock ticks (100 a second)
    };
    const before = await ticks();
    await sleep(8000);
    const cpu = (await ticks()) - before;
    const rssKb = Number(/VmRSS:\s+(\d+)/.exec(await readFile(`/proc/${daemon.child.pid}/status`, 'utf8'))![1]);
    console.info(`50,000 planted marks, SYNC_INTERVAL=1: ${(cpu / 8).toFixed(1)}% of a core over 8 s, RSS ${Math.round(rssKb / 1024)} MB`);
    expect(cpu / 8).toBeLessThan(10);
    expect(rssKb).toBeLessThan(200 * 1024);
  });

  it('a service name past 64 characters is kept across a restart, and one invalid record costs the others nothing', async () => {
    await fresh();
    await project.compose('up', '-d', LONG_NAME);
    const first = await start();
    expect((await http(first.url, 'POST', '/request', { agent: 'a1', requested_by: 'ceo' })).body.status).toBe('started');
    expect((await http(first.url, 'POST', '/heartbeat', { agent: 'a1', busy_seconds: 600 })).body.status).toBe('ok');
    await eventually(async () => {
      const saved = JSON.parse(await readFile(join(poolDir, 'state.json'), 'utf8')) as { agents: Record<string, { busy_until?: string }> };
      expect(Object.keys(saved.agents).sort()).toEqual(['a1', LONG_NAME]);
      expect(saved.agents.a1?.busy_until).toBeDefined();
    }, 10_000, 100);
    await first.daemon.kill();
    // A hand edit, or another tool, leaves a record that is not one.
    const saved = JSON.parse(await readFile(join(poolDir, 'state.json'), 'utf8')) as { agents: Record<string, unknown> };
    saved.agents.a2 = { status: 'running', started_at: 'noon' };
    await writeFile(join(poolDir, 'state.json'), JSON.stringify(saved));

    const second = await start();
    expect(second.daemon.output()).not.toContain('state.json was unreadable');
    expect(second.daemon.output()).toMatch(/state\.json: ignored .*a2 \(started_at: not an ISO 8601 time\)/);
    const status = (await http(second.url, 'GET', '/status')).body.running as { id: string; requested_by: string; busy_until?: string }[];
    const a1 = status.find((a) => a.id === 'a1');
    expect(a1?.requested_by).toBe('ceo');
    expect(a1?.busy_until).toBeDefined();
    expect(status.find((a) => a.id === LONG_NAME)?.requested_by).toBe('adopted');
  });

  it('refuses a pool.env that its group or others may write (one kept in POOL_DIR), naming it: exit 78', async () => {
    await fresh();
    const file = join(poolDir, 'pool.env');
    await writeFile(file, 'MAX_AGENTS=2\n');
    await chmod(file, 0o666);
    const daemon = spawn({ POOL_ENV: file });
    expect(await Promise.race([daemon.exited, sleep(20_000).then(() => 'still running')])).toBe(78);
    expect(daemon.output()).toContain(`${file}: writable by its group and others (mode 0666)`);
  });
});

// Issue 16: the daemon's footprint idle (resident memory of it and its descendants, the processes
// it spawns, its CPU time) against an idle bare `node` in the same run, and the compose driver's
// reads in process: the listing a reconcile makes at 50 agents (Engine API, and the docker CLI
// path before it) and the memory of all running agents at 10. Issue 17: what the memory budget's
// stats sampling adds to each reconcile, in wall time and in the daemon's and dockerd's CPU.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { get as httpGet } from 'node:http';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import type { AgentRecord, PoolState } from '../src/core/index.js';
import { agentService, createComposeProject } from '../test/support/docker.js';
import { ROOT, type Row, type SpawnedDaemon, median, rssMb, runStandalone, spawnComposeDaemon, stopChild, treeCpuSeconds, treeRssMb, until } from './lib.js';

const RUNNING = ['ceo', 'cto', 'cfo'];
/** The idle window: spawns and CPU time are counted over it, and RSS is read at its end. */
const IDLE_SECONDS = 60;
const SETTLE_MS = 10_000;
const SYNC_INTERVAL = '5';
const LISTED = 50;
const MEASURED_MEMORY = 10;
/** How often, at most, dockerd's stats collector samples (one second, as measured on 20.10; see the README). */
const STATS_INTERVAL_MS = 1000;
const LIST_ROUNDS = 50;
const CLI_LIST_ROUNDS = 15;
/** Agents running while the sampling's cost is measured. */
const SAMPLED = [3, 6];
/** Past dockerd's one-second stats sampling, as SYNC_INTERVAL's default (15 s) is: a reconcile's stats calls find the engine as in production. */
const SAMPLING_SYNC_INTERVAL = 2;
const SAMPLING_WINDOW_S = 30;
/** Windows off, on, off, on, ...: load from elsewhere falls on both alike. */
const SAMPLING_PAIRS = 2;
/** Large enough that nobody is evicted: the budget is only there to make each reconcile sample. */
const SAMPLING_BUDGET = '64G';

/** The built modules, loaded at run time (not bundled into the bench): what is measured is dist/. */
const fromDist = <T>(path: string): Promise<T> => import(pathToFileURL(join(ROOT, 'dist', path)).href) as Promise<T>;
type Drivers = typeof import('../src/drivers/index.js');
type Contract = typeof import('../src/contract/index.js');
type Core = typeof import('../src/core/index.js');

/** The floor: an idle bare `node`, its own process. */
function spawnBareNode(): ChildProcess {
  return spawn(process.execPath, ['-e', 'setInterval(() => {}, 1e9)'], { stdio: 'ignore' });
}

/**
 * Records every process created below `pid` (its threads as they are, and any new process's own
 * children) with `strace -f`, attached to the running daemon. Process creation is a clone, clone3,
 * fork or vfork without CLONE_THREAD; new threads (libuv's pool, a Go CLI's) are not processes.
 */
async function traceSpawns(pid: number): Promise<{ stop: () => Promise<{ processes: number; commands: string[] }> }> {
  const dir = await mkdtemp(join(tmpdir(), 'pbtrace-'));
  const out = join(dir, 'strace.txt');
  const tracer = spawn('strace', ['-f', '-s', '80', '-e', 'trace=execve,clone,clone3,fork,vfork', '-o', out, '-p', String(pid)], { stdio: ['ignore', 'ignore', 'pipe'] });
  await new Promise<void>((res, rej) => {
    let said = '';
    tracer.stderr!.on('data', (d: Buffer) => {
      said += d.toString();
      if (/Process \d+ attached/.test(said)) res();
    });
    tracer.once('error', (error) => rej(new Error(`strace: ${error.message} (scripts/provision-docker.sh installs it)`)));
    tracer.once('exit', (code) => rej(new Error(`strace exited (${code}) before it attached: ${said}`)));
  });
  return {
    async stop() {
      // SIGINT detaches and flushes its output file.
      await stopChild(tracer, 'SIGINT');
      const lines = (await readFile(out, 'utf8')).split('\n');
      await rm(dir, { recursive: true, force: true });
      const processes = lines.filter((l) => /^\d+\s+(clone3?|v?fork)\(/.test(l) && !l.includes('CLONE_THREAD')).length;
      const commands = lines.flatMap((l) => /^\d+\s+execve\("[^"]*", \[(.*?)\]/.exec(l)?.[1] ?? []);
      return { processes, commands };
    },
  };
}

async function idleFootprint(): Promise<Row[]> {
  // Spawned beside the daemon, and read at the same moment at the end of the window: the same settle time.
  const bare = spawnBareNode();
  let d;
  try {
    d = await spawnComposeDaemon(RUNNING, { SYNC_INTERVAL });
    // Let the start settle before the window opens: the first 10 s after the agents run cost a few times the steady CPU.
    await sleep(SETTLE_MS);
    step(`idle window of ${IDLE_SECONDS} s`);
    const trace = await traceSpawns(d.pid);
    const cpu0 = [await treeCpuSeconds(d.pid), await treeCpuSeconds(bare.pid!)];
    const t0 = process.hrtime.bigint();
    await sleep(IDLE_SECONDS * 1000);
    const cpu1 = [await treeCpuSeconds(d.pid), await treeCpuSeconds(bare.pid!)];
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const spawned = await trace.stop();
    const tree = await treeRssMb(d.pid);
    const bareRss = await rssMb(bare.pid!);
    if (spawned.commands.length > 0) console.error(`bench footprint: the idle daemon ran ${spawned.commands.join('; ')}`);
    const percent = (i: number) => ((cpu1[i]! - cpu0[i]!) / seconds) * 100;
    return [
      { id: '16.1', what: `daemon + descendants RSS idle, ${RUNNING.length} agents (${tree.processes - 1} descendants)`, figure: tree.total, floor: bareRss, unit: 'MB', target: 'idle bare node + 21 MB', limit: bareRss + 21, kind: 'max' },
      { id: '16.2', what: 'daemon RSS idle', figure: tree.own, floor: bareRss, unit: 'MB', target: 'idle bare node + 16 MB', limit: bareRss + 16, kind: 'max' },
      { id: '16.3', what: `processes spawned by the daemon in ${IDLE_SECONDS} s idle (SYNC_INTERVAL=${SYNC_INTERVAL}, strace -f)`, figure: spawned.processes, unit: 'procs', target: '0', limit: 0, kind: 'max' },
      { id: '16.4', what: `daemon + children CPU time over those ${IDLE_SECONDS} s`, figure: percent(0), floor: percent(1), unit: '% core', target: '≤ 0.2 % of one core', limit: 0.2, kind: 'max' },
    ];
  } finally {
    await d?.stop();
    await stopChild(bare);
  }
}

/** The docker CLI's absolute path: as DOCKER_BIN, it makes the driver read through the CLI (the path before the Engine API). */
function dockerOnPath(): string {
  const found = (process.env.PATH ?? '').split(delimiter).map((dir) => join(dir, 'docker')).find((p) => existsSync(p));
  if (found === undefined) throw new Error('docker is not on PATH');
  return found;
}

async function timedMs(fn: () => Promise<unknown>): Promise<number> {
  const t = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t) / 1e6;
}

/**
 * Medians of `rounds` runs of each of `fns`, interleaved (so that load from elsewhere falls on all
 * alike) after one warm-up each, `pauseMs` before each round; stops early, at 3 rounds or more,
 * once `budgetMs` is spent.
 */
async function interleavedMedians(rounds: number, fns: readonly (() => Promise<unknown>)[], opts: { budgetMs?: number; pauseMs?: number } = {}): Promise<{ ms: number[]; rounds: number }> {
  for (const fn of fns) await fn();
  const times = fns.map(() => [] as number[]);
  const deadline = Date.now() + (opts.budgetMs ?? Infinity);
  for (let i = 0; i < rounds && (i < 3 || Date.now() < deadline); i++) {
    if (opts.pauseMs) await sleep(opts.pauseMs);
    for (const [j, fn] of fns.entries()) times[j]!.push(await timedMs(fn));
  }
  return { ms: times.map(median), rounds: times[0]!.length };
}

/** GET `path` from the engine as plain node:http, a connection per call as the driver makes, and its JSON parsed. */
function plainGet(path: string): Promise<unknown> {
  const host = process.env.DOCKER_HOST ?? '';
  const socketPath = host.startsWith('unix://') ? host.slice('unix://'.length) : '/var/run/docker.sock';
  return new Promise((res, rej) => {
    const req = httpGet({ socketPath, path, agent: false, headers: { Host: 'docker' } }, (r) => {
      const chunks: Buffer[] = [];
      r.on('data', (c: Buffer) => chunks.push(c));
      r.on('end', () => res(JSON.parse(Buffer.concat(chunks).toString('utf8'))));
    });
    req.once('error', rej);
  });
}

/** The listing's floor: the same label-filtered GET /containers/json. */
const plainListing = (project: string) => () =>
  plainGet(`/v1.41/containers/json?all=1&filters=${encodeURIComponent(JSON.stringify({ label: [`com.docker.compose.project=${project}`] }))}`);

/** The memory reading's floor: the same one-shot stats GETs, all at once, for the project's running containers. */
const plainStats = (project: string) => async () => {
  const running = (await plainListing(project)()) as { Id: string; State: string }[];
  await Promise.all(running.filter((c) => c.State === 'running').map((c) => plainGet(`/v1.41/containers/${c.Id}/stats?stream=0&one-shot=1`)));
};

/** Says on stderr what the bench does now, so that a stall or a failure is placed. */
const started = Date.now();
const step = (what: string) => console.error(`bench footprint: ${what} (${((Date.now() - started) / 1000).toFixed(0)} s)`);

async function driverReads(): Promise<Row[]> {
  const [{ openDriver }, { loadConfig }, { reconcile, rulesFromConfig }] = await Promise.all([
    fromDist<Drivers>('src/drivers/index.js'),
    fromDist<Contract>('src/contract/index.js'),
    fromDist<Core>('src/core/index.js'),
  ]);
  const services = Array.from({ length: LISTED }, (_, i) => `agent-${String(i).padStart(2, '0')}`);
  // busybox `sleep` as PID 1: no work of its own while measured; `down --timeout 0` kills it.
  const project = await createComposeProject(Object.fromEntries(services.map((n) => [n, agentService({ command: ['sleep', '3600'] })])));
  try {
    const open = async (env: Record<string, string> = {}) => {
      const config = loadConfig({ env: { POOL_DRIVER: 'compose', COMPOSE_DIR: project.dir, COMPOSE_PROJECT: project.name, MAX_AGENTS: String(LISTED), ...env }, cwd: project.dir });
      return { config, opened: await openDriver(config) };
    };
    const api = await open();
    const cli = await open({ DOCKER_BIN: dockerOnPath() });
    if (api.opened.notice !== undefined || cli.opened.notice === undefined) throw new Error(`expected the Engine API and the CLI paths: ${api.opened.notice} / ${cli.opened.notice}`);

    step(`memoryUsage with ${MEASURED_MEMORY} running`);
    await project.compose('up', '--detach', ...services.slice(0, MEASURED_MEMORY));
    const measureAll = (opened: typeof api.opened) => async () => {
      const measured = (await opened.memoryUsage!()).size;
      if (measured !== MEASURED_MEMORY) throw new Error(`memoryUsage measured ${measured} agents, expected ${MEASURED_MEMORY}`);
    };
    // dockerd samples stats at most once a second (see the README): calls are spaced past that, as
    // a lone call (`poolctl doctor`'s) finds the engine.
    const memory = await interleavedMedians(5, [measureAll(api.opened), plainStats(project.name)], { pauseMs: STATS_INTERVAL_MS + 500 });
    const memoryViaCli = await interleavedMedians(3, [measureAll(cli.opened)]);

    step(`listings with ${LISTED} running`);
    // The reconcile's listing and decisions, LISTED running and all known: nothing to change.
    await project.compose('up', '--detach', ...services.slice(MEASURED_MEMORY));
    const now = Date.now();
    const state: PoolState = { agents: new Map(services.map((n): [string, AgentRecord] => [n, { status: 'running', started: now, lastActive: now, requestedBy: 'bench' }])) };
    const rules = rulesFromConfig(api.config);
    const reconcileWith = (driver: typeof api.opened.driver) => async () => {
      const observed = await driver.list();
      const result = reconcile(state, observed, Date.now(), rules);
      const changes = result.lost.length + result.adopted.length + result.stop.length;
      if (observed.filter((o) => o.running).length !== LISTED || changes > 0) throw new Error(`listing shows ${observed.length} agents, ${changes} changes`);
    };
    const viaApi = await interleavedMedians(LIST_ROUNDS, [reconcileWith(api.opened.driver), plainListing(project.name)]);
    const viaCli = await interleavedMedians(CLI_LIST_ROUNDS, [reconcileWith(cli.opened.driver)]);
    return [
      { id: '16.5', what: `reconcile (listing + decisions), ${LISTED} running, Engine API (median of ${viaApi.rounds}; floor: the GET by plain node:http)`, figure: viaApi.ms[0]!, floor: viaApi.ms[1]!, unit: 'ms', target: 'median ≤ 3 ms, or ≤ floor + 1 ms where dockerd alone takes longer', limit: Math.max(3, viaApi.ms[1]! + 1), kind: 'max' },
      { id: '16.5', what: `the same through the docker CLI (DOCKER_BIN; before) (median of ${viaCli.rounds})`, figure: viaCli.ms[0]!, unit: 'ms', target: '', kind: 'info' },
      { id: '16.6', what: `memory of all running agents, ${MEASURED_MEMORY} running, Engine API (median of ${memory.rounds}, ${(STATS_INTERVAL_MS + 500) / 1000} s apart; floor: the same one-shot GETs by plain node:http)`, figure: memory.ms[0]!, floor: memory.ms[1]!, unit: 'ms', target: '≤ 20 ms, or ≤ floor + 20 ms where dockerd holds one-shot stats to its 1 s sampling', limit: Math.max(20, memory.ms[1]! + 20), kind: 'max' },
      { id: '16.6', what: `the same through the docker CLI (docker stats; before) (median of ${memoryViaCli.rounds})`, figure: memoryViaCli.ms[0]!, unit: 'ms', target: '', kind: 'info' },
    ];
  } finally {
    await project.remove();
  }
}

/** dockerd's pid, when it runs on this host and this user may read its /proc entry; undefined otherwise (a remote or rootless engine). */
async function dockerdPid(): Promise<number | undefined> {
  const pidFile = await readFile('/var/run/docker.pid', 'utf8').catch(() => '');
  const pid = Number(pidFile.trim());
  if (!(pid > 0)) return undefined;
  const comm = await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '');
  return comm.trim() === 'dockerd' ? pid : undefined;
}

/** The daemon's own figures of its reconciles and of the Docker reads they make, from /metrics. */
async function reconcileFigures(d: SpawnedDaemon): Promise<{ reconciles: number; readSeconds: number }> {
  const text = await new Promise<string>((res, rej) => {
    httpGet(`${d.url}/metrics`, (r) => {
      const chunks: Buffer[] = [];
      r.on('data', (c: Buffer) => chunks.push(c));
      r.on('end', () => res(Buffer.concat(chunks).toString('utf8')));
    }).once('error', rej);
  });
  const value = (series: string) => Number(text.split('\n').find((line) => line.startsWith(`${series} `))?.split(' ')[1] ?? 0);
  const readSeconds = ['list', 'usage'].reduce((sum, op) => sum + value(`openclaw_pool_docker_operation_seconds_sum{operation="${op}",outcome="ok"}`), 0);
  return { reconciles: value('openclaw_pool_reconciles_total{outcome="ok"}'), readSeconds };
}

/** Sets MEMORY_BUDGET in the daemon's ./pool.env (or removes it) and reloads it (SIGHUP); resolves once its status shows the change. */
async function setBudget(d: SpawnedDaemon, budget: string | undefined): Promise<void> {
  await writeFile(join(d.scratch, 'pool.env'), budget === undefined ? '' : `MEMORY_BUDGET=${budget}\n`, { mode: 0o600 });
  d.child.kill('SIGHUP');
  await until(async () => ((await d.http('GET', '/status')).json.memory_budget_bytes !== undefined) === (budget !== undefined), 20_000, `MEMORY_BUDGET ${budget ?? 'unset'} applied`);
}

/**
 * With `n` agents running, the memory budget off and on (windows alternated in one daemon, the
 * budget set by a reload): the wall time of a reconcile's Docker reads (the daemon's own histogram:
 * the listing, and with the budget the stats), and the CPU time of the daemon and of dockerd
 * (/proc/<pid>/stat over the windows) as a share of a core and as what the sampling adds to each
 * reconcile.
 */
async function samplingCost(n: number, dockerd: number | undefined): Promise<Row[]> {
  const running = Array.from({ length: n }, (_, i) => `agent-${i}`);
  const d = await spawnComposeDaemon(running, { SYNC_INTERVAL: String(SAMPLING_SYNC_INTERVAL) });
  try {
    const totals = { off: { reconciles: 0, readSeconds: 0, cpu: 0, dockerd: 0, seconds: 0 }, on: { reconciles: 0, readSeconds: 0, cpu: 0, dockerd: 0, seconds: 0 } };
    for (let pair = 0; pair < SAMPLING_PAIRS; pair++) {
      for (const mode of ['off', 'on'] as const) {
        await setBudget(d, mode === 'on' ? SAMPLING_BUDGET : undefined);
        // The reload's own reconcile (and its compose config) stays out of the window.
        await sleep(SAMPLING_SYNC_INTERVAL * 1000 + 1000);
        step(`${n} running, memory budget ${mode}: a ${SAMPLING_WINDOW_S} s window`);
        const reading = async () => ({ figures: await reconcileFigures(d), cpu: await treeCpuSeconds(d.pid), dockerd: dockerd === undefined ? 0 : await treeCpuSeconds(dockerd), at: process.hrtime.bigint() });
        const before = await reading();
        await sleep(SAMPLING_WINDOW_S * 1000);
        const after = await reading();
        const t = totals[mode];
        t.reconciles += after.figures.reconciles - before.figures.reconciles;
        t.readSeconds += after.figures.readSeconds - before.figures.readSeconds;
        t.cpu += after.cpu - before.cpu;
        t.dockerd += after.dockerd - before.dockerd;
        t.seconds += Number(after.at - before.at) / 1e9;
      }
    }
    const { on, off } = totals;
    const windows = `${SAMPLING_PAIRS} × ${SAMPLING_WINDOW_S} s each, ${on.reconciles} and ${off.reconciles} reconciles; floor: budget off`;
    const percent = (t: typeof on, key: 'cpu' | 'dockerd') => (t[key] / t.seconds) * 100;
    // A reconcile that samples lasts longer, so it also holds more idle time (timers): only what is above the budget-off rate over the same time is the sampling's.
    const addedMs = (key: 'cpu' | 'dockerd') => ((on[key] - (off[key] / off.seconds) * on.seconds) / on.reconciles) * 1000;
    const cpuRows = (who: string, key: 'cpu' | 'dockerd'): Row[] => [
      { id: '16.8', what: `${who} CPU, ${n} running, memory budget on`, figure: percent(on, key), floor: percent(off, key), unit: '% core', target: '', kind: 'info' },
      { id: '16.8', what: `${who} CPU time the sampling adds per reconcile (one per SYNC_INTERVAL), ${n} running`, figure: addedMs(key), unit: 'ms', target: '', kind: 'info' },
    ];
    return [
      { id: '16.7', what: `reconcile's Docker reads, ${n} running, memory budget on (listing + one-shot stats; SYNC_INTERVAL=${SAMPLING_SYNC_INTERVAL}, ${windows})`, figure: (on.readSeconds / on.reconciles) * 1000, floor: (off.readSeconds / off.reconciles) * 1000, unit: 'ms', target: '', kind: 'info' },
      ...cpuRows('daemon', 'cpu'),
      ...(dockerd === undefined ? [] : cpuRows("dockerd (all of its work in the windows, others' too)", 'dockerd')),
    ];
  } finally {
    await d.stop();
  }
}

async function samplingCosts(): Promise<Row[]> {
  const dockerd = await dockerdPid();
  if (dockerd === undefined) console.error('bench footprint: dockerd is not a process here: its CPU time is not measured');
  const rows: Row[] = [];
  for (const n of SAMPLED) rows.push(...(await samplingCost(n, dockerd)));
  return rows;
}

export async function main(): Promise<Row[]> {
  // BENCH_FOOTPRINT=sampling: only issue 17's rows.
  if (process.env.BENCH_FOOTPRINT === 'sampling') return samplingCosts();
  return [...(await idleFootprint()), ...(await driverReads()), ...(await samplingCosts())];
}

await runStandalone('footprint', 'Footprint idle and reads in process (issue 16)', main);

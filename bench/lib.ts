import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import autocannon from 'autocannon';
import { agentService, createComposeProject } from '../test/support/docker.js';

export const ROOT = resolve(import.meta.dirname ?? '.', '..');
export const DAEMON_MAIN = join(ROOT, 'dist/openclaw-pool.mjs');
export const POOLCTL = join(ROOT, 'dist/poolctl.mjs');

/** One line of a benchmark table: a figure, the floor it is measured against, and the target. */
export interface Row {
  readonly id: string;
  readonly what: string;
  readonly figure: number;
  readonly floor?: number;
  readonly unit: string;
  /** The target, as text (e.g. "≥ 0.7 × floor"). */
  readonly target: string;
  /** The figure's limit, in the figure's unit. */
  readonly limit?: number;
  /** 'min': figure must be ≥ limit; 'max': figure must be ≤ limit; 'info': no target. */
  readonly kind: 'min' | 'max' | 'info';
}

/** bench:check tolerates misses by up to this fraction of the limit (noise on a 2-core machine). */
export const CHECK_MARGIN = 0.1;

export function verdict(row: Row, margin = 0): 'pass' | 'miss' | '' {
  if (row.kind === 'info' || row.limit === undefined) return '';
  if (row.kind === 'min') return row.figure >= row.limit * (1 - margin) ? 'pass' : 'miss';
  return row.figure <= row.limit * (1 + margin) ? 'pass' : 'miss';
}

const fmt = (n: number | undefined): string =>
  n === undefined ? '' : Math.abs(n) >= 100 ? n.toFixed(0) : Math.abs(n) >= 10 ? n.toFixed(1) : n.toFixed(2);

export function printTable(title: string, rows: readonly Row[]): void {
  const header = ['#', 'measure', 'figure', 'floor', 'ratio', 'limit', 'target', 'result'];
  const lines = rows.map((r) => [
    r.id,
    r.what,
    `${fmt(r.figure)} ${r.unit}`,
    r.floor === undefined ? '' : `${fmt(r.floor)} ${r.unit}`,
    r.floor === undefined || r.floor === 0 ? '' : `${(r.figure / r.floor).toFixed(2)}×`,
    r.limit === undefined ? '' : `${r.kind === 'min' ? '≥' : '≤'} ${fmt(r.limit)}`,
    r.target,
    verdict(r),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const row = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  console.log(`\n${title}`);
  console.log(row(header));
  console.log(row(widths.map((w) => '-'.repeat(w))));
  for (const l of lines) console.log(row(l));
}

export const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

export interface Load {
  readonly rps: number;
  readonly p99: number;
  readonly p50: number;
  readonly errors: number;
  readonly non2xx: number;
}

/** autocannon against 127.0.0.1; fails the run when any request errs (a fast error is no throughput). */
export async function load(opts: { url: string; method?: 'GET' | 'POST'; body?: string; headers?: Record<string, string>; connections?: number; seconds?: number }): Promise<Load> {
  const result = await autocannon({
    url: opts.url,
    method: opts.method ?? 'GET',
    ...(opts.body !== undefined && { body: opts.body, headers: { 'content-type': 'application/json', ...opts.headers } }),
    connections: opts.connections ?? 16,
    duration: opts.seconds ?? 5,
  });
  const out = { rps: result.requests.average, p99: result.latency.p99, p50: result.latency.p50, errors: result.errors + result.timeouts, non2xx: result.non2xx };
  if (out.errors > 0 || out.non2xx > 0) throw new Error(`load on ${opts.url}: ${out.errors} errors, ${out.non2xx} non-2xx`);
  return out;
}

/** A short warm-up so JIT and connection set-up are not in the measurement. */
export const warm = (url: string, method: 'GET' | 'POST' = 'GET', body?: string) =>
  load({ url, method, ...(body !== undefined && { body }), seconds: 1 });

/**
 * The floor: a bare node:http server in its own process answering fixed bytes with the same
 * headers as the bridge (Content-Type, Content-Length), reading the body of a POST first.
 */
export async function startBareServer(reply: string, listen: { port: 0 } | { socketPath: string }): Promise<{ url: string; pid: number; stop: () => Promise<void> }> {
  const code = `
    const http = require('node:http');
    const body = Buffer.from(process.env.BARE_REPLY);
    const server = http.createServer((req, res) => {
      const done = () => { res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': body.length }); res.end(body); };
      if (req.method === 'POST') { const chunks = []; req.on('data', (c) => chunks.push(c)); req.on('end', () => { JSON.parse(Buffer.concat(chunks).toString() || '{}'); done(); }); }
      else { req.resume(); done(); }
    });
    server.keepAliveTimeout = 5000;
    const target = JSON.parse(process.env.BARE_LISTEN);
    const cb = () => process.stdout.write(JSON.stringify(server.address()) + '\\n');
    if (target.socketPath) server.listen(target.socketPath, cb); else server.listen(0, '127.0.0.1', cb);
  `;
  const child = spawn(process.execPath, ['-e', code], { env: { ...process.env, BARE_REPLY: reply, BARE_LISTEN: JSON.stringify(listen) }, stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await firstLine(child);
  const address = JSON.parse(line) as { port: number } | string;
  return {
    url: typeof address === 'string' ? address : `http://127.0.0.1:${address.port}`,
    pid: child.pid!,
    stop: () => stopChild(child),
  };
}

function firstLine(child: ChildProcess): Promise<string> {
  return new Promise((res, rej) => {
    let buf = '';
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const i = buf.indexOf('\n');
      if (i >= 0) res(buf.slice(0, i));
    });
    child.once('exit', (code) => rej(new Error(`child exited (${code}) before it was ready`)));
  });
}

export async function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

/** VmRSS of a process in MB, from /proc/<pid>/status. */
export async function rssMb(pid: number): Promise<number> {
  const text = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(text)?.[1]);
  return kb / 1024;
}

/** Samples RSS every 100 ms until stopped; returns the peak. */
export function sampleRss(pid: number): { stop: () => Promise<number> } {
  let peak = 0;
  let on = true;
  const loop = (async () => {
    while (on) {
      peak = Math.max(peak, await rssMb(pid).catch(() => 0));
      await sleep(100);
    }
  })();
  return {
    stop: async () => {
      on = false;
      await loop;
      return peak;
    },
  };
}

/** The processes below `pid` (children, their children, ...), from /proc/<pid>/task/<tid>/children; gone ones are skipped. */
export async function descendants(pid: number): Promise<number[]> {
  const found: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    const parent = queue.shift()!;
    const tasks = await readdir(`/proc/${parent}/task`).catch(() => [] as string[]);
    for (const task of tasks) {
      const text = await readFile(`/proc/${parent}/task/${task}/children`, 'utf8').catch(() => '');
      for (const child of text.split(' ').filter(Boolean).map(Number)) {
        found.push(child);
        queue.push(child);
      }
    }
  }
  return found;
}

/** VmRSS of a process and all its descendants, in MB, each read as `rssMb` reads it (shared pages count in each). */
export async function treeRssMb(pid: number): Promise<{ total: number; own: number; processes: number }> {
  const own = await rssMb(pid);
  const below = await Promise.all((await descendants(pid)).map((child) => rssMb(child).catch(() => 0)));
  return { total: below.reduce((a, b) => a + b, own), own, processes: 1 + below.length };
}

/** Clock ticks per second of /proc/<pid>/stat's times (USER_HZ). */
const CLOCK_TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/**
 * CPU seconds used by a process and its descendants: utime + stime + cutime + cstime of each live
 * one (a reaped child's time is in its parent's cutime/cstime, so each process counts once).
 */
export async function treeCpuSeconds(pid: number): Promise<number> {
  let ticks = 0;
  for (const p of [pid, ...(await descendants(pid))]) {
    const text = await readFile(`/proc/${p}/stat`, 'utf8').catch(() => '');
    // Fields after the command name, which is in parentheses and may hold spaces: state is field 3, utime 14.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    ticks += [11, 12, 13, 14].reduce((sum, i) => sum + (Number(fields[i]) || 0), 0);
  }
  return ticks / CLOCK_TICKS;
}

export interface SpawnedDaemon {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly url: string;
  readonly socketPath: string;
  readonly poolDir: string;
  readonly scratch: string;
  readonly logs: string[];
  http(method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number; json: any }>;
  stop(): Promise<void>;
}

/**
 * `node dist/src/daemon/main.js` as its own process (so its RSS is its own): port 0 on 127.0.0.1,
 * a short socket path under /tmp, its own temp POOL_DIR. The bridge URL is read from its log.
 */
export async function spawnDaemon(env: Record<string, string>, extraFiles: Record<string, string> = {}): Promise<SpawnedDaemon> {
  const scratch = await mkdtemp(join(tmpdir(), 'pb-'));
  const poolDir = join(scratch, 'pool');
  await mkdir(poolDir, { recursive: true });
  for (const [name, text] of Object.entries(extraFiles)) await writeFile(join(poolDir, name), text);
  const socketPath = join(scratch, 's.sock');
  const logs: string[] = [];
  const nodeArgs = (process.env.BENCH_DAEMON_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const child = spawn(process.execPath, [...nodeArgs, DAEMON_MAIN], {
    cwd: scratch,
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: process.env.HOME ?? '/tmp',
      SYNC_INTERVAL: '3600',
      STOP_TIMEOUT_SECONDS: '3',
      ...env,
      POOL_PORT: '0',
      POOL_BIND: '127.0.0.1',
      POOL_DIR: poolDir,
      POOL_SOCKET: socketPath,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const url = await new Promise<string>((res, rej) => {
    let all = '';
    const onData = (d: Buffer) => {
      all += d.toString();
      const m = /bridge listening on (http:\/\/\S+)/.exec(all);
      if (m && /\bready:/.test(all)) res(m[1]!);
    };
    child.once('exit', () => logs.push(...all.split('\n')));
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => rej(new Error(`daemon exited (${code}) before it was ready:\n${all}`)));
  });
  const http = (method: 'GET' | 'POST', path: string, body?: unknown) =>
    new Promise<{ status: number; json: any }>((res, rej) => {
      const req = httpRequest(`${url}${path}`, { method, headers: { 'content-type': 'application/json' } }, (r) => {
        const chunks: Buffer[] = [];
        r.on('data', (c: Buffer) => chunks.push(c));
        r.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          res({ status: r.statusCode ?? 0, json: text ? JSON.parse(text) : undefined });
        });
      });
      req.once('error', rej);
      req.end(body === undefined ? undefined : JSON.stringify(body));
    });
  return {
    child,
    pid: child.pid!,
    url,
    socketPath,
    poolDir,
    scratch,
    logs,
    http,
    async stop() {
      await stopChild(child);
      await rm(scratch, { recursive: true, force: true });
    },
  };
}

/**
 * A compose-driver daemon over busybox agents (`running` started through `autostart.txt`, one
 * spare service besides, MAX_AGENTS = running), once the pool shows them all running.
 */
export async function spawnComposeDaemon(running: readonly string[], env: Record<string, string> = {}): Promise<SpawnedDaemon> {
  const project = await createComposeProject(Object.fromEntries([...running, 'qa'].map((n) => [n, agentService()])));
  let daemon: SpawnedDaemon | undefined;
  try {
    daemon = await spawnDaemon(
      { COMPOSE_DIR: project.dir, COMPOSE_PROJECT: project.name, MAX_AGENTS: String(running.length), EVICT_GRACE_SECONDS: '60', ...env },
      { 'autostart.txt': running.join('\n') + '\n' },
    );
    const d = daemon;
    const up = async () => (await d.http('GET', '/status')).json.running.filter((a: { state: string }) => a.state === 'running').length === running.length;
    await until(up, 60_000, `${running.length} agents running`);
  } catch (error) {
    await daemon?.stop();
    await project.remove();
    throw error;
  }
  const d = daemon;
  return {
    ...d,
    async stop() {
      await d.stop();
      await project.remove();
    },
  };
}

export async function until<T>(check: () => Promise<T | undefined | false>, timeoutMs = 20_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check().catch(() => undefined);
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** Runs `main` when the file is the entry point (bench/run.mjs sets BENCH_ENTRY), prints its table. */
export async function runStandalone(name: string, title: string, main: () => Promise<Row[]>): Promise<void> {
  if (process.env.BENCH_ENTRY !== name) return;
  const rows = await main();
  printTable(title, rows);
}

/** A process-driver daemon (no Docker) over a roster of `sleep` agents; `running` of them started. */
export async function spawnProcessDaemon(opts: { agents: readonly string[]; running: readonly string[]; maxAgents: number; env?: Record<string, string> }) {
  const rosterDir = await mkdtemp(join(tmpdir(), 'pbr-'));
  const roster = join(rosterDir, 'agents.json');
  const agents = Object.fromEntries(opts.agents.map((n) => [n, { command: ['sleep', '3600'] }]));
  await writeFile(roster, JSON.stringify({ agents }));
  const d = await spawnDaemon({ POOL_DRIVER: 'process', PROCESS_ROSTER: roster, MAX_AGENTS: String(opts.maxAgents), ...opts.env });
  const stop = async () => {
    // Agents outlive the daemon by design: stop them through the pool, then kill any left by pid file.
    await Promise.allSettled(opts.running.map((agent) => d.http('POST', '/release', { agent })));
    await killLeftovers(join(d.poolDir, 'processes'));
    await d.stop();
    await rm(rosterDir, { recursive: true, force: true });
  };
  try {
    const replies = await Promise.all(opts.running.map((agent) => d.http('POST', '/request', { agent })));
    const bad = replies.find((r) => r.json?.status !== 'started');
    if (bad) throw new Error(`could not start agents: ${JSON.stringify(bad.json)}`);
  } catch (error) {
    await stop();
    throw error;
  }
  return { ...d, stop };
}

/** Kills the process groups named by the process driver's pid files (only those this run started). */
async function killLeftovers(dir: string): Promise<void> {
  const files = await readdir(dir).catch(() => [] as string[]);
  for (const file of files.filter((f) => f.endsWith('.pid'))) {
    const pid = Number(JSON.parse(await readFile(join(dir, file), 'utf8').catch(() => '{}')).pid);
    if (Number.isInteger(pid) && pid > 1) {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
}

import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat, symlink } from 'node:fs/promises';
import { type Server, type Socket, connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type ComposeProject, agentService, createComposeProject, requireDocker } from '../support/docker.js';
import { type TestDaemon, type TestDaemonOptions, eventually, startTestDaemon } from '../support/daemon.js';

const docker = await requireDocker();

const SHIMS = fileURLToPath(new URL('../../shims/', import.meta.url));
const REQUEST_AGENT = join(SHIMS, 'request-agent');
const HEARTBEAT = join(SHIMS, 'heartbeat');
/** The host's `sh` is dash: with curl on PATH it exercises the curl path under dash. */
const HOST_PATH = process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin';
const BUSYBOX = '/bin/busybox';
const UNREACHABLE_HINT = /check POOL_HOST.*POOL_PORT.*openclaw-pool is running/s;

interface Outcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** A process of this test: output collected as it comes, killed (with its group) after the test. */
interface Proc {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  done: Promise<Outcome>;
}

const live = new Set<Proc>();

function start(command: string, args: string[], env: Record<string, string>): Proc {
  const began = Date.now();
  // A process group of its own, so cleanup reaches the script's children (sleep, curl) too.
  const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const done = new Promise<Outcome>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr, ms: Date.now() - began }));
  });
  const proc: Proc = { child, stdout: () => stdout, stderr: () => stderr, done };
  live.add(proc);
  void done.finally(() => live.delete(proc)).catch(() => undefined);
  return proc;
}

function killGroup(pid: number | undefined, signal: NodeJS.Signals = 'SIGKILL'): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // Already gone.
  }
}

afterEach(async () => {
  const procs = [...live];
  for (const proc of procs) killGroup(proc.child.pid);
  await Promise.all(procs.map((proc) => proc.done.catch(() => undefined)));
});

/** Runs a command to the end (bounded), with exactly the environment given. */
async function run(command: string, args: string[], env: Record<string, string>, timeoutMs = 20_000): Promise<Outcome> {
  const proc = start(command, args, env);
  const timer = setTimeout(() => killGroup(proc.child.pid), timeoutMs);
  try {
    return await proc.done;
  } finally {
    clearTimeout(timer);
  }
}

/** A shim under the host's sh (dash) with curl available. */
function hostShim(script: string, args: string[], env: Record<string, string>): Promise<Outcome> {
  return run('sh', [script, ...args], { PATH: HOST_PATH, ...env });
}

/** A PATH made of busybox applets only: sh is busybox ash, HTTP goes through busybox wget, there is no curl. */
async function busyboxPath(): Promise<string> {
  const dir = await scratchDir();
  const applets = ['sh', 'wget', 'sed', 'grep', 'cat', 'touch', 'sleep', 'tr', 'date', 'timeout', 'kill', 'printf', 'echo', 'test', '['];
  await Promise.all(applets.map((applet) => symlink(BUSYBOX, join(dir, applet))));
  return dir;
}

/** A shim under busybox sh with busybox wget and no curl. */
function busyboxShim(bin: string, script: string, args: string[], env: Record<string, string>): Promise<Outcome> {
  return run(join(bin, 'sh'), [script, ...args], { PATH: bin, ...env });
}

const scratch: string[] = [];
async function scratchDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'pool-shim-'));
  scratch.push(dir);
  return dir;
}
afterAll(async () => {
  await Promise.all(scratch.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

/** A TCP port on 127.0.0.1 that nobody listens on (bound, then closed). */
async function deadPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A TCP server on 127.0.0.1 that records each connection and either forwards it to `target` or holds it silently. */
async function listener(opts: { port?: number; forwardTo?: number }) {
  let connections = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    connections += 1;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    if (opts.forwardTo === undefined) return; // accepts, never answers
    const upstream = connect(opts.forwardTo, '127.0.0.1');
    sockets.add(upstream);
    upstream.on('close', () => sockets.delete(upstream));
    upstream.on('error', () => socket.destroy());
    socket.pipe(upstream).pipe(socket);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as { port: number };
  return {
    port,
    connections: () => connections,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const portOf = (p: TestDaemon) => new URL(p.url).port;

async function agentEntry(p: TestDaemon, agent: string) {
  const entry = (await p.client.status()).running.find((a) => a.id === agent);
  if (entry === undefined) throw new Error(`${agent} is not in the pool`);
  return entry;
}

// ---------------------------------------------------------------------------------------------
// Without a daemon: argument checks and an unreachable manager.

describe('request-agent without a pool manager', () => {
  it('exits 1 naming the URL and what to check when nothing listens on POOL_PORT (curl, dash)', async () => {
    const port = await deadPort();
    const out = await hostShim(REQUEST_AGENT, ['cfo'], { POOL_HOST: '127.0.0.1', POOL_PORT: String(port), AGENT_ID: 'ceo' });
    expect(out.code).toBe(1);
    expect(out.stdout).toBe('');
    expect(out.stderr).toContain(`cannot reach the pool manager at http://127.0.0.1:${port}/request`);
    expect(out.stderr).toMatch(UNREACHABLE_HINT);
  });

  it('exits 1 naming the URL and what to check when nothing listens on POOL_PORT (busybox wget, no curl)', async () => {
    const bin = await busyboxPath();
    const port = await deadPort();
    const out = await busyboxShim(bin, REQUEST_AGENT, ['cfo'], { POOL_HOST: '127.0.0.1', POOL_PORT: String(port) });
    expect(out.code).toBe(1);
    expect(out.stdout).toBe('');
    expect(out.stderr).toContain(`cannot reach the pool manager at http://127.0.0.1:${port}/request`);
    expect(out.stderr).toMatch(/Connection refused/);
    expect(out.stderr).toMatch(UNREACHABLE_HINT);
  });

  it('defaults to POOL_HOST pool-manager and POOL_PORT 19000, and says so when the host does not resolve', async () => {
    const out = await hostShim(REQUEST_AGENT, ['cfo'], { POOL_HOST: 'pool-manager.invalid' });
    expect(out.code).toBe(1);
    expect(out.stderr).toContain('http://pool-manager.invalid:19000/request');
    expect(out.stderr).toContain("cannot resolve host 'pool-manager.invalid'");
    const unset = await hostShim(REQUEST_AGENT, ['cfo'], { POOL_PORT: String(await deadPort()) });
    expect(unset.code).toBe(1);
    expect(unset.stderr).toContain('http://pool-manager:');
  });

  it('gives up after POOL_TIMEOUT when the manager accepts the connection but never answers (curl and wget)', async () => {
    const silent = await listener({});
    try {
      const env = { POOL_HOST: '127.0.0.1', POOL_PORT: String(silent.port), POOL_TIMEOUT: '1' };
      const viaCurl = await hostShim(REQUEST_AGENT, ['cfo'], env);
      expect(viaCurl.code).toBe(1);
      expect(viaCurl.stderr).toContain('no reply within 1 s');
      expect(viaCurl.ms).toBeLessThan(5_000);
      const viaWget = await busyboxShim(await busyboxPath(), REQUEST_AGENT, ['cfo'], env);
      expect(viaWget.code).toBe(1);
      expect(viaWget.stderr).toContain('no reply within 1 s');
      expect(viaWget.ms).toBeLessThan(5_000);
      expect(silent.connections()).toBe(2);
    } finally {
      await silent.close();
    }
  });

  it.each([
    ['an invalid agent name', ['bad name']],
    ['a name starting with a dot', ['.hidden']],
    ['a name with a quote (would break the JSON)', ['cfo"x']],
    ['a name over 255 characters', ['a'.repeat(256)]],
    ['no agent', []],
    ['two agents', ['cfo', 'cto']],
    ['a non-numeric --wait', ['--wait', 'soon', 'cfo']],
    ['a negative --wait', ['--wait', '-1', 'cfo']],
    ['--wait without a value', ['--wait']],
    ['an unknown option', ['--force', 'cfo']],
  ])('exits 2 with a usage message and sends nothing for %s', async (_what, args) => {
    const probe = await listener({});
    try {
      const env = { POOL_HOST: '127.0.0.1', POOL_PORT: String(probe.port), POOL_TIMEOUT: '1' };
      for (const out of [await hostShim(REQUEST_AGENT, args, env), await busyboxShim(await busyboxPath(), REQUEST_AGENT, args, env)]) {
        expect(out.code).toBe(2);
        expect(out.stdout).toBe('');
        expect(out.stderr).toMatch(/usage: request-agent/);
      }
      expect(probe.connections()).toBe(0);
    } finally {
      await probe.close();
    }
  });

  it('accepts a 255-character name as valid (the usage check is not stricter than the daemon)', async () => {
    const out = await hostShim(REQUEST_AGENT, [`a${'-'.repeat(254)}`], { POOL_HOST: '127.0.0.1', POOL_PORT: String(await deadPort()) });
    expect(out.code).toBe(1);
    expect(out.stderr).toContain('cannot reach the pool manager');
  });
});

describe('heartbeat without a pool manager', () => {
  it.each([
    ['AGENT_ID unset', {}],
    ['AGENT_ID empty', { AGENT_ID: '' }],
    ['AGENT_ID not a valid name', { AGENT_ID: 'c e o' }],
  ])('exits 2 with a message and sends nothing with %s', async (_what, agentEnv: Record<string, string>) => {
    const probe = await listener({});
    try {
      const out = await hostShim(HEARTBEAT, ['--once'], { POOL_HOST: '127.0.0.1', POOL_PORT: String(probe.port), ...agentEnv });
      expect(out.code).toBe(2);
      expect(out.stderr).toContain('AGENT_ID');
      expect(probe.connections()).toBe(0);
    } finally {
      await probe.close();
    }
  });

  it('--once exits 1 with a clear message when the manager is unreachable, and still touches the activity mark', async () => {
    const activity = await scratchDir();
    const port = await deadPort();
    for (const out of [
      await hostShim(HEARTBEAT, ['--once'], { AGENT_ID: 'ceo', POOL_HOST: '127.0.0.1', POOL_PORT: String(port), POOL_ACTIVITY_DIR: activity }),
      await busyboxShim(await busyboxPath(), HEARTBEAT, ['--once'], {
        AGENT_ID: 'ceo', POOL_HOST: '127.0.0.1', POOL_PORT: String(port), POOL_ACTIVITY_DIR: activity,
      }),
    ]) {
      expect(out.code).toBe(1);
      expect(out.stderr).toContain(`cannot reach the pool manager at http://127.0.0.1:${port}/heartbeat`);
      expect(out.stderr).toMatch(UNREACHABLE_HINT);
    }
    expect(existsSync(join(activity, 'ceo'))).toBe(true);
  });

  it('skips the activity mark without complaint when the activity directory does not exist', async () => {
    const missing = join(await scratchDir(), 'no-such-dir');
    const out = await hostShim(HEARTBEAT, ['--once'], {
      AGENT_ID: 'ceo', POOL_HOST: '127.0.0.1', POOL_PORT: String(await deadPort()), POOL_ACTIVITY_DIR: missing,
    });
    expect(out.code).toBe(1);
    expect(out.stderr.trim().split('\n')).toHaveLength(1);
    expect(existsSync(missing)).toBe(false);
  });

  it('the loop keeps running through failures, reports the streak once, and exits 0 at once on SIGTERM', async () => {
    const port = await deadPort();
    const beat = start('sh', [HEARTBEAT], {
      PATH: HOST_PATH, AGENT_ID: 'ceo', POOL_HOST: '127.0.0.1', POOL_PORT: String(port), HEARTBEAT_INTERVAL: '1',
    });
    await eventually(() => expect(beat.stderr()).toContain('cannot reach the pool manager'), 5_000);
    await sleep(2_300); // two or three more failed beats
    expect(beat.child.exitCode).toBeNull();
    expect(beat.stderr().trim().split('\n')).toHaveLength(1);
    const sent = Date.now();
    beat.child.kill('SIGTERM');
    const out = await beat.done;
    expect(out.code).toBe(0);
    expect(Date.now() - sent).toBeLessThan(500);
    // It took its background sleep down with it: nothing is left in its process group.
    await eventually(() => expect(() => process.kill(-(beat.child.pid as number), 0)).toThrow(), 2_000);
  });

  it('the loop exits 0 on SIGINT under busybox sh too', async () => {
    const bin = await busyboxPath();
    const beat = start(join(bin, 'sh'), [HEARTBEAT], {
      PATH: bin, AGENT_ID: 'ceo', POOL_HOST: '127.0.0.1', POOL_PORT: String(await deadPort()), HEARTBEAT_INTERVAL: '30',
    });
    await eventually(() => expect(beat.stderr()).toContain('will keep trying every 30 s'), 5_000);
    const sent = Date.now();
    beat.child.kill('SIGINT');
    const out = await beat.done;
    expect(out.code).toBe(0);
    expect(Date.now() - sent).toBeLessThan(2_000);
  });
});

// ---------------------------------------------------------------------------------------------
// Against a real daemon on a real compose project, from the host.

describe.skipIf(!docker)('request-agent and heartbeat from the host against a real daemon', () => {
  const daemons: TestDaemon[] = [];
  async function daemon(options: TestDaemonOptions = {}): Promise<TestDaemon> {
    const p = await startTestDaemon(options);
    daemons.push(p);
    return p;
  }
  afterEach(async () => {
    await Promise.all(daemons.splice(0).map((p) => p.stop()));
  });

  it('starts an agent through curl, prints the reply, records AGENT_ID as requested_by, then answers already_running (exit 0 both)', async () => {
    const p = await daemon();
    const env = { POOL_HOST: '127.0.0.1', POOL_PORT: portOf(p), AGENT_ID: 'ceo' };
    const first = await hostShim(REQUEST_AGENT, ['cfo'], env);
    expect(first).toMatchObject({ code: 0, stderr: '' });
    expect(JSON.parse(first.stdout)).toEqual({ status: 'started', agent: 'cfo' });
    expect(await p.runningInDocker()).toEqual(['cfo']);
    expect(await agentEntry(p, 'cfo')).toMatchObject({ requested_by: 'ceo' });
    const again = await hostShim(REQUEST_AGENT, ['cfo'], env);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout)).toEqual({ status: 'already_running', agent: 'cfo' });
  });

  it('starts an agent through busybox wget with no curl on PATH, and answers already_running the second time', async () => {
    const p = await daemon();
    const bin = await busyboxPath();
    const env = { POOL_HOST: '127.0.0.1', POOL_PORT: portOf(p), AGENT_ID: 'cto' };
    const first = await busyboxShim(bin, REQUEST_AGENT, ['qa'], env);
    expect(first).toMatchObject({ code: 0, stderr: '' });
    expect(JSON.parse(first.stdout)).toEqual({ status: 'started', agent: 'qa' });
    expect(await p.runningInDocker()).toEqual(['qa']);
    expect(await agentEntry(p, 'qa')).toMatchObject({ requested_by: 'cto' });
    const again = await busyboxShim(bin, REQUEST_AGENT, ['qa'], env);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout)).toEqual({ status: 'already_running', agent: 'qa' });
  });

  it('leaves requested_by out when AGENT_ID is unset or invalid, so the daemon records "api" instead of refusing', async () => {
    const p = await daemon();
    const unset = await hostShim(REQUEST_AGENT, ['cfo'], { POOL_HOST: '127.0.0.1', POOL_PORT: portOf(p) });
    expect(unset.code).toBe(0);
    expect(unset.stderr).toBe('');
    const invalid = await hostShim(REQUEST_AGENT, ['cto'], { POOL_HOST: '127.0.0.1', POOL_PORT: portOf(p), AGENT_ID: 'not valid!' });
    expect(invalid.code).toBe(0);
    expect(invalid.stderr).toContain('ignoring AGENT_ID');
    expect(await agentEntry(p, 'cfo')).toMatchObject({ requested_by: 'api' });
    expect(await agentEntry(p, 'cto')).toMatchObject({ requested_by: 'api' });
  });

  it('exits 1 and prints the reply for an unknown agent and for an infrastructure service, starting nothing (curl and wget)', async () => {
    const p = await daemon();
    const bin = await busyboxPath();
    const env = { POOL_HOST: '127.0.0.1', POOL_PORT: portOf(p), AGENT_ID: 'ceo' };
    for (const out of [await hostShim(REQUEST_AGENT, ['nobody'], env), await busyboxShim(bin, REQUEST_AGENT, ['nobody'], env)]) {
      expect(out.code).toBe(1);
      expect(JSON.parse(out.stdout)).toMatchObject({ status: 'unknown_agent', agent: 'nobody', known: expect.arrayContaining(['cfo']) });
    }
    for (const out of [await hostShim(REQUEST_AGENT, ['gateway'], env), await busyboxShim(bin, REQUEST_AGENT, ['gateway'], env)]) {
      expect(out.code).toBe(1);
      expect(JSON.parse(out.stdout)).toMatchObject({ status: 'forbidden', agent: 'gateway' });
    }
    expect(await p.runningInDocker()).toEqual([]);
  });

  it('exits 1 and prints the pool_full reply when every slot is taken by a recently active agent', async () => {
    const p = await daemon({ env: { MAX_AGENTS: '1' } });
    await p.client.request('ceo');
    const env = { POOL_HOST: '127.0.0.1', POOL_PORT: portOf(p), AGENT_ID: 'ceo' };
    for (const out of [await hostShim(REQUEST_AGENT, ['cfo'], env), await busyboxShim(await busyboxPath(), REQUEST_AGENT, ['cfo'], env)]) {
      expect(out.code).toBe(1);
      expect(JSON.parse(out.stdout)).toMatchObject({ status: 'pool_full', error: expect.any(String) });
    }
    expect(await p.runningInDocker()).toEqual(['ceo']);
  });

  it('--wait N sends wait_seconds: the daemon sees it (over its 3600 s cap it answers 400, shown on stderr, exit 1)', async () => {
    // The daemon does not queue waiting requests yet, so the field is observed through its validation.
    const p = await daemon();
    const env = { POOL_HOST: '127.0.0.1', POOL_PORT: portOf(p), AGENT_ID: 'ceo' };
    const viaCurl = await hostShim(REQUEST_AGENT, ['--wait', '5000', 'cfo'], env);
    expect(viaCurl.code).toBe(1);
    expect(JSON.parse(viaCurl.stdout)).toEqual({ error: expect.stringContaining('wait_seconds') });
    expect(viaCurl.stderr).toContain('rejected the request (HTTP 400)');
    const viaWget = await busyboxShim(await busyboxPath(), REQUEST_AGENT, ['--wait=5000', 'cfo'], env);
    expect(viaWget.code).toBe(1);
    expect(viaWget.stderr).toContain('rejected the request (HTTP 400 Bad Request)');
    expect(await p.runningInDocker()).toEqual([]);
    const within = await hostShim(REQUEST_AGENT, ['--wait', '3600', 'cfo'], env);
    expect(within.code).toBe(0);
    expect(JSON.parse(within.stdout)).toEqual({ status: 'started', agent: 'cfo' });
  });

  it('--wait 0 is sent as a number the daemon accepts (no leading zeros), and fails fast with pool_full', async () => {
    const p = await daemon({ env: { MAX_AGENTS: '1' } });
    await p.client.request('ceo');
    const out = await hostShim(REQUEST_AGENT, ['--wait', '00', 'cfo'], { POOL_HOST: '127.0.0.1', POOL_PORT: portOf(p) });
    expect(out.code).toBe(1);
    expect(JSON.parse(out.stdout)).toMatchObject({ status: 'pool_full' });
  });

  it('with POOL_TOKEN on the daemon: the right token starts the agent, a missing or wrong one exits 1 saying so (curl and wget)', async () => {
    const p = await daemon({ env: { POOL_TOKEN: 't' } });
    const bin = await busyboxPath();
    const base = { POOL_HOST: '127.0.0.1', POOL_PORT: portOf(p), AGENT_ID: 'ceo' };
    for (const out of [
      await hostShim(REQUEST_AGENT, ['cfo'], base),
      await hostShim(REQUEST_AGENT, ['cfo'], { ...base, POOL_TOKEN: 'wrong' }),
      await busyboxShim(bin, REQUEST_AGENT, ['cfo'], base),
      await busyboxShim(bin, REQUEST_AGENT, ['cfo'], { ...base, POOL_TOKEN: 'wrong' }),
    ]) {
      expect(out.code).toBe(1);
      expect(out.stderr).toMatch(/401.*POOL_TOKEN is missing or wrong/);
      expect(out.stderr).not.toContain('cannot reach');
    }
    expect(await p.runningInDocker()).toEqual([]);
    const viaCurl = await hostShim(REQUEST_AGENT, ['cfo'], { ...base, POOL_TOKEN: 't' });
    expect(viaCurl.code).toBe(0);
    expect(JSON.parse(viaCurl.stdout)).toEqual({ status: 'started', agent: 'cfo' });
    const viaWget = await busyboxShim(bin, REQUEST_AGENT, ['cto'], { ...base, POOL_TOKEN: 't' });
    expect(viaWget.code).toBe(0);
    expect(JSON.parse(viaWget.stdout)).toEqual({ status: 'started', agent: 'cto' });
    expect(await p.runningInDocker()).toEqual(['cfo', 'cto']);
    // The heartbeat carries the token too.
    const beat = await hostShim(HEARTBEAT, ['--once'], { ...base, POOL_TOKEN: 't', POOL_ACTIVITY_DIR: await scratchDir() });
    expect(beat).toMatchObject({ code: 0, stderr: '' });
    const refused = await busyboxShim(bin, HEARTBEAT, ['--once'], { ...base, POOL_ACTIVITY_DIR: await scratchDir() });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/401.*POOL_TOKEN is missing or wrong/);
  });

  it('heartbeat --once moves the agent\'s last_active and touches its activity mark (curl and wget)', async () => {
    const p = await daemon();
    await p.client.request('ceo');
    const bin = await busyboxPath();
    for (const shim of [
      (env: Record<string, string>) => hostShim(HEARTBEAT, ['--once'], env),
      (env: Record<string, string>) => busyboxShim(bin, HEARTBEAT, ['--once'], env),
    ]) {
      const before = Date.parse((await agentEntry(p, 'ceo')).last_active);
      p.advance(120);
      const beatAt = Math.floor(p.now() / 1000) * 1000;
      const activity = await scratchDir();
      const out = await shim({ POOL_HOST: '127.0.0.1', POOL_PORT: portOf(p), AGENT_ID: 'ceo', POOL_ACTIVITY_DIR: activity });
      expect(out).toMatchObject({ code: 0, stderr: '' });
      const after = Date.parse((await agentEntry(p, 'ceo')).last_active);
      expect(after).toBeGreaterThanOrEqual(beatAt);
      expect(after - before).toBeGreaterThanOrEqual(119_000);
      expect((await stat(join(activity, 'ceo'))).mtimeMs).toBeGreaterThan(Date.now() - 10_000);
    }
  });

  it('heartbeat --busy N holds the agent against eviction past its grace period; --busy 0 ends the hold (curl and wget)', async () => {
    const p = await daemon({ env: { MAX_AGENTS: '1', BUSY_MAX_SECONDS: '600' } });
    await p.client.request('ceo');
    const bin = await busyboxPath();
    const env = { POOL_HOST: '127.0.0.1', POOL_PORT: portOf(p), AGENT_ID: 'ceo', POOL_ACTIVITY_DIR: await scratchDir() };
    expect(await hostShim(HEARTBEAT, ['--busy', '0900'], env)).toMatchObject({ code: 0, stderr: '' });
    const held = (await p.client.status()).running[0];
    expect(held).toMatchObject({ id: 'ceo', protection: 'busy' });
    // Capped at BUSY_MAX_SECONDS (600), not the 900 asked for.
    expect(Date.parse(held?.busy_until ?? '') - p.now()).toBeLessThanOrEqual(600_000);
    p.advance(300);
    await expect(p.client.request('cfo')).rejects.toMatchObject({ name: 'PoolFullError' });
    expect(await busyboxShim(bin, HEARTBEAT, ['--busy', '0'], env)).toMatchObject({ code: 0, stderr: '' });
    p.advance(120);
    expect(await p.client.request('cfo')).toEqual({ status: 'started', agent: 'cfo', evicted: 'ceo' });
  });

  it('with ACTIVITY_MODE=work a plain beat is liveness only and leaves the mark alone; heartbeat --active is activity and touches it (curl and wget)', async () => {
    const p = await daemon({ env: { ACTIVITY_MODE: 'work' } });
    await p.client.request('ceo');
    const bin = await busyboxPath();
    const activity = await scratchDir();
    const env = { POOL_HOST: '127.0.0.1', POOL_PORT: portOf(p), AGENT_ID: 'ceo', POOL_ACTIVITY_DIR: activity, POOL_ROSTER: join(p.poolDir, 'roster.json') };
    const lastActive = async () => Date.parse((await agentEntry(p, 'ceo')).last_active);
    for (const beat of [hostShim, (script: string, args: string[], e: Record<string, string>) => busyboxShim(bin, script, args, e)]) {
      await rm(join(activity, 'ceo'), { force: true });
      const before = await lastActive();
      p.advance(120);
      expect(await beat(HEARTBEAT, ['--once'], env)).toMatchObject({ code: 0, stderr: '' });
      expect(await lastActive()).toBe(before);
      expect(existsSync(join(activity, 'ceo'))).toBe(false);
      const beatAt = Math.floor(p.now() / 1000) * 1000;
      expect(await beat(HEARTBEAT, ['--active'], env)).toMatchObject({ code: 0, stderr: '' });
      expect(await lastActive()).toBeGreaterThanOrEqual(beatAt);
      expect(await agentEntry(p, 'ceo')).toMatchObject({ active_reason: 'heartbeat' });
      expect(existsSync(join(activity, 'ceo'))).toBe(true);
    }
  });

  it.each([
    [['--busy'], '--busy needs a number of seconds'],
    [['--busy', '-5'], "--busy takes a whole number of seconds, not '-5'"],
    [['--busy', '1h'], "--busy takes a whole number of seconds, not '1h'"],
  ])('heartbeat %j is a usage error (exit 2), nothing sent', async (args, message) => {
    const out = await hostShim(HEARTBEAT, args, { AGENT_ID: 'ceo', POOL_HOST: '127.0.0.1', POOL_PORT: '9' });
    expect(out).toMatchObject({ code: 2, stderr: expect.stringContaining(message) });
  });

  it('the loop reads heartbeat_interval from the roster the daemon publishes when HEARTBEAT_INTERVAL is unset', async () => {
    const p = await daemon({ env: { HEARTBEAT_INTERVAL: '1' } });
    await p.client.request('ceo');
    const roster = join(p.poolDir, 'roster.json');
    expect(JSON.parse(await readFile(roster, 'utf8'))).toMatchObject({ heartbeat_interval: 1 });
    const counter = await listener({ forwardTo: Number(portOf(p)) });
    try {
      const beat = start('sh', [HEARTBEAT], {
        PATH: HOST_PATH, AGENT_ID: 'ceo', POOL_HOST: '127.0.0.1', POOL_PORT: String(counter.port), POOL_ROSTER: roster,
        POOL_ACTIVITY_DIR: await scratchDir(),
      });
      await sleep(2_600);
      expect(counter.connections()).toBeGreaterThanOrEqual(3); // at 0, 1 and 2 s; the default 30 s would give 1
      expect(beat.stderr()).toBe('');
      beat.child.kill('SIGTERM');
      expect((await beat.done).code).toBe(0);
    } finally {
      await counter.close();
    }
  });

  it('falls back to a 30 s interval when neither HEARTBEAT_INTERVAL nor a roster gives one', async () => {
    const p = await daemon();
    const counter = await listener({ forwardTo: Number(portOf(p)) });
    try {
      const beat = start('sh', [HEARTBEAT], {
        PATH: HOST_PATH, AGENT_ID: 'ceo', POOL_HOST: '127.0.0.1', POOL_PORT: String(counter.port),
        POOL_ROSTER: join(p.poolDir, 'missing.json'), POOL_ACTIVITY_DIR: await scratchDir(),
      });
      await sleep(1_500);
      expect(counter.connections()).toBe(1);
      beat.child.kill('SIGTERM');
      expect((await beat.done).code).toBe(0);
    } finally {
      await counter.close();
    }
  });

  it('the loop recovers when the manager comes back: one line when the streak starts, one when it ends, and beats land again', async () => {
    const p = await daemon();
    await p.client.request('ceo');
    const port = await deadPort();
    const bin = await busyboxPath();
    const beat = start(join(bin, 'sh'), [HEARTBEAT], {
      PATH: bin, AGENT_ID: 'ceo', POOL_HOST: '127.0.0.1', POOL_PORT: String(port), HEARTBEAT_INTERVAL: '1',
      POOL_ACTIVITY_DIR: await scratchDir(),
    });
    await eventually(() => expect(beat.stderr()).toContain(`cannot reach the pool manager at http://127.0.0.1:${port}/heartbeat`), 5_000);
    await sleep(1_200); // at least one more failed beat, reported by nobody
    expect(beat.stderr().trim().split('\n')).toHaveLength(1);
    p.advance(120);
    const beatAt = Math.floor(p.now() / 1000) * 1000;
    // The manager "comes back" on the port the loop has been trying: a forwarder to the real daemon.
    const back = await listener({ port, forwardTo: Number(portOf(p)) });
    try {
      await eventually(() => expect(beat.stderr()).toMatch(/answers again \(after ([2-9]|\d\d+) failed heartbeat/), 5_000);
      expect(beat.stderr().trim().split('\n')).toHaveLength(2);
      expect(Date.parse((await agentEntry(p, 'ceo')).last_active)).toBeGreaterThanOrEqual(beatAt);
      expect(beat.child.exitCode).toBeNull();
      beat.child.kill('SIGTERM');
      expect((await beat.done).code).toBe(0);
    } finally {
      await back.close();
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Inside busybox containers (wget, busybox sh), as the agents run them.

describe.skipIf(!docker)('the shims inside busybox agent containers (busybox wget, no curl)', () => {
  let p: TestDaemon;
  let project: ComposeProject;
  let poolDir: string;

  function agent(name: string, poolMount: string): Record<string, unknown> {
    return agentService({
      volumes: [`${SHIMS.replace(/\/$/, '')}:/opt/shims:ro`, poolMount],
      environment: { AGENT_ID: name, POOL_HOST: '127.0.0.1' },
    });
  }

  /** `docker compose exec` in a running agent container, with the daemon's port (known only after its start). */
  function exec(service: string, ...command: string[]): Promise<Outcome> {
    return run('docker', [
      'compose', '--project-directory', project.dir, '-p', project.name,
      'exec', '-T', '-e', `POOL_PORT=${portOf(p)}`, service, ...command,
    ], { PATH: HOST_PATH, HOME: process.env.HOME ?? '/root' }, 30_000);
  }

  beforeAll(async () => {
    poolDir = join(await scratchDir(), 'pool');
    await mkdir(poolDir, { recursive: true });
    const mount = `${poolDir}:/pool`;
    project = await createComposeProject({
      ceo: agent('ceo', mount),
      cfo: agent('cfo', mount),
      // An agent whose /pool is read-only: the activity mark cannot be written there.
      legal: agent('legal', `${poolDir}:/pool:ro`),
    });
    p = await startTestDaemon({ project, poolDir, agents: ['ceo', 'cfo', 'legal'], infra: [] });
    await p.client.request('ceo');
  });
  afterAll(async () => {
    await p?.stop();
    await project?.remove();
  });

  it('request-agent cfo inside ceo starts cfo: exit 0, the started reply, Docker runs cfo, requested_by ceo', async () => {
    const out = await exec('ceo', 'sh', '/opt/shims/request-agent', 'cfo');
    expect(out.stderr).toBe('');
    expect(out.code).toBe(0);
    expect(out.stdout.trim()).toBe('{"status":"started","agent":"cfo"}');
    expect(await p.runningInDocker()).toEqual(['ceo', 'cfo']);
    expect(await agentEntry(p, 'cfo')).toMatchObject({ requested_by: 'ceo' });
  });

  it('a second request-agent cfo prints already_running and exits 0', async () => {
    const out = await exec('ceo', 'sh', '/opt/shims/request-agent', 'cfo');
    expect(out.code).toBe(0);
    expect(JSON.parse(out.stdout)).toEqual({ status: 'already_running', agent: 'cfo' });
  });

  it('request-agent for an unknown agent inside a container exits 1 with the reply', async () => {
    const out = await exec('ceo', 'sh', '/opt/shims/request-agent', 'nobody');
    expect(out.code).toBe(1);
    expect(JSON.parse(out.stdout)).toMatchObject({ status: 'unknown_agent', agent: 'nobody' });
  });

  it('heartbeat --once inside cfo moves its last_active and touches /pool/activity/cfo', async () => {
    const mark = join(poolDir, 'activity', 'cfo');
    expect(existsSync(mark)).toBe(false);
    const before = Date.parse((await agentEntry(p, 'cfo')).last_active);
    p.advance(120);
    const beatAt = Math.floor(p.now() / 1000) * 1000;
    const out = await exec('cfo', 'sh', '/opt/shims/heartbeat', '--once');
    expect(out).toMatchObject({ code: 0, stderr: '' });
    const after = Date.parse((await agentEntry(p, 'cfo')).last_active);
    expect(after).toBeGreaterThanOrEqual(beatAt);
    expect(after - before).toBeGreaterThanOrEqual(119_000);
    expect(existsSync(mark)).toBe(true);
  });

  it('heartbeat --once in a container whose /pool is read-only still beats, skipping the mark without complaint', async () => {
    await p.client.request('legal');
    p.advance(120);
    const beatAt = Math.floor(p.now() / 1000) * 1000;
    const out = await exec('legal', 'sh', '/opt/shims/heartbeat', '--once');
    expect(out).toMatchObject({ code: 0, stderr: '' });
    expect(Date.parse((await agentEntry(p, 'legal')).last_active)).toBeGreaterThanOrEqual(beatAt);
    expect(existsSync(join(poolDir, 'activity', 'legal'))).toBe(false);
  });

  it('heartbeat --once inside a container exits 1 with the clear message when POOL_PORT is wrong', async () => {
    const port = await deadPort();
    const out = await run('docker', [
      'compose', '--project-directory', project.dir, '-p', project.name,
      'exec', '-T', '-e', `POOL_PORT=${port}`, 'ceo', 'sh', '/opt/shims/heartbeat', '--once',
    ], { PATH: HOST_PATH, HOME: process.env.HOME ?? '/root' }, 30_000);
    expect(out.code).toBe(1);
    expect(out.stderr).toContain(`cannot reach the pool manager at http://127.0.0.1:${port}/heartbeat`);
  });
});

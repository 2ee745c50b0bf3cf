/**
 * Resource exhaustion against a REAL daemon process on a real compose project: its descriptor
 * limit lowered with util-linux `prlimit` while it runs, real idle TCP connections held open on
 * loopback, reconciles every second, live streams from two client addresses (127.0.0.1 and
 * 127.0.0.2, both loopback). The daemon must survive, refuse politely past its caps, and recover.
 *
 * The limit is lowered after start-up (`prlimit --pid`) rather than by spawning under it: at 128
 * descriptors Node's ES module loader itself fails to load the daemon (it opens the module graph
 * concurrently), before any code of ours runs.
 */
import { rm } from 'node:fs/promises';
import { get } from 'node:http';
import { type Socket, connect } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { LIVE_LIMITS } from '../../src/bridge/live.js';
import { connectionCap } from '../../src/bridge/connections.js';
import { type ComposeProject, agentService, createComposeProject, requireDocker } from '../support/docker.js';
import { eventually } from '../support/daemon.js';
import { isAlive, scratchDir } from './support.js';
import { http } from '../support/http.js';
import { type SpawnedDaemon, buildOnce, daemonEnv, spawnDaemon } from '../support/spawn-daemon.js';

const docker = await requireDocker();

/** The limit of the report: 110 idle connections were enough to crash the daemon at it. */
const FD_LIMIT = 128;
const IDLE_CONNECTIONS = 110;
/** The daemon reads its limit again at most once a second (src/bridge/connections.ts). */
const LIMIT_REREAD_MS = 1_100;

/** A daemon process on `project`, bridge on 127.0.0.1, reconciling every second. */
async function startDaemon(project: ComposeProject, scratch: string): Promise<{ daemon: SpawnedDaemon; url: string }> {
  const daemon = spawnDaemon(project.dir, daemonEnv(project, scratch, { SYNC_INTERVAL: '1' }));
  return { daemon, url: await daemon.ready() };
}

async function lowerLimit(pid: number, limit: number): Promise<void> {
  await execa('prlimit', ['--pid', String(pid), `--nofile=${limit}:${limit}`]);
  await sleep(LIMIT_REREAD_MS);
}

interface Held {
  readonly socket: Socket;
  /** What the server wrote, if anything. */
  readonly reply: () => string;
  readonly closed: () => boolean;
}

/** A TCP connection to the bridge that sends nothing and keeps what the server writes. */
function idleConnection(url: string): Promise<Held> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    let reply = '';
    let closed = false;
    const socket = connect(Number(port), hostname, () => resolve({ socket, reply: () => reply, closed: () => closed }));
    socket.on('data', (chunk) => (reply += chunk.toString('latin1')));
    socket.on('error', () => {});
    socket.on('close', () => (closed = true));
    socket.once('error', reject);
  });
}

/** Count of the daemon's open descriptors. */
async function openFds(pid: number): Promise<number> {
  return (await execa('ls', [`/proc/${pid}/fd`])).stdout.split('\n').filter(Boolean).length;
}

interface Stream {
  readonly status: number;
  readonly ended: () => boolean;
  close(): void;
}

/** `GET /events/stream` on a connection of its own, from `localAddress`. */
function openStream(url: string, localAddress: string): Promise<Stream> {
  return new Promise((resolve, reject) => {
    const req = get(`${url}/events/stream`, { agent: false, localAddress }, (res) => {
      let ended = false;
      res.resume();
      res.on('error', () => {});
      res.on('close', () => (ended = true));
      resolve({ status: res.statusCode ?? 0, ended: () => ended, close: () => req.destroy() });
    });
    req.on('error', reject);
  });
}

describe.skipIf(!docker)('resource exhaustion', () => {
  let project: ComposeProject;
  beforeAll(async () => {
    await buildOnce();
    project = await createComposeProject({ a1: agentService(), a2: agentService(), gateway: agentService() });
  });
  afterAll(async () => {
    await project?.remove();
  });

  describe(`a daemon whose descriptor limit is ${FD_LIMIT}`, () => {
    let scratch: string;
    let daemon: SpawnedDaemon | undefined;
    let url: string;
    const held: Held[] = [];

    afterEach(async () => {
      for (const h of held.splice(0)) h.socket.destroy();
      await daemon?.kill();
      if (process.env.POOL_TEST_LOGS) console.log(daemon?.output());
      daemon = undefined;
      await rm(scratch, { recursive: true, force: true });
    });

    async function start(): Promise<SpawnedDaemon> {
      scratch = await scratchDir();
      ({ daemon, url } = await startDaemon(project, scratch));
      await lowerLimit(daemon.child.pid!, FD_LIMIT);
      return daemon;
    }

    it(`survives ${IDLE_CONNECTIONS} idle connections through reconciles, answers 503 past its cap, and serves again once they close`, async () => {
      const d = await start();
      const cap = connectionCap(FD_LIMIT);
      for (let i = 0; i < IDLE_CONNECTIONS; i++) held.push(await idleConnection(url));
      // Several reconciles (SYNC_INTERVAL=1) with every connection still held.
      await sleep(4_000);
      expect(isAlive(d.child.pid!), d.output()).toBe(true);
      const refused = held.filter((h) => h.reply() !== '');
      expect(refused).toHaveLength(IDLE_CONNECTIONS - cap);
      for (const h of refused) {
        expect(h.reply()).toMatch(/^HTTP\/1\.1 503 Service Unavailable\r\n/);
        expect(h.reply()).toMatch(/\r\nConnection: close\r\n/i);
        expect(JSON.parse(h.reply().slice(h.reply().indexOf('\r\n\r\n') + 4))).toEqual({ error: `too many connections (${cap} open); try again later` });
        expect(h.closed()).toBe(true);
      }
      expect(held.filter((h) => h.reply() === '' && !h.closed())).toHaveLength(cap);
      expect(await openFds(d.child.pid!)).toBeLessThan(FD_LIMIT);
      expect(d.output()).toContain(`bridge: ${cap} connections open, its cap (the descriptor limit ${FD_LIMIT} less a reserve)`);
      // Reconciles kept working under the cap: no descriptor was missing for docker.
      expect(d.output()).not.toMatch(/EMFILE/);
      // A fresh connection while full is told so, not dropped.
      const { status, body } = await http(url, 'GET', '/health');
      expect({ status, body }).toEqual({ status: 503, body: { error: `too many connections (${cap} open); try again later` } });

      for (const h of held.splice(0)) h.socket.destroy();
      await eventually(async () => expect((await http(url, 'GET', '/health')).status).toBe(200), 10_000, 100);
      expect(await http(url, 'POST', '/request', { agent: 'a1' })).toMatchObject({ status: 200, body: { status: 'started', agent: 'a1' } });
      expect(isAlive(d.child.pid!)).toBe(true);
    });

    it('logs Docker calls that fail for want of descriptors (EMFILE) and retries them, never crashing, when something else takes every descriptor', async () => {
      const d = await start();
      // The socket is host-only (mode 0660) and within the reserve, so it is not capped: enough
      // clients on it leave the daemon no descriptor for docker.
      const clients: Socket[] = [];
      try {
        for (let i = 0; i < FD_LIMIT; i++) {
          const client = connect(join(scratch, 's.sock'));
          client.on('error', () => {});
          clients.push(client);
        }
        // A reconcile reads Docker through its socket (the Engine API), so it is a connect that fails, not a spawn.
        await eventually(() => expect(d.output()).toMatch(/error reconciling with Docker \(will retry\): GET \S+: cannot connect to Docker at \S+: the daemon has no file descriptor left \(EMFILE/), 15_000, 100);
        await sleep(2_000);
        expect(isAlive(d.child.pid!), d.output()).toBe(true);
      } finally {
        for (const client of clients) client.destroy();
      }
      await eventually(async () => expect(await http(url, 'POST', '/request', { agent: 'a2' })).toMatchObject({ status: 200, body: { status: 'started', agent: 'a2' } }), 15_000, 250);
      expect(d.output()).not.toMatch(/Unhandled 'error' event/);
      expect(isAlive(d.child.pid!)).toBe(true);
    });
  });

  describe('live streams shared between client addresses', () => {
    let scratch: string;
    let daemon: SpawnedDaemon | undefined;
    let url: string;
    const streams: Stream[] = [];

    beforeAll(async () => {
      scratch = await scratchDir();
      ({ daemon, url } = await startDaemon(project, scratch));
    });
    afterAll(async () => {
      for (const s of streams) s.close();
      await daemon?.kill();
      await rm(scratch, { recursive: true, force: true });
    });

    const open = async (from: string) => {
      const s = await openStream(url, from);
      streams.push(s);
      return s;
    };

    it(`one address holding all ${LIVE_LIMITS.maxStreams} streams keeps no other out: another gets its ${LIVE_LIMITS.perAddress}, the hog's oldest make room and the hog cannot take them back`, async () => {
      const hog: Stream[] = [];
      for (let i = 0; i < LIVE_LIMITS.maxStreams; i++) hog.push(await open('127.0.0.1'));
      expect(hog.map((s) => s.status)).toEqual(Array(LIVE_LIMITS.maxStreams).fill(200));
      expect((await open('127.0.0.1')).status).toBe(503);

      const other: Stream[] = [];
      for (let i = 0; i < LIVE_LIMITS.perAddress; i++) other.push(await open('127.0.0.2'));
      expect(other.map((s) => s.status)).toEqual(Array(LIVE_LIMITS.perAddress).fill(200));
      // The hog's oldest streams were ended to make room, and the rest are still open.
      await eventually(() => expect(hog.map((s) => s.ended())).toEqual([...Array(LIVE_LIMITS.perAddress).fill(true), ...Array(LIVE_LIMITS.maxStreams - LIVE_LIMITS.perAddress).fill(false)]));
      // Its share is what an address is sure of, not more; the hog reconnecting is refused.
      expect((await open('127.0.0.2')).status).toBe(503);
      expect((await open('127.0.0.1')).status).toBe(503);
      expect(other.some((s) => s.ended())).toBe(false);
    });
  });
});

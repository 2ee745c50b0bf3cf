import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { Server as NetServer } from 'node:net';
import { type PoolConfig, formatWireTime } from '../contract/index.js';
import { type OpenedDriver, ProjectDirError, describeBackend, openDriver } from '../drivers/index.js';
import { listenOnSocket } from '../rpc/socket.js';
import { createStateStore, ensureActivityDir } from '../store/index.js';
import type { PoolClock } from './clock.js';
import { type Logger, describeError } from './log.js';
import { claimProject, ownerLockName } from './owner-lock.js';

export class DaemonStartError extends Error {
  override name = 'DaemonStartError';
  constructor(
    message: string,
    /** A configuration problem: restarting cannot fix it (main exits 78, which the unit does not restart). */
    readonly configProblem = false,
  ) {
    super(message);
  }
}

/** Step 1: the socket. It comes first: it is the lock that keeps a second daemon off the same pool (and POOL_DIR). */
export async function openSocket(server: Server, config: PoolConfig, log: Logger): Promise<Server> {
  try {
    await listenOnSocket(server, config.socketPath, config.socketGroup);
  } catch (error) {
    throw new DaemonStartError(describeError(error));
  }
  log.info(`socket listening on ${config.socketPath}`);
  return server;
}

/**
 * Step 2: the backend (the compose project, swarm stack or process roster), and this host's claim
 * on it. The claim comes before anything is read or counted: a second daemon on the project, on
 * another socket, would keep a pool of its own beside this one's and the host would run both pools' agents.
 */
export async function openBackend(config: PoolConfig, startedAt: number, log: Logger): Promise<{ opened: OpenedDriver; lock: NetServer }> {
  let opened: OpenedDriver;
  try {
    opened = await openDriver(config);
  } catch (error) {
    if (error instanceof ProjectDirError) throw new DaemonStartError(error.message, true);
    throw new DaemonStartError(`cannot read ${describeBackend(config)}: ${describeError(error)}`);
  }
  const { project } = opened;
  const kind = { compose: 'compose project ', swarm: 'swarm stack ', process: '' }[config.driver];
  let lock: NetServer;
  try {
    lock = await claimProject(`${kind}${project.name}`, ownerLockName(config.driver, project.name), () => ({
      pid: process.pid,
      socket: config.socketPath,
      poolDir: config.poolDir,
      started: formatWireTime(startedAt),
    }));
  } catch (error) {
    throw new DaemonStartError(describeError(error));
  }
  log.info(`${kind}${project.name}: agents ${project.services.filter((s) => !config.infraServices.includes(s)).join(', ') || '(none)'}; infrastructure ${config.infraServices.join(', ') || '(none)'}`);
  if (opened.notice !== undefined) log.info(opened.notice);
  return { opened, lock };
}

/**
 * Step 3: POOL_DIR, and the state saved in it. Without a writable POOL_DIR the pool cannot keep its
 * state across a crash: the daemon refuses to start, saying why.
 */
export async function openStore(config: PoolConfig, clock: PoolClock, log: Logger) {
  const store = createStateStore(config.poolDir);
  let loaded;
  try {
    // state.json's times are wall times: a step since the daemon began is taken up before they are read.
    clock.resync();
    loaded = await store.load(clock.now());
    await ensureActivityDir(config.poolDir);
    await access(config.poolDir, constants.W_OK);
  } catch (error) {
    throw new DaemonStartError(`cannot use POOL_DIR ${config.poolDir}: ${describeError(error)} (it must be a writable directory; check POOL_DIR, its parents and its mount)`);
  }
  if (loaded.corrupt) log.error(`state.json was unreadable (${loaded.corrupt.reason}); moved to ${loaded.corrupt.movedTo}; rebuilding the state from Docker`);
  if (loaded.ignored.length > 0) log.info(`state.json: ignored agents not in the pool: ${loaded.ignored.join(', ')}`);
  return { store, state: loaded.state };
}

import { EventEmitter, on } from 'node:events';
import { constants } from 'node:fs';
import { access, readFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo, Server as NetServer } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createConnectionLimit } from '../bridge/connections.js';
import { createLiveStreams } from '../bridge/live.js';
import { type PreparedReply, loadStatusPage, pageUnavailableReply } from '../bridge/page.js';
import { createBridgeServer } from '../bridge/server.js';
import { type EventsQuery, type HealthReply, type PoolConfig, type PoolEvent, TRANSITIONAL_EVENTS, formatWireTime, parseWireTime, redactConfig, reloadConfig } from '../contract/index.js';
import { ClientGoneError, type PoolService, type PoolSettings, parseAutostart, rulesFromConfig } from '../core/index.js';
import { type OpenedDriver, ProjectDirError, describeBackend, openDriver } from '../drivers/index.js';
import { createContext } from '../rpc/context.js';
import { appRouter } from '../rpc/routers/_app.js';
import { createRpcServer } from '../rpc/server.js';
import { listenOnSocket } from '../rpc/socket.js';
import { type EventLog, createActivityReader, createEventLog, createRosterWriter, createStateStore, ensureActivityDir } from '../store/index.js';
import { formatEvent } from '../text/event.js';
import { TIMELINE_MAX_EVENTS, TIMELINE_WINDOW_MS } from '../ui/view.js';
import { type Logger, describeError } from './log.js';
import { createMetrics } from './metrics.js';
import { type Clock, createPoolClock, systemClock } from './clock.js';
import { claimProject, ownerLockName } from './owner-lock.js';
import type { Notifier } from './notify.js';
import { createPool } from './pool/service.js';
import { VERSION } from './version.js';

export const AUTOSTART_FILE = 'autostart.txt';
const LOOPBACK = '127.0.0.1';
/** How long replies in flight may take to go out when the daemon stops. */
const SHUTDOWN_GRACE_MS = 500;

/** Docker events arrive in bursts (create, start, attach, ...): one reconcile per burst. */
const EVENT_DEBOUNCE_MS = 250;
const EVENTS_BACKOFF_MIN_MS = 1000;
const EVENTS_BACKOFF_MAX_MS = 60_000;
/** How often the wall clock is compared with the monotonic one: the longest a step goes unnoticed. */
const CLOCK_CHECK_MS = 1000;

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

export interface DaemonOptions {
  readonly config: PoolConfig;
  readonly log: Logger;
  /** The host's clocks; the tests' can be advanced, or stepped like an NTP correction. */
  readonly clock?: Clock;
  /** Called when a client asks the daemon to exit (`poolctl shutdown`); the process owner decides how. */
  readonly onShutdownRequest?: (reason: string) => void;
  /** systemd's readiness and status (Type=notify); none outside systemd. */
  readonly notifier?: Notifier;
}

const settingsOf = (config: PoolConfig): PoolSettings => ({
  rules: rulesFromConfig(config),
  stopTimeoutMs: config.stopTimeoutSeconds * 1000,
  queueMax: config.queueMax,
});

/**
 * The daemon: wires config, driver, store, pool and both faces, and owns every timer and server it
 * makes. `start` resolves once the socket and the bridge accept requests; `stop` undoes it all.
 */
export function createDaemon(options: DaemonOptions) {
  const poolClock = createPoolClock(options.clock ?? systemClock);
  const clock = poolClock.now;
  const { log } = options;
  let config = options.config;
  const startedAt = clock();
  const startedMonotonic = poolClock.monotonic();
  const bus = new EventEmitter();
  bus.setMaxListeners(0);
  const lifetime = new AbortController();
  const bridges = new Map<string, Server>();
  let socketServer: Server | undefined;
  /** Held from start-up to the end of `stop`: this daemon owns the project on this host. */
  let projectLock: NetServer | undefined;
  let opened: OpenedDriver | undefined;
  let pool: PoolService | undefined;
  let eventLog: EventLog | undefined;
  /** Default-bind addresses that could not be listened on, so each is reported once, not every reconcile. */
  const unbindable = new Set<string>();
  let bridgePort = config.port;
  /** `poolctl shutdown --stop-agents` stopped them before asking the daemon to exit. */
  let agentsStopped = false;
  let syncTimer: NodeJS.Timeout | undefined;
  let clockTimer: NodeJS.Timeout | undefined;
  let debounceTimer: NodeJS.Timeout | undefined;
  const background = new Set<Promise<unknown>>();
  let markReady!: () => void;
  const ready = new Promise<void>((resolve) => {
    markReady = resolve;
  });

  const onError = (what: string, error: unknown) => log.error(`error ${what}: ${describeError(error)}`);
  const runInBackground = (work: Promise<unknown>) => {
    const tracked = work.catch((error) => onError('in background work', error)).finally(() => background.delete(tracked));
    background.add(tracked);
  };

  function health(): HealthReply {
    const h = requirePool().health();
    return {
      status: h.ok ? 'ok' : 'degraded',
      ...(h.reason !== undefined && { reason: h.reason }),
      docker: h.docker ? 'ok' : 'unreachable',
      uptime_seconds: Math.round((poolClock.monotonic() - startedMonotonic) / 1000),
      version: VERSION,
    };
  }

  function requirePool(): PoolService {
    if (pool === undefined) throw new Error('daemon not started');
    return pool;
  }

  async function* subscribe(signal: AbortSignal): AsyncIterable<PoolEvent> {
    try {
      for await (const [event] of on(bus, 'event', { signal })) yield event as PoolEvent;
    } catch (error) {
      if (!signal.aborted) throw error;
    }
  }

  function configView(): Record<string, unknown> {
    return redactConfig(config);
  }

  const metrics = createMetrics({
    status: () => requirePool().status(),
    dockerReachable: () => requirePool().health().docker,
    projectValid: () => requirePool().health().projectValid,
    clock,
    monotonic: poolClock.monotonic,
  });

  const rpcDeps = {
    get pool() {
      return requirePool();
    },
    health,
    metrics,
    diagnostics: () => ({ bridge: { addresses: [...bridges.keys()], port: bridgePort } }),
    subscribe,
    configView,
    events: async (query: EventsQuery) => {
      if (eventLog === undefined) throw new Error('daemon not started');
      return eventLog.read({ limit: query.limit, agent: query.agent, since: query.since === undefined ? undefined : parseWireTime(query.since) });
    },
    requestShutdown: (reason: string, { agentsStopped: stopped = false } = {}) => {
      agentsStopped ||= stopped;
      // After the reply has been written: closing the servers first would cut it off.
      setImmediate(() => options.onShutdownRequest?.(reason));
    },
  };

  let statusPage: PreparedReply = pageUnavailableReply('the daemon is starting');
  const live = createLiveStreams({
    subscribe,
    status: () => requirePool().status(),
    history: async () => {
      if (eventLog === undefined) return [];
      return (await eventLog.read({ limit: TIMELINE_MAX_EVENTS, since: clock() - TIMELINE_WINDOW_MS })).events;
    },
    onError,
  });

  const connections = createConnectionLimit({ onFull: (message) => log.error(message) });

  /** Listens on `address`; a failure is a DaemonStartError naming the address and what to do. */
  async function listenBridge(address: string): Promise<void> {
    if (bridges.has(address)) return;
    const server = createBridgeServer({
      context: createContext(rpcDeps),
      maxBodySize: config.maxBodySize,
      token: () => config.token,
      onError,
      page: statusPage,
      live,
      connections,
      ready,
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (error: NodeJS.ErrnoException) =>
        reject(
          error.code === 'EADDRINUSE'
            ? new DaemonStartError(`port ${bridgePort} on ${address} is already in use (another openclaw-pool daemon?); stop it or set POOL_PORT`)
            : new DaemonStartError(`cannot listen on ${address}:${bridgePort}: ${error.message} (check POOL_BIND)`),
        ),
      );
      server.listen(bridgePort, address, () => resolve());
    });
    // With POOL_PORT=0 the first listener picks the port and the others share it.
    bridgePort = (server.address() as AddressInfo).port;
    bridges.set(address, server);
    unbindable.delete(address);
    log.info(`bridge listening on ${endpoint(address)}`);
  }

  const endpoint = (address: string) => `http://${address.includes(':') ? `[${address}]` : address}:${bridgePort}`;

  function closeBridge(address: string): void {
    const server = bridges.get(address);
    if (server === undefined) return;
    bridges.delete(address);
    server.close();
    server.closeIdleConnections();
    log.info(`bridge no longer listening on ${endpoint(address)}: the Docker network is gone`);
  }

  /**
   * SPEC §6, POOL_BIND unset: loopback, the gateway of each Docker network the agents use, and the
   * address `host-gateway` resolves to, each as soon as it exists; a network that is gone closes its
   * listener. Loopback is required; a discovered address that cannot be listened on (not on this
   * host's network namespace, say) is reported once and tried again at the next reconcile.
   * When Docker cannot be asked, the listeners stay as they are.
   */
  async function bindDefaultAddresses(): Promise<void> {
    if (config.bind !== undefined || opened === undefined) return;
    if (!bridges.has(LOOPBACK)) await listenBridge(LOOPBACK);
    let found: string[];
    try {
      found = await opened.bridgeAddresses();
    } catch (error) {
      onError('reading the Docker networks the agents use (the bridge keeps its addresses)', error);
      return;
    }
    const wanted = new Set([LOOPBACK, ...found]);
    for (const address of bridges.keys()) if (!wanted.has(address)) closeBridge(address);
    for (const address of wanted) {
      if (bridges.has(address)) continue;
      try {
        await listenBridge(address);
      } catch (error) {
        if (!unbindable.has(address)) log.error(`bridge not listening on ${endpoint(address)}: ${describeError(error)}; will retry after each reconcile`);
        unbindable.add(address);
      }
    }
  }

  function publishStatus(): void {
    options.notifier?.status(occupancy());
  }

  /** `systemctl status` shows this line. */
  function occupancy(): string {
    const status = requirePool().status();
    const queued = status.queue?.length ?? 0;
    const docker = requirePool().health().docker ? '' : '; Docker unreachable';
    return `${status.slots_total - status.slots_free} of ${status.slots_total} slots used${queued > 0 ? `, ${queued} waiting` : ''}${docker}`;
  }

  function scheduleReconcile(): void {
    if (debounceTimer !== undefined) return;
    debounceTimer = setTimeout(() => {
      debounceTimer = undefined;
      runInBackground(reconcileNow());
    }, EVENT_DEBOUNCE_MS);
  }

  async function reconcileNow(): Promise<void> {
    try {
      await requirePool().reconcile();
      metrics.reconciled();
    } catch (error) {
      metrics.reconcileFailed(error);
      onError('reconciling with Docker (will retry)', error);
      return;
    } finally {
      publishStatus();
    }
    await bindDefaultAddresses();
  }

  function armSyncTimer(): void {
    clearTimeout(syncTimer);
    syncTimer = setTimeout(() => {
      void reconcileNow().finally(() => {
        if (!lifetime.signal.aborted) armSyncTimer();
      });
    }, config.syncIntervalSeconds * 1000);
  }

  /**
   * Notices wall-clock steps: the pool moves to the new wall time with every time it keeps shifted
   * alike (PoolClock.resync), so what it shows is the host's time and what it measures is unchanged.
   */
  function watchClock(): void {
    clockTimer = setInterval(() => {
      const step = poolClock.resync();
      if (step === undefined) return;
      requirePool().clockStepped(step);
      log.info(`clock: the wall clock stepped ${step > 0 ? 'forward' : 'back'} ${(Math.abs(step) / 1000).toFixed(1)} s; grace periods, busy holds and waits are measured on the monotonic clock and keep their length`);
    }, CLOCK_CHECK_MS);
    clockTimer.unref();
  }

  /** Follows `docker events` for the project while the stream is up; restarts it with backoff when it drops. */
  async function followDockerEvents(): Promise<void> {
    const signal = lifetime.signal;
    const events = opened?.driver.events?.bind(opened.driver);
    if (events === undefined) return;
    let backoff = EVENTS_BACKOFF_MIN_MS;
    while (!signal.aborted) {
      const since = poolClock.monotonic();
      // Whatever changed before this stream attached (a compose command left by a killed daemon,
      // say) sends no event to it: look once more, just after it attaches.
      scheduleReconcile();
      try {
        for await (const _event of events(signal)) scheduleReconcile();
      } catch (error) {
        if (signal.aborted) return;
        onError('following docker events', error);
      }
      if (signal.aborted) return;
      if (poolClock.monotonic() - since > EVENTS_BACKOFF_MAX_MS) backoff = EVENTS_BACKOFF_MIN_MS;
      log.info(`docker events stream ended; reconnecting in ${backoff / 1000} s`);
      await sleep(backoff, undefined, { signal }).catch(() => {});
      backoff = Math.min(backoff * 2, EVENTS_BACKOFF_MAX_MS);
    }
  }

  async function autostart(): Promise<void> {
    let text: string;
    try {
      text = await readFile(join(config.poolDir, AUTOSTART_FILE), 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') onError(`reading ${AUTOSTART_FILE}`, error);
      return;
    }
    const list = parseAutostart(text);
    for (const { line, text: bad } of list.invalid) log.error(`${AUTOSTART_FILE}:${line}: ${JSON.stringify(bad)} is not a valid agent name; skipped`);
    const p = requirePool();
    const plan = p.planAutostart(list.agents);
    for (const { agent, reason } of plan.skipped) log.info(`autostart: skipping ${agent} (${reason})`);
    for (const agent of plan.start) {
      if (lifetime.signal.aborted) return;
      try {
        await p.request(agent, 'autostart', { allowEvict: false });
      } catch (error) {
        log.error(`autostart: ${agent} not started: ${describeError(error)}`);
      }
    }
  }

  return {
    /** The address the bridge answers on (the first one), for tests and logs. */
    bridgeUrl(): string {
      const [address] = bridges.keys();
      return `http://${address}:${bridgePort}`;
    },

    async start(): Promise<void> {
      // The socket comes first: it is the lock that keeps a second daemon off the same pool.
      const rpcServer = createRpcServer({
        router: appRouter,
        createContext: async () => {
          await ready;
          return createContext(rpcDeps);
        },
        onError: (error, path) => {
          if (error.code === 'INTERNAL_SERVER_ERROR' && !(error.cause instanceof ClientGoneError)) onError(`in ${path ?? 'rpc'}`, error.cause ?? error);
        },
      });
      try {
        await listenOnSocket(rpcServer, config.socketPath, config.socketGroup);
      } catch (error) {
        throw new DaemonStartError(describeError(error));
      }
      socketServer = rpcServer;
      log.info(`socket listening on ${config.socketPath}`);

      try {
        opened = await openDriver(config);
      } catch (error) {
        if (error instanceof ProjectDirError) throw new DaemonStartError(error.message, true);
        throw new DaemonStartError(`cannot read ${describeBackend(config)}: ${describeError(error)}`);
      }
      const { driver, project } = opened;
      const kind = { compose: 'compose project ', swarm: 'swarm stack ', process: '' }[config.driver];
      // Before anything is read or counted: a second daemon on the project, on another socket,
      // would keep a pool of its own beside this one's and the host would run both pools' agents.
      try {
        projectLock = await claimProject(`${kind}${project.name}`, ownerLockName(config.driver, project.name), () => ({
          pid: process.pid,
          socket: config.socketPath,
          poolDir: config.poolDir,
          started: formatWireTime(startedAt),
        }));
      } catch (error) {
        throw new DaemonStartError(describeError(error));
      }
      log.info(`${kind}${project.name}: agents ${project.services.filter((s) => !config.infraServices.includes(s)).join(', ') || '(none)'}; infrastructure ${config.infraServices.join(', ') || '(none)'}`);

      const store = createStateStore(config.poolDir);
      let loaded;
      try {
        // Without a writable POOL_DIR the pool cannot keep its state across a crash: refuse to start, saying why.
        // state.json's times are wall times: a step since the daemon began is taken up before they are read.
        poolClock.resync();
        loaded = await store.load(clock());
        await ensureActivityDir(config.poolDir);
        await access(config.poolDir, constants.W_OK);
      } catch (error) {
        throw new DaemonStartError(`cannot use POOL_DIR ${config.poolDir}: ${describeError(error)} (it must be a writable directory; check POOL_DIR, its parents and its mount)`);
      }
      if (loaded.corrupt) log.error(`state.json was unreadable (${loaded.corrupt.reason}); moved to ${loaded.corrupt.movedTo}; rebuilding the state from Docker`);
      if (loaded.ignored.length > 0) log.info(`state.json: ignored agents not in the pool: ${loaded.ignored.join(', ')}`);
      const roster = createRosterWriter(config.poolDir, config.heartbeatIntervalSeconds);
      const events = createEventLog(config.poolDir, { maxBytes: config.eventLogMaxBytes, keep: config.eventLogFiles }, (error) =>
        onError('appending to events.jsonl', error),
      );
      eventLog = events;

      pool = createPool(
        {
          driver: metrics.timed(driver),
          save: (state) => store.save(state),
          publish: (status) => roster.write(status, clock()),
          readActivity: createActivityReader(config.poolDir).read,
          onEvent: (event) => {
            metrics.onEvent(event);
            if (!TRANSITIONAL_EVENTS.has(event.type)) {
              log.info(formatEvent(event));
              void events.append(event);
            }
            bus.emit('event', event);
            publishStatus();
          },
          onError,
          clock,
        },
        loaded.state,
        settingsOf(config),
        project.services,
      );
      watchClock();

      statusPage = await loadStatusPage().catch((error: unknown) => {
        log.error(`status page unavailable: ${describeError(error)}`);
        return pageUnavailableReply(describeError(error));
      });
      // Listening comes before the first reconcile, which waits out a hung or down Docker: the
      // daemon is up (and systemd told so) even then. Requests wait for that reconcile (`ready`)
      // so that their decisions see the containers Docker runs now, not only state.json's.
      if (config.bind !== undefined) for (const address of config.bind) await listenBridge(address);
      else await bindDefaultAddresses();
      options.notifier?.ready(occupancy());
      await reconcileNow();
      markReady();
      armSyncTimer();
      runInBackground(followDockerEvents());
      runInBackground(autostart());
      log.info(`ready: ${config.maxAgents} slots, ${requirePool().status().slots_free} free; bridge on ${[...bridges.keys()].map(endpoint).join(', ')}`);
    },

    /** Re-reads the configuration (SIGHUP). What cannot change without a restart is named, not applied. */
    async reload(next: PoolConfig): Promise<void> {
      options.notifier?.reloading();
      const reloaded = reloadConfig(config, next);
      if (reloaded.unapplied.length > 0) log.error(`reload: ${reloaded.unapplied.join(', ')} changed; restart the daemon to apply them`);
      config = reloaded.config;
      const services = await opened?.driver.services().catch((error: unknown) => {
        onError('reading the compose services on reload', error);
        return undefined;
      });
      requirePool().configure(settingsOf(config), services);
      log.info(`reloaded configuration: MAX_AGENTS=${config.maxAgents}, EVICT_GRACE_SECONDS=${config.evictGraceSeconds}, SYNC_INTERVAL=${config.syncIntervalSeconds}`);
      armSyncTimer();
      await reconcileNow();
      options.notifier?.ready(occupancy());
    },

    /** Closes servers and timers. Agents keep running unless `stopAgents` (the systemd stop path). */
    async stop(reason: string, { stopAgents = false } = {}): Promise<void> {
      options.notifier?.stopping();
      const agents = stopAgents ? ', stopping pooled agents' : agentsStopped ? '; pooled agents stopped' : '; agents keep running';
      log.info(`shutting down (${reason})${agents}`);
      lifetime.abort();
      clearTimeout(syncTimer);
      clearTimeout(debounceTimer);
      clearInterval(clockTimer);
      // Clients waiting for a slot get an answer before the servers close.
      pool?.dismissWaiters();
      const servers = [...bridges.values(), ...(socketServer ? [socketServer] : [])];
      await Promise.all(
        servers.map(
          (server) =>
            new Promise<void>((resolve) => {
              server.close(() => resolve());
              server.closeIdleConnections();
              // Replies being written get a moment to go out; whatever still runs after that is cut.
              setTimeout(() => server.closeAllConnections(), SHUTDOWN_GRACE_MS).unref();
            }),
        ),
      );
      bridges.clear();
      await Promise.allSettled([...background]);
      if (pool !== undefined) {
        if (stopAgents) await pool.stopAll('shutdown');
        await pool.close();
      }
      // The events of the stop itself (a dismissed waiter, a stop confirmed) are appended last.
      await eventLog?.settled();
      // Last: a successor (systemctl restart) may own the project only once this daemon is done with it.
      projectLock?.close();
    },
  };
}

export type Daemon = ReturnType<typeof createDaemon>;

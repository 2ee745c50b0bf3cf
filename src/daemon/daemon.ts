import { EventEmitter, on } from 'node:events';
import type { Server } from 'node:http';
import type { Server as NetServer } from 'node:net';
import { createConnectionLimit } from '../bridge/connections.js';
import { createLiveStreams } from '../bridge/live.js';
import { type PreparedReply, loadStatusPage, pageUnavailableReply } from '../bridge/page.js';
import { createBridgeServer } from '../bridge/server.js';
import { type EventsQuery, type HealthReply, type PoolConfig, type PoolEvent, TRANSITIONAL_EVENTS, parseWireTime, redactConfig, reloadConfig } from '../contract/index.js';
import { ClientGoneError, type PoolService, type PoolSettings, type PoolState, rulesFromConfig } from '../core/index.js';
import type { OpenedDriver } from '../drivers/index.js';
import { type RpcDeps, createContext } from '../rpc/context.js';
import { appRouter } from '../rpc/routers/_app.js';
import { createRpcServer } from '../rpc/server.js';
import { type EventLog, createActivityReader, createEventLog, createRosterWriter } from '../store/index.js';
import { formatEvent } from '../text/event.js';
import { TIMELINE_MAX_EVENTS, TIMELINE_WINDOW_MS } from '../ui/view.js';
import { autostart } from './autostart.js';
import { type Bridges, closeServer, createBridges } from './bridges.js';
import { type Clock, createPoolClock, systemClock } from './clock.js';
import { type Logger, describeError } from './log.js';
import { createMetrics } from './metrics.js';
import type { Notifier } from './notify.js';
import { createPool } from './pool/service.js';
import { DaemonStartError, openBackend, openSocket, openStore } from './start-up.js';
import { type Sync, createSync } from './sync.js';
import { VERSION } from './version.js';

export { DaemonStartError } from './start-up.js';

/** How long replies in flight may take to go out when the daemon stops. */
const SHUTDOWN_GRACE_MS = 500;

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

/** The daemon as its process owner (main.ts, the tests) drives it. */
export interface Daemon {
  /** Resolves once the socket and the bridge accept requests and the first reconcile is done. */
  start(): Promise<void>;
  /** Re-reads the configuration (SIGHUP). What cannot change without a restart is named, not applied. */
  reload(next: PoolConfig): Promise<void>;
  /** Closes servers and timers. Agents keep running unless `stopAgents` (the systemd stop path). */
  stop(reason: string, options?: { stopAgents?: boolean }): Promise<void>;
  /** The address the bridge answers on (the first one), for tests and logs. */
  bridgeUrl(): string;
}

const settingsOf = (config: PoolConfig): PoolSettings => ({
  rules: rulesFromConfig(config),
  stopTimeoutMs: config.stopTimeoutSeconds * 1000,
  queueMax: config.queueMax,
});

/**
 * The daemon: wires config, driver, store, pool and both faces, and owns every timer and server it
 * makes. `start` runs the start-up steps (start-up.ts) in order; `stop` undoes it all.
 */
export function createDaemon(options: DaemonOptions): Daemon {
  const poolClock = createPoolClock(options.clock ?? systemClock);
  const clock = poolClock.now;
  const { log } = options;
  let config = options.config;
  const startedAt = clock();
  const startedMonotonic = poolClock.monotonic();
  const bus = new EventEmitter();
  bus.setMaxListeners(0);
  const lifetime = new AbortController();
  let socketServer: Server | undefined;
  /** Held from start-up to the end of `stop`: this daemon owns the project on this host. */
  let projectLock: NetServer | undefined;
  let opened: OpenedDriver | undefined;
  let pool: PoolService | undefined;
  let eventLog: EventLog | undefined;
  let sync: Sync | undefined;
  /** `poolctl shutdown --stop-agents` stopped them before asking the daemon to exit. */
  let agentsStopped = false;
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
  function requirePool(): PoolService {
    if (pool === undefined) throw new Error('daemon not started');
    return pool;
  }

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

  async function* subscribe(signal: AbortSignal): AsyncIterable<PoolEvent> {
    try {
      for await (const [event] of on(bus, 'event', { signal })) yield event as PoolEvent;
    } catch (error) {
      if (!signal.aborted) throw error;
    }
  }

  const metrics = createMetrics({
    status: () => requirePool().status(),
    dockerReachable: () => requirePool().health().docker,
    projectValid: () => requirePool().health().projectValid,
    clock,
    monotonic: poolClock.monotonic,
  });

  const rpcDeps: RpcDeps = {
    get pool() {
      return requirePool();
    },
    health,
    metrics,
    diagnostics: () => ({ bridge: { addresses: bridges.addresses(), port: bridges.port() } }),
    subscribe,
    configView: () => redactConfig(config),
    events: async (query: EventsQuery) => {
      if (eventLog === undefined) throw new Error('daemon not started');
      return eventLog.read({ limit: query.limit, agent: query.agent, since: query.since === undefined ? undefined : parseWireTime(query.since) });
    },
    requestShutdown: (reason, { agentsStopped: stopped = false } = {}) => {
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
  const bridges: Bridges = createBridges({
    createServer: () =>
      createBridgeServer({ context: createContext(rpcDeps), maxBodySize: config.maxBodySize, token: () => config.token, onError, page: statusPage, live, connections, ready }),
    port: config.port,
    log,
    failure: (message) => new DaemonStartError(message),
  });
  /** With POOL_BIND unset, the addresses follow the agents' networks (bridges.ts); refreshed after each reconcile. */
  const bindDefault = async () => {
    const backend = opened;
    if (config.bind === undefined && backend !== undefined) await bridges.bindDefault(() => backend.bridgeAddresses(), onError);
  };

  /** `systemctl status` shows this line. */
  function occupancy(): string {
    const status = requirePool().status();
    const queued = status.queue?.length ?? 0;
    const docker = requirePool().health().docker ? '' : '; Docker unreachable';
    return `${status.slots_total - status.slots_free} of ${status.slots_total} slots used${queued > 0 ? `, ${queued} waiting` : ''}${docker}`;
  }
  const publishStatus = () => options.notifier?.status(occupancy());

  /** Step 4: the pool service on the loaded state, its events going to the log, the event log, the metrics and the live streams. */
  function buildPool(driver: OpenedDriver, store: { save(state: PoolState): Promise<void> }, state: PoolState): PoolService {
    const roster = createRosterWriter(config.poolDir, config.heartbeatIntervalSeconds);
    const events = createEventLog(config.poolDir, { maxBytes: config.eventLogMaxBytes, keep: config.eventLogFiles }, (error) => onError('appending to events.jsonl', error));
    eventLog = events;
    return createPool(
      {
        driver: metrics.timed(driver.driver),
        save: (next) => store.save(next),
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
      state,
      settingsOf(config),
      driver.project.services,
    );
  }

  function createSyncFor(service: PoolService, driver: OpenedDriver): Sync {
    return createSync({
      pool: service,
      clock: poolClock,
      log,
      onError,
      syncIntervalMs: () => config.syncIntervalSeconds * 1000,
      events: driver.driver.events?.bind(driver.driver),
      reconciled: async (outcome) => {
        if (outcome.ok) metrics.reconciled();
        else metrics.reconcileFailed(outcome.error);
        publishStatus();
        if (outcome.ok) await bindDefault();
      },
      runInBackground,
      signal: lifetime.signal,
    });
  }

  /** Step 5: the bridge. Listening comes before the first reconcile, which waits out a hung or down Docker: the daemon is up (and systemd told so) even then. */
  async function openBridge(): Promise<void> {
    statusPage = await loadStatusPage().catch((error: unknown) => {
      log.error(`status page unavailable: ${describeError(error)}`);
      return pageUnavailableReply(describeError(error));
    });
    if (config.bind !== undefined) for (const address of config.bind) await bridges.listen(address);
    else await bindDefault();
  }

  return {
    bridgeUrl() {
      const [address] = bridges.addresses();
      return `http://${address}:${bridges.port()}`;
    },

    async start() {
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
      socketServer = await openSocket(rpcServer, config, log);
      const backend = await openBackend(config, startedAt, log);
      opened = backend.opened;
      projectLock = backend.lock;
      const { store, state } = await openStore(config, poolClock, log);
      pool = buildPool(backend.opened, store, state);
      sync = createSyncFor(pool, backend.opened);
      sync.watchClock();
      await openBridge();
      options.notifier?.ready(occupancy());
      // Requests wait for this reconcile (`ready`), so that their decisions see the containers Docker runs now, not only state.json's.
      await sync.reconcileNow();
      markReady();
      sync.begin();
      runInBackground(autostart(pool, config.poolDir, log, lifetime.signal));
      log.info(`ready: ${config.maxAgents} slots, ${pool.status().slots_free} free; bridge on ${bridges.addresses().map(bridges.endpoint).join(', ')}`);
    },

    async reload(next) {
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
      sync?.armTimer();
      await sync?.reconcileNow();
      options.notifier?.ready(occupancy());
    },

    async stop(reason, { stopAgents = false } = {}) {
      options.notifier?.stopping();
      const agents = stopAgents ? ', stopping pooled agents' : agentsStopped ? '; pooled agents stopped' : '; agents keep running';
      log.info(`shutting down (${reason})${agents}`);
      lifetime.abort();
      sync?.stop();
      // Clients waiting for a slot get an answer before the servers close.
      pool?.dismissWaiters();
      await Promise.all([bridges.closeAll(SHUTDOWN_GRACE_MS), ...(socketServer ? [closeServer(socketServer, SHUTDOWN_GRACE_MS)] : [])]);
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

import { EventEmitter, on } from 'node:events';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { Server as NetServer } from 'node:net';
import { ClientGoneError, type HealthReply, type PoolConfig, type PoolEvent, TRANSITIONAL_EVENTS, reloadConfig } from '../contract/index.js';
import { HOST_ENTRY, type TokenBook } from '../contract/tokens.js';
import { type PoolService, type PoolSettings, type PoolState, formatBytes, parseMemAvailable, parseMemTotal, rulesFromConfig } from '../core/index.js';
import type { OpenedDriver } from '../drivers/index.js';
import { createContext } from '../rpc/context.js';
import { appRouter } from '../rpc/routers/_app.js';
import { createRpcServer } from '../rpc/server.js';
import { type EventLog, createActivityReader, createEventLog, createRosterWriter } from '../store/index.js';
import { formatEvent } from '../text/event.js';
import { autostart } from './autostart.js';
import { closeServer } from './bridges.js';
import { type Callers, createCallers } from './callers.js';
import { type Clock, type PoolClock, createPoolClock, systemClock } from './clock.js';
import { type Faces, createFaces } from './faces.js';
import { type Logger, describeError } from './log.js';
import { type Metrics, createMetrics } from './metrics.js';
import type { Notifier } from './notify.js';
import { createPool } from './pool/service.js';
import { openBackend, openSocket, openStore } from './start-up.js';
import { type Sync, createSync } from './sync.js';
import { VERSION } from './version.js';

export { DaemonStartError } from './start-up.js';

/** How long replies in flight may take to go out when the daemon stops. */
const SHUTDOWN_GRACE_MS = 500;

export interface DaemonOptions {
  readonly config: PoolConfig;
  /** POOL_TOKENS_FILE's tokens, as read with `config` (readTokenBook); none when it is unset. */
  readonly tokens?: TokenBook;
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
  /** Re-reads the configuration (SIGHUP), and the tokens read with it. What cannot change without a restart is named, not applied. */
  reload(next: PoolConfig, tokens?: TokenBook): Promise<void>;
  /** Closes servers and timers. Agents keep running unless `stopAgents` (the systemd stop path). */
  stop(reason: string, options?: { stopAgents?: boolean }): Promise<void>;
  /** The address the bridge answers on (the first one), for tests and logs. */
  bridgeUrl(): string;
}

/** What the log says of the tokens: who has one, never a token. */
function describeTokens(book: TokenBook | undefined): string {
  if (book === undefined) return 'per-agent tokens: none (POOL_TOKENS_FILE unset)';
  const names = [...book.agents, ...(book.hasHost ? [HOST_ENTRY] : [])];
  return `per-agent tokens: ${names.length === 0 ? 'none' : names.join(', ')}`;
}

/** The host's MemTotal, which `MEMORY_BUDGET=auto` is taken from: read only then, at start-up and on each reload. */
function memTotalFor(config: PoolConfig): number | undefined {
  if (config.memoryBudget !== 'auto') return undefined;
  try {
    return parseMemTotal(readFileSync('/proc/meminfo', 'utf8'));
  } catch {
    return undefined;
  }
}

const settingsOf = (config: PoolConfig): PoolSettings => ({
  rules: rulesFromConfig(config, memTotalFor(config)),
  stopTimeoutMs: config.stopTimeoutSeconds * 1000,
  queueMax: config.queueMax,
  syncIntervalMs: config.syncIntervalSeconds * 1000,
});

/** `systemctl status` shows this line. */
function occupancy(pool: PoolService): string {
  const status = pool.status();
  const queued = status.queue?.length ?? 0;
  const docker = pool.health().docker ? '' : '; Docker unreachable';
  return `${status.slots_total - status.slots_free} of ${status.slots_total} slots used${queued > 0 ? `, ${queued} waiting` : ''}${docker}`;
}

interface Wiring {
  readonly config: PoolConfig;
  readonly clock: PoolClock;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly onError: (what: string, error: unknown) => void;
  /** Where every pool event goes besides the log, the event log and the metrics: the live streams and systemd's status. */
  readonly onEvent: (event: PoolEvent) => void;
  readonly callers: Callers;
}

/** Start-up step 4: the pool service on the loaded state; its events go to the log, the event log and the metrics. */
function buildPool(w: Wiring, opened: OpenedDriver, store: { save(state: PoolState): Promise<void> }, state: PoolState): { pool: PoolService; eventLog: EventLog } {
  const { config, log, metrics, onError } = w;
  const roster = createRosterWriter(config.poolDir, config.heartbeatIntervalSeconds, config.activityMode);
  const eventLog = createEventLog(config.poolDir, { maxBytes: config.eventLogMaxBytes, keep: config.eventLogFiles }, (error) => onError('appending to events.jsonl', error));
  const pool = createPool(
    {
      driver: w.callers.watching(metrics.timed(opened.driver)),
      save: (next) => store.save(next),
      publish: (status) => roster.write(status, w.clock.now()),
      readActivity: createActivityReader(config.poolDir).read,
      readMemAvailable: async () => parseMemAvailable(await readFile('/proc/meminfo', 'utf8')),
      onEvent: (event) => {
        metrics.onEvent(event);
        if (!TRANSITIONAL_EVENTS.has(event.type)) {
          log.info(formatEvent(event));
          void eventLog.append(event);
        }
        w.onEvent(event);
      },
      onError,
      clock: w.clock.now,
    },
    state,
    settingsOf(config),
    opened.project.services,
  );
  return { pool, eventLog };
}

/**
 * The daemon: wires config, driver, store, pool and both faces, and owns every timer and server it
 * makes. `start` runs the start-up steps (start-up.ts and below) in order; `stop` undoes it all.
 * Longer than the other factories on purpose: it is the composition root, and its closure holds
 * the handles `stop` must close, in the order it must close them; each step is a function of its own.
 */
export function createDaemon(options: DaemonOptions): Daemon {
  const poolClock = createPoolClock(options.clock ?? systemClock);
  const { log } = options;
  let config = options.config;
  let tokens = options.tokens;
  const startedAt = poolClock.now();
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
  const requirePool = (): PoolService => {
    if (pool === undefined) throw new Error('daemon not started');
    return pool;
  };
  const publishStatus = () => options.notifier?.status(occupancy(requirePool()));

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
    clock: poolClock.now,
    monotonic: poolClock.monotonic,
  });
  const callers = createCallers({ config: () => config, tokens: () => tokens, listsAddresses: () => opened?.listsAddresses === true, bridgeAddresses: () => bridges.addresses() });
  const faces: Faces = createFaces({
    get pool() {
      return requirePool();
    },
    health,
    metrics,
    subscribe,
    requestShutdown: (reason, { agentsStopped: stopped = false } = {}) => {
      agentsStopped ||= stopped;
      // After the reply has been written: closing the servers first would cut it off.
      setImmediate(() => options.onShutdownRequest?.(reason));
    },
    config: () => config,
    eventLog: () => eventLog,
    clock: poolClock.now,
    log,
    onError,
    ready,
    callers: () => callers.directory(),
    onCaller: (caller, via, verdict) => metrics.caller(caller, via, verdict),
  });
  const { bridges } = faces;
  /** With POOL_BIND unset, the addresses follow the agents' networks (bridges.ts); refreshed after each reconcile. */
  const bindDefault = async () => {
    const backend = opened;
    if (config.bind === undefined && backend !== undefined) await bridges.bindDefault(() => backend.bridgeAddresses(), onError);
  };

  const syncOf = (service: PoolService, backend: OpenedDriver): Sync =>
    createSync({
      pool: service,
      clock: poolClock,
      log,
      onError,
      syncIntervalMs: () => config.syncIntervalSeconds * 1000,
      events: backend.driver.events?.bind(backend.driver),
      reconciled: async (outcome) => {
        if (outcome.ok) metrics.reconciled();
        else metrics.reconcileFailed(outcome.error);
        publishStatus();
        if (outcome.ok) await bindDefault();
        callers.refresh();
      },
      runInBackground,
      signal: lifetime.signal,
    });

  /** Start-up step 5: the bridge. Listening comes before the first reconcile, which waits out a hung or down Docker: the daemon is up (and systemd told so) even then. */
  async function openBridge(): Promise<void> {
    await faces.loadPage();
    if (config.bind !== undefined) for (const address of config.bind) await bridges.listen(address);
    else await bindDefault();
  }

  async function start(): Promise<void> {
    const rpcServer = createRpcServer({
      router: appRouter,
      createContext: async () => {
        await ready;
        return createContext(faces.rpc);
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
    const onEvent = (event: PoolEvent) => {
      bus.emit('event', event);
      publishStatus();
    };
    const built = buildPool({ config, clock: poolClock, log, metrics, onError, onEvent, callers }, backend.opened, store, state);
    ({ pool, eventLog } = built);
    sync = syncOf(built.pool, backend.opened);
    sync.watchClock();
    if (tokens !== undefined) log.info(describeTokens(tokens));
    await openBridge();
    options.notifier?.ready(occupancy(built.pool));
    // Requests wait for this reconcile (`ready`), so that their decisions see the containers Docker runs now, not only state.json's.
    await sync.reconcileNow();
    markReady();
    sync.begin();
    runInBackground(autostart(built.pool, config.poolDir, log, lifetime.signal));
    const budget = built.pool.status().memory_budget_bytes;
    log.info(`ready: ${config.maxAgents} slots, ${built.pool.status().slots_free} free${budget === undefined ? '' : `, memory budget ${formatBytes(budget)}`}; bridge on ${bridges.addresses().map(bridges.endpoint).join(', ')}`);
  }

  async function stop(reason: string, { stopAgents = false } = {}): Promise<void> {
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
  }

  return {
    start,
    stop,
    async reload(next, nextTokens) {
      options.notifier?.reloading();
      const reloaded = reloadConfig(config, next);
      // Before anything changes: MEMORY_BUDGET=auto throws when MemTotal cannot be read, and the running configuration stays.
      const settings = settingsOf(reloaded.config);
      if (reloaded.unapplied.length > 0) log.error(`reload: ${reloaded.unapplied.join(', ')} changed; restart the daemon to apply them`);
      config = reloaded.config;
      // Said whenever there is or was a book, so that a revoke can be seen to have been applied.
      if (tokens !== undefined || nextTokens !== undefined) log.info(`reloaded ${describeTokens(nextTokens)}`);
      tokens = nextTokens;
      callers.refresh();
      const services = await opened?.driver.services().catch((error: unknown) => {
        onError('reading the compose services on reload', error);
        return undefined;
      });
      requirePool().configure(settings, services);
      log.info(`reloaded configuration: MAX_AGENTS=${config.maxAgents}, EVICT_GRACE_SECONDS=${config.evictGraceSeconds}, SYNC_INTERVAL=${config.syncIntervalSeconds}`);
      sync?.armTimer();
      await sync?.reconcileNow();
      options.notifier?.ready(occupancy(requirePool()));
    },
    bridgeUrl() {
      const [address] = bridges.addresses();
      return `http://${address}:${bridges.port()}`;
    },
  };
}

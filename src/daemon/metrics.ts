import { performance } from 'node:perf_hooks';
// The four parts used, not the package's index: that also loads cluster aggregation, the
// pushgateway and default metrics, 4.7 MB of resident memory the daemon never uses (bundled: 2.0
// against 6.7 MB over a bare node).
import Counter from 'prom-client/lib/counter.js';
import Gauge from 'prom-client/lib/gauge.js';
import Histogram from 'prom-client/lib/histogram.js';
import Registry from 'prom-client/lib/registry.js';
import type { MetricFamily, MetricsReply, PoolEvent, StatusReply } from '../contract/index.js';
import type { AgentDriver } from '../core/driver.js';
import type { ObservedAgent } from '../core/reconcile.js';
import { type PoolGauges, evictionCause, memoryGauges, poolGauges, reconcileLagSeconds, settledFigures } from '../core/metrics.js';
import type { OperationMetrics } from '../rpc/context.js';

const PREFIX = 'openclaw_pool_';
/** A `docker ps` answers in ~0.06 s, `compose up` in ~0.2-1 s, a stop within STOP_TIMEOUT_SECONDS plus a kill. */
const DOCKER_BUCKETS_SECONDS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];
/** A queued request waits at most MAX_WAIT_SECONDS (an hour). */
const WAIT_BUCKETS_SECONDS = [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];
/** Docker's messages can be long (a whole stderr line); a label should stay readable. */
const ERROR_LABEL_MAX_CHARS = 200;

export interface MetricsDeps {
  readonly status: () => StatusReply;
  readonly dockerReachable: () => boolean;
  /** False while the project's definition cannot start anything (a compose file that does not load). */
  readonly projectValid: () => boolean;
  /** The pool's time (epoch ms): error timestamps. */
  readonly clock: () => number;
  /** Monotonic milliseconds for durations (reconcile lag, Docker timings), which a wall clock that steps would distort. */
  readonly monotonic?: () => number;
}

/** The daemon's metrics: what the operations report (the port rpc owns), and what the daemon feeds in besides. */
export interface Metrics extends OperationMetrics {
  /** Counts a pool event, and an eviction by its cause. */
  onEvent(event: PoolEvent): void;
  /** A reconcile succeeded: the lag starts again from now. */
  reconciled(): void;
  /** A reconcile failed: counted, and its message kept as the last error. */
  reconcileFailed(error: unknown): void;
  /** The same driver, with each operation's duration and outcome observed. */
  timed(driver: AgentDriver): AgentDriver;
  /** One identified POST on the bridge (CALLER_POLICY=agents): who called (`host`, an agent, `stranger`), how it was known, its verdict. */
  caller(caller: string, via: string, verdict: string): void;
}

type Registers = Registry[];

/** What is counted as it happens: replies by outcome, how long the requests that queued waited, pool events and evictions. */
function operationFamilies(registers: Registers, takeHeartbeats: () => number) {
  const operations = new Counter({
    name: `${PREFIX}requests_total`,
    help: 'Operations answered on the socket and the bridge (request, release, heartbeat), by outcome: the status of the reply.',
    labelNames: ['operation', 'outcome'],
    registers,
    collect() {
      const heartbeats = takeHeartbeats();
      if (heartbeats > 0) this.inc({ operation: 'heartbeat', outcome: 'ok' }, heartbeats);
    },
  });
  const waits = new Histogram({
    name: `${PREFIX}wait_seconds`,
    help: 'How long requests that asked to wait (wait_seconds) queued for a slot, by outcome.',
    labelNames: ['outcome'],
    buckets: WAIT_BUCKETS_SECONDS,
    registers,
  });
  const events = new Counter({
    name: `${PREFIX}events_total`,
    help: 'Pool events by type (started, evicted, released, stopped, lost, adopted, failed, pool_full, waiting, waited, starting, stopping, idle).',
    labelNames: ['type'],
    registers,
  });
  const evictions = new Counter({
    name: `${PREFIX}evictions_total`,
    help: 'Agents evicted, by cause: to make room for a request (request), to bring the pool back under its cap after a reconcile (reconcile), for the host\'s memory (memory_pressure), or idle for IDLE_STOP_SECONDS (idle).',
    labelNames: ['cause'],
    registers,
  });
  return { operations, waits, events, evictions };
}

/** Docker's side: driver operations' durations, reconciles, their lag and their last error. */
function dockerFamilies(registers: Registers, reconcileLag: () => number) {
  const docker = new Histogram({
    name: `${PREFIX}docker_operation_seconds`,
    help: 'Duration of driver operations (start: compose up; stop: compose stop, then kill; list: docker ps; services: compose config), by outcome.',
    labelNames: ['operation', 'outcome'],
    buckets: DOCKER_BUCKETS_SECONDS,
    registers,
  });
  const reconciles = new Counter({
    name: `${PREFIX}reconciles_total`,
    help: 'Reconciliations with Docker, by outcome.',
    labelNames: ['outcome'],
    registers,
  });
  new Gauge({
    name: `${PREFIX}reconcile_lag_seconds`,
    help: 'Seconds since the last successful reconcile (since start-up before the first one).',
    registers,
    collect() {
      this.set(reconcileLag());
    },
  });
  const lastErrorTime = new Gauge({
    name: `${PREFIX}last_reconcile_error_timestamp_seconds`,
    help: 'Unix time of the last failed reconcile; 0 when none failed since start-up.',
    registers,
  });
  const lastErrorInfo = new Gauge({
    name: `${PREFIX}last_reconcile_error_info`,
    help: 'The last reconcile error, as the error label (value 1); absent when none failed since start-up.',
    labelNames: ['error'],
    registers,
  });
  lastErrorTime.set(0);
  return { docker, reconciles, lastErrorTime, lastErrorInfo };
}

/** The pool's gauges, read from its status and health at scrape time. */
function scrapedGauges(registers: Registers, deps: MetricsDeps): void {
  /** A yes/no read at scrape time, as 1 or 0. */
  const flagGauge = (name: string, help: string, read: () => boolean) =>
    new Gauge({
      name: `${PREFIX}${name}`,
      help,
      registers,
      collect() {
        this.set(read() ? 1 : 0);
      },
    });
  flagGauge('docker_up', '1 when the last reconcile reached Docker, 0 when it could not.', deps.dockerReachable);
  flagGauge('project_valid', '1 when the project loads (starts can succeed), 0 while it does not: requests that would start are refused and nobody is evicted.', deps.projectValid);

  const poolGauge = (name: string, help: string, read: (gauges: PoolGauges) => number) =>
    new Gauge({
      name: `${PREFIX}${name}`,
      help,
      registers,
      collect() {
        this.set(read(poolGauges(deps.status())));
      },
    });
  new Gauge({
    name: `${PREFIX}agents`,
    help: 'Pooled agents by state (starting, running and stopping all count against MAX_AGENTS).',
    labelNames: ['state'],
    registers,
    collect() {
      for (const [state, count] of Object.entries(poolGauges(deps.status()).agents)) this.set({ state }, count);
    },
  });
  poolGauge('slots_total', 'MAX_AGENTS: the pool size.', (g) => g.slotsTotal);
  poolGauge('slots_free', 'Slots free now.', (g) => g.slotsFree);
  poolGauge('queue_length', 'Agents queued for a slot.', (g) => g.queueLength);
  poolGauge('queue_waiters', 'Requests waiting in the queue (several may wait for one agent).', (g) => g.queueWaiters);
  // Reset at each scrape: the series are those of the status now, so a budget unset or an agent gone leaves none behind.
  new Gauge({
    name: `${PREFIX}memory_bytes`,
    help: 'With MEMORY_BUDGET: the budget, the expected memory of the agents counted against it (used), and what is left (free), by kind.',
    labelNames: ['kind'],
    registers,
    collect() {
      this.reset();
      for (const { kind, bytes } of memoryGauges(deps.status()).pool) this.set({ kind }, bytes);
    },
  });
  new Gauge({
    name: `${PREFIX}agent_memory_bytes`,
    help: 'With MEMORY_BUDGET, per pooled agent: its memory at the last sample (now), the highest of its current run (peak), and what the budget counts it at (expected).',
    labelNames: ['agent', 'kind'],
    registers,
    collect() {
      this.reset();
      for (const { agent, kind, bytes } of memoryGauges(deps.status()).agents) this.set({ agent, kind }, bytes);
    },
  });
}

/**
 * The daemon's Prometheus metrics, on a registry of its own (several daemons may share a process,
 * as in the tests). Fed by the pool's events, the operations' replies, a timing decorator around
 * the driver and the reconcile loop; the pool's gauges are read from its status at scrape time.
 */
export function createMetrics(deps: MetricsDeps): Metrics {
  const monotonic = deps.monotonic ?? (() => performance.now());
  const registry = new Registry();
  const registers = [registry];
  const since = monotonic();
  let lastReconcileAt: number | undefined;
  // Heartbeats are the hot path (tens of thousands a second under load): a plain integer there,
  // folded into the counter when it is scraped.
  let heartbeats = 0;
  const { operations, waits, events, evictions } = operationFamilies(registers, () => {
    const unscraped = heartbeats;
    heartbeats = 0;
    return unscraped;
  });
  // In the order the exposition lists them.
  const { docker, reconciles, lastErrorTime, lastErrorInfo } = dockerFamilies(registers, () => reconcileLagSeconds(lastReconcileAt, since, monotonic()));
  scrapedGauges(registers, deps);
  // The bridge's hot path too (every heartbeat is identified): counted in a map, folded in when scraped.
  const unscrapedCalls = new Map<string, { caller: string; via: string; verdict: string; count: number }>();
  new Counter({
    name: `${PREFIX}bridge_callers_total`,
    help: 'POSTs on the bridge under CALLER_POLICY=agents, by who called (host, an agent or infrastructure service, or stranger), how that was established (peer, token, host; none when refused before), and the verdict (allowed, forbidden, unauthorized, stranger).',
    labelNames: ['caller', 'via', 'verdict'],
    registers,
    collect() {
      for (const { count, ...labels } of unscrapedCalls.values()) this.inc(labels, count);
      unscrapedCalls.clear();
    },
  });

  const count = (operation: 'request' | 'release', settled: Parameters<typeof settledFigures>[0]) => {
    const { outcome, waitedSeconds } = settledFigures(settled);
    operations.inc({ operation, outcome });
    if (waitedSeconds !== undefined) waits.observe({ outcome }, waitedSeconds);
  };

  return {
    async settle(operation, reply) {
      try {
        const value = await reply;
        count(operation, { reply: value });
        return value;
      } catch (error) {
        count(operation, { error });
        throw error;
      }
    },
    heartbeat() {
      heartbeats += 1;
    },
    caller(caller, via, verdict) {
      const key = `${caller} ${via} ${verdict}`;
      const entry = unscrapedCalls.get(key);
      if (entry === undefined) unscrapedCalls.set(key, { caller, via, verdict, count: 1 });
      else entry.count += 1;
    },
    async render(format): Promise<MetricsReply> {
      // prom-client's typings declare `type` a numeric enum; at run time it is the name ('counter').
      if (format === 'json') return { format, families: (await registry.getMetricsAsJSON()) as unknown as MetricFamily[] };
      return { format, content_type: registry.contentType, text: await registry.metrics() };
    },
    onEvent(event) {
      events.inc({ type: event.type });
      const cause = evictionCause(event);
      if (cause !== undefined) evictions.inc({ cause });
    },
    reconciled() {
      lastReconcileAt = monotonic();
      reconciles.inc({ outcome: 'ok' });
    },
    reconcileFailed(error) {
      reconciles.inc({ outcome: 'error' });
      lastErrorTime.set(Math.floor(deps.clock() / 1000));
      // One series at a time: the previous message goes when a new one comes.
      lastErrorInfo.reset();
      lastErrorInfo.set({ error: (error instanceof Error ? error.message : String(error)).slice(0, ERROR_LABEL_MAX_CHARS) }, 1);
    },
    timed: (driver) => timedDriver(driver, (operation, outcome, seconds) => docker.observe({ operation, outcome }, seconds), monotonic),
  };
}

/** `driver` with each Docker operation's duration (seconds) and outcome (`ok`, `error`) passed to `observe`. */
function timedDriver(driver: AgentDriver, observe: (operation: string, outcome: string, seconds: number) => void, monotonic: () => number): AgentDriver {
  const { unpause, definitionProblem, usage, memoryLimits } = driver;
  const time =
    <A extends unknown[], R>(operation: string, run: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      const started = monotonic();
      const done = (outcome: string) => observe(operation, outcome, (monotonic() - started) / 1000);
      try {
        const result = await run(...args);
        done('ok');
        return result;
      } catch (error) {
        done('error');
        throw error;
      }
    };
  return {
    services: time('services', () => driver.services()),
    start: time('start', (agent: string) => driver.start(agent)),
    stop: time('stop', (agent: string, timeoutMs: number) => driver.stop(agent, timeoutMs)),
    list: time('list', () => driver.list()),
    ...(unpause !== undefined && { unpause: time('unpause', (agent: string) => unpause.call(driver, agent)) }),
    ...(usage !== undefined && { usage: time('usage', (listed: readonly ObservedAgent[]) => usage.call(driver, listed)) }),
    // The last load's figures, read in memory: no Docker operation.
    ...(memoryLimits !== undefined && { memoryLimits: memoryLimits.bind(driver) }),
    // A stat of the definition's files, nearly always: not a Docker operation worth a histogram.
    ...(definitionProblem !== undefined && { definitionProblem: definitionProblem.bind(driver) }),
    // A stream, not an operation: passed through untimed.
    ...(driver.events !== undefined && { events: driver.events.bind(driver) }),
  };
}

import type { PoolEventType } from '../../contract/index.js';
import {
  type AgentDriver,
  type AgentUsage,
  type ObservedAgent,
  IDLE_STOPPER,
  type MemorySample,
  PRESSURE_STOPPER,
  type PoolRules,
  type WorkSample,
  applyActivityMarks,
  decideIdleStops,
  decidePressureStop,
  formatBytes,
  noticeUnresponsive,
  latestUsage,
  noPressure,
  reconcile,
  recordUsage,
  samplePressure,
  sampleWork,
  UNRESPONSIVE_INTERVALS,
  workReason,
} from '../../core/index.js';
import type { CatalogueCell } from './catalogue.js';
import type { InFlight } from './in-flight.js';
import type { StateCell } from './state-cell.js';

export interface ReconcilerDeps {
  readonly driver: AgentDriver;
  readonly cell: StateCell;
  readonly inFlight: InFlight;
  readonly catalogue: CatalogueCell;
  /** Activity marks of the given agents (the pool's), as of `now`. */
  readonly readActivity: (agents: readonly string[], now: number) => Promise<ReadonlyMap<string, number>>;
  readonly rules: () => PoolRules;
  readonly clock: () => number;
  readonly emit: (type: PoolEventType, agent: string, by: string, extra: { reason: string }) => void;
  readonly onError: (what: string, error: unknown) => void;
  /** A slot may have come free: the wait line is served. */
  readonly slotsChanged: () => void;
  /** Stops an agent the pool must shed (over the cap, for the host's memory, idle), sharing a stop already in flight; `by`, `reason` and `type` (default `evicted`) go to its events. */
  readonly shed: (agent: string, by: string, reason: string, type?: PoolEventType) => Promise<void>;
  /** The host's MemAvailable in bytes (/proc/meminfo), for the pressure guard; absent where it cannot be read. */
  readonly readMemAvailable?: () => Promise<number | undefined>;
  /** SYNC_INTERVAL in ms: the guard reads MemAvailable at most this often, so it stops one agent per interval. */
  readonly syncIntervalMs: () => number;
}

/** Brings the pool's state in line with what Docker runs (core `reconcile`); runs coalesce. */
export interface Reconciler {
  /** Runs a reconcile now, or once more right after the one in progress; concurrent callers share it. */
  run(): Promise<void>;
  /** Resolves once no reconcile is running (at once when none is); never rejects. */
  idle(): Promise<void>;
  /** Whether the last listing succeeded, and why not. */
  docker(): { readonly ok: boolean; readonly reason?: string };
  /** Each agent's memory at the last sample, while a memory budget is set (empty otherwise); a new map per sample. */
  memoryNow(): ReadonlyMap<string, MemorySample>;
}

/** No sample: one map for all, so that a pool without a budget never makes the status cache miss. */
const NO_SAMPLE: ReadonlyMap<string, MemorySample> = new Map();

export function createReconciler(deps: ReconcilerDeps): Reconciler {
  let docker: { ok: boolean; reason?: string } = { ok: true };
  let running: Promise<void> | undefined;
  let again = false;
  let pressure = noPressure;
  let pressureReadAt = -Infinity;
  let workSamples: ReadonlyMap<string, WorkSample> = new Map();
  let unresponsive: ReadonlyMap<string, number> = new Map();
  // A failed sample keeps the last one: it is still the latest there is.
  let memoryNow = NO_SAMPLE;

  /** The guard's verdict on the state: starts are refused while it acts. */
  function showPressure(): void {
    const { pressure: was, ...state } = deps.cell.get();
    // Unchanged, the state is left as it is: a copy on every reconcile would be a change to save.
    if ((was === true) === pressure.active) return;
    deps.cell.set(pressure.active ? { ...state, pressure: true } : state);
    // Requests that waited in line through the pressure may start now.
    if (was && !pressure.active) deps.slotsChanged();
  }

  /**
   * The pressure guard: one reading of MemAvailable per SYNC_INTERVAL (reconciles on Docker events
   * come more often); while it acts, the least recently active agent that may be evicted is stopped,
   * one per reading, so each stop shows in MemAvailable before the next is decided.
   */
  async function guardPressure(): Promise<Promise<void> | undefined> {
    const min = deps.rules().pressureMinBytes;
    if (min === undefined || deps.readMemAvailable === undefined) {
      pressure = noPressure;
      return showPressure();
    }
    if (deps.clock() - pressureReadAt < deps.syncIntervalMs()) return undefined;
    pressureReadAt = deps.clock();
    const available = await deps.readMemAvailable().catch(() => undefined);
    if (available === undefined) return undefined;
    pressure = samplePressure(pressure, available, min);
    showPressure();
    const stop = pressure.active ? decidePressureStop(deps.cell.get(), deps.clock(), deps.rules()) : undefined;
    if (stop === undefined) return undefined;
    deps.cell.set(stop.state);
    return deps.shed(stop.victim, PRESSURE_STOPPER, `the host is short of memory: MemAvailable ${formatBytes(available)}, below MEMORY_PRESSURE_MIN ${formatBytes(min)}`);
  }

  /**
   * Each running agent's usage now, once per reconcile, while a memory budget or work mode needs
   * it: the one sample both read. A failed sample costs the reconcile nothing (and work mode
   * compares the next one with the last that succeeded).
   */
  async function sampleUsage(rules: PoolRules, observed: readonly ObservedAgent[]): Promise<ReadonlyMap<string, AgentUsage> | undefined> {
    if ((rules.memory === undefined && rules.work === undefined) || deps.driver.usage === undefined) return undefined;
    try {
      return await deps.driver.usage(observed);
    } catch (error) {
      deps.onError("sampling the containers' usage", error);
      return undefined;
    }
  }

  /** The agents that worked since the last sample (work mode), as activity at the time of this one. */
  function measureWork(rules: PoolRules, usage: ReadonlyMap<string, AgentUsage> | undefined, at: number): ReadonlyMap<string, number> {
    if (rules.work === undefined || usage === undefined) return new Map();
    const { samples, worked } = sampleWork(workSamples, usage, at, rules.work);
    workSamples = samples;
    return worked;
  }

  /** IDLE_STOP_SECONDS: stops the agents idle that long, pool full or not. */
  function stopIdle(): Promise<void>[] {
    const rules = deps.rules();
    const { victims, state } = decideIdleStops(deps.cell.get(), deps.clock(), rules);
    if (victims.length === 0) return [];
    deps.cell.set(state);
    const reason = `idle for ${rules.idleStopMs! / 1000} s (IDLE_STOP_SECONDS)`;
    return victims.map((agent) => deps.shed(agent, IDLE_STOPPER, reason, 'idle'));
  }

  /** One `unresponsive` event per silence (work mode), when the reconcile after it began sees it. */
  function reportUnresponsive(rules: PoolRules): void {
    if (rules.unresponsiveMs === undefined) return;
    const seen = noticeUnresponsive(deps.cell.get(), deps.clock(), rules, unresponsive);
    unresponsive = seen.noticed;
    const reason = `no heartbeat for over ${rules.unresponsiveMs / 1000} s (${UNRESPONSIVE_INTERVALS} × HEARTBEAT_INTERVAL); it goes first when room is needed`;
    for (const agent of seen.newly) deps.emit('unresponsive', agent, 'reconcile', { reason });
  }

  async function once(): Promise<void> {
    const listedAt = deps.inFlight.mark();
    try {
      // Marks before the listing: the listing is judged against the state as soon as it arrives.
      const marks = deps.rules().ignoreActivityMarks
        ? new Map<string, number>()
        : await deps.readActivity([...deps.cell.get().agents.keys()], deps.clock()).catch((error: unknown) => {
            deps.onError('reading activity marks', error);
            return new Map<string, number>();
          });
      const observed = await deps.driver.list();
      docker = { ok: true };
      // So that health says so even while nobody asks for a start.
      await deps.catalogue.checkDefinition();
      const rules = deps.rules();
      const usage = await sampleUsage(rules, observed);
      const worked = measureWork(rules, usage, deps.clock());
      // An agent whose operation settled after the listing was taken is judged on the pool's word, not the listing's.
      const busy = deps.inFlight.busySince(listedAt);
      const before = deps.cell.get();
      const active = applyActivityMarks(applyActivityMarks(before, marks, workReason(rules, 'mark')), worked, 'work');
      const result = reconcile(active, observed, deps.clock(), rules, busy);
      const changed = result.lost.length + result.adopted.length + result.stopped.length + result.stop.length > 0;
      const memory = rules.memory === undefined || usage === undefined ? undefined : new Map([...usage].map(([agent, u]) => [agent, u.memoryBytes]));
      const next = memory === undefined ? result.state : recordUsage(result.state, memory);
      if (memory !== undefined) memoryNow = latestUsage(next, memory);
      else if (rules.memory === undefined) memoryNow = NO_SAMPLE;
      // Peaks that rose are saved; the sample itself (memoryNow) is not part of the state, so an idle pool writes nothing.
      if (next !== before) deps.cell.touched();
      deps.cell.set(next);
      deps.slotsChanged();
      for (const { agent, reason } of result.lost) deps.emit('lost', agent, 'reconcile', { reason });
      for (const agent of result.adopted) deps.emit('adopted', agent, 'reconcile', { reason: 'running container not in state' });
      for (const agent of result.stopped) deps.emit('stopped', agent, 'reconcile', { reason: 'stop completed before a restart' });
      reportUnresponsive(rules);
      const stopping = result.stop.map((agent) => deps.shed(agent, 'reconcile', 'over the cap after reconcile'));
      stopping.push(...stopIdle());
      const relieving = await guardPressure();
      if (relieving !== undefined) stopping.push(relieving);
      if (changed) await deps.cell.persist();
      await Promise.allSettled(stopping);
    } catch (error) {
      docker = { ok: false, reason: (error as Error).message };
      throw error;
    }
  }

  return {
    run() {
      if (running !== undefined) {
        again = true;
        return running;
      }
      const loop = async () => {
        try {
          do {
            again = false;
            await once();
          } while (again);
        } finally {
          running = undefined;
        }
      };
      running = loop();
      return running;
    },
    idle: async () => {
      await running?.catch(() => {});
    },
    docker: () => docker,
    memoryNow: () => memoryNow,
  };
}

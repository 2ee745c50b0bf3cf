import { type PoolEvent, PoolFullError, ShuttingDownError, type StatusReply, formatWireTime } from '../../contract/index.js';
import {
  type AgentDriver,
  type PoolService,
  type PoolSettings,
  type PoolState,
  type RequestOptions,
  type StartReply,
  availableAgents,
  decideRequest,
  planAutostart,
  recordActivity,
  recordHeartbeat,
  resumeLiveness,
  shiftState,
  statusView,
} from '../../core/index.js';
import { createAdmission } from './admission.js';
import { type Emit, createAgentWork, viaOf } from './agent-work.js';
import { createCatalogue } from './catalogue.js';
import { createInFlight } from './in-flight.js';
import { createReconciler } from './reconciler.js';
import { createStateCell } from './state-cell.js';
import { createWaitLine } from './wait-line.js';

export interface PoolDeps {
  readonly driver: AgentDriver;
  /** Durable save of the state (state.json); rejects when it cannot be written. */
  readonly save: (state: PoolState) => Promise<void>;
  /** Best-effort publication of the status (roster.json). */
  readonly publish: (status: StatusReply) => Promise<void>;
  /** Activity marks of the given agents (the pool's), as of `now`. */
  readonly readActivity: (agents: readonly string[], now: number) => Promise<ReadonlyMap<string, number>>;
  readonly onEvent: (event: PoolEvent) => void;
  readonly onError: (what: string, error: unknown) => void;
  /** The pool's time (PoolClock): epoch ms, moved only by the monotonic clock between `clockStepped` calls. */
  readonly clock: () => number;
  /** The host's MemAvailable in bytes, for the pressure guard (MEMORY_PRESSURE_MIN). */
  readonly readMemAvailable?: () => Promise<number | undefined>;
}

/**
 * The pool service: its parts wired together. Every decision and its reservation happen in one
 * synchronous step on the current state (admission), so concurrent callers can never both take the
 * last slot; Docker work then runs outside that step with the slot held (agent work), shared by
 * overlapping callers (in flight). Slots that come free serve the wait line first.
 */
export function createPool(deps: PoolDeps, initial: PoolState, initialSettings: PoolSettings, services: readonly string[]): PoolService {
  let settings = initialSettings;
  const { clock } = deps;
  const emit: Emit = (type, agent, by, extra = {}) => deps.onEvent({ time: formatWireTime(clock()), type, agent, by, ...extra });
  const status = (state: PoolState): StatusReply => statusView(state, clock(), settings.rules, line.queue(), catalogue.current().memoryLimits, reconciler.memoryNow());
  const publish = (state: PoolState) => deps.publish(status(state)).catch((error) => deps.onError('writing roster.json', error));
  const cell = createStateCell({ save: deps.save, publish, onError: deps.onError }, resumeLiveness(initial, clock(), settings.rules));
  const inFlight = createInFlight();
  const catalogue = createCatalogue(deps, services, settings.rules);
  const line = createWaitLine({
    clock,
    view: () => ({ state: cell.get(), rules: settings.rules, catalogue: catalogue.current(), queueMax: settings.queueMax }),
    admit: (agent, by, via) => admission.admit(agent, by, via === undefined ? {} : { via }),
    emit,
  });
  const work = createAgentWork({ driver: deps.driver, cell, line, emit, clock, stopTimeoutMs: () => settings.stopTimeoutMs });
  const admission = createAdmission({ cell, inFlight, catalogue, work, emit, clock, settings: () => settings });
  const reconciler = createReconciler({
    ...deps,
    cell,
    inFlight,
    catalogue,
    rules: () => settings.rules,
    emit,
    slotsChanged: () => line.serve(),
    shed: (agent, by, reason, type = 'evicted') => inFlight.stop(agent) ?? inFlight.trackStop(agent, work.stop(agent, type, by, { reason })),
    syncIntervalMs: () => settings.syncIntervalMs ?? Infinity,
  });

  /**
   * SPEC §1 request. Waiting requests are served first come first served: a new request is only
   * decided after the line has been served, so it can never take a slot the head of the line could.
   */
  async function request(agent: string, requestedBy: string, options: RequestOptions = {}): Promise<StartReply> {
    // In work mode a request is the requester's activity too, whatever becomes of it (a claim, until callers are verified).
    if (settings.rules.work !== undefined) noteActivity(recordActivity(cell.get(), requestedBy, clock(), 'request'));
    // A look ahead, reserving nothing: admit() must decide and reserve in one synchronous step (the
    // line relies on it), so whether a start can succeed is asked before, not between the two.
    const ahead = decideRequest(cell.get(), { agent, requestedBy }, clock(), settings.rules, catalogue.current(), options).kind;
    if (ahead === 'start' || ahead === 'evict' || ahead === 'project_invalid') await catalogue.checkDefinition();
    line.serve();
    try {
      return await admission.admit(agent, requestedBy, options);
    } catch (error) {
      if (!(error instanceof PoolFullError)) throw error;
      // An agent larger than the whole budget would wait for a room that never comes.
      if (options.waitSeconds === undefined || options.waitSeconds <= 0 || error.details.reason === 'too_large') {
        emit('pool_full', agent, requestedBy, { reason: error.details.reason === undefined ? 'all agents recently active' : error.message, ...viaOf(options.via) });
        throw error;
      }
      return await line.wait(agent, requestedBy, options.waitSeconds, options.signal, options.via);
    }
  }

  /** Activity is saved at the next flush, not at once: heartbeats come thousands a second. */
  function noteActivity(next: PoolState): void {
    if (next === cell.get()) return;
    cell.set(next);
    cell.touched();
  }

  function health() {
    const problem = catalogue.problem();
    const docker = reconciler.docker();
    const invalid = problem === undefined ? undefined : `project invalid, starts refused: ${problem}`;
    const problems = [docker.ok ? undefined : `docker unreachable: ${docker.reason}`, cell.problem(), invalid].filter((p) => p !== undefined);
    return { ok: problems.length === 0, docker: docker.ok, projectValid: problem === undefined, reason: problems.join('; ') || undefined };
  }

  return {
    request,
    release: admission.release,
    heartbeat(agent, busySeconds, active) {
      noteActivity(recordHeartbeat(cell.get(), agent, clock(), settings.rules, busySeconds, active));
    },
    reconcile: reconciler.run,
    status: () => status(cell.get()),
    available: () => availableAgents(cell.get()),
    known: () => [...catalogue.current().known].sort(),
    health,
    planAutostart: (list) => planAutostart(list, cell.get(), settings.rules, catalogue.current()),
    configure(next, names) {
      settings = next;
      catalogue.configure(next.rules, names);
      cell.touched();
      line.serve();
    },
    clockStepped(deltaMs) {
      cell.set(shiftState(cell.get(), deltaMs));
      line.shift(deltaMs);
      catalogue.shift(deltaMs);
      cell.touched();
    },
    dismissWaiters: () => line.dismiss((agent) => new ShuttingDownError(agent)),
    async close() {
      cell.stopFlushing();
      await inFlight.settledAll();
      await reconciler.idle();
      await cell.persist();
    },
    async stopAll(by) {
      await Promise.allSettled([...cell.get().agents.keys()].map((agent) => admission.release(agent, by)));
    },
  };
}

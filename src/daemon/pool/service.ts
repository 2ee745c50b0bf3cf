import { type PoolEvent, type PoolEventType, type StartedReply, type StatusReply, formatWireTime } from '../../contract/index.js';
import {
  type AgentDriver,
  DriverError,
  ForbiddenAgentError,
  type PoolService,
  type PoolSettings,
  type PoolState,
  PoolFullError,
  type RequestOptions,
  type StartReply,
  UnknownAgentError,
  availableAgents,
  decideRelease,
  decideRequest,
  evictionFailed,
  planAutostart,
  recordHeartbeat,
  shiftState,
  startFailed,
  startSucceeded,
  statusView,
  stopConfirmed,
  unpauseFailed,
} from '../../core/index.js';
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
}

/** A request or release that keeps finding the agent in transition gives up after this many rounds. */
const MAX_ROUNDS = 20;

type Extra = { for?: string; reason?: string };

/**
 * Carries out the core's decisions. Every decision and its reservation happen in one synchronous
 * step on the current state, so concurrent callers can never both take the last slot; Docker work
 * then runs outside that step with the slot held. Starts and stops in flight are shared promises,
 * so overlapping requests for one agent ask Docker once and share its outcome.
 */
export function createPool(deps: PoolDeps, initial: PoolState, initialSettings: PoolSettings, services: readonly string[]): PoolService {
  let settings = initialSettings;
  const emit = (type: PoolEventType, agent: string, by: string, extra: Extra = {}) =>
    deps.onEvent({ time: formatWireTime(deps.clock()), type, agent, by, ...extra });
  const status = (state: PoolState): StatusReply => statusView(state, deps.clock(), settings.rules, line.queue());
  const cell = createStateCell(
    { save: deps.save, publish: (state) => deps.publish(status(state)).catch((error) => deps.onError('writing roster.json', error)), onError: deps.onError },
    initial,
  );
  const inFlight = createInFlight();
  const catalogue = createCatalogue(deps, services, settings.rules);
  const line = createWaitLine({
    clock: deps.clock,
    view: () => ({ state: cell.get(), rules: settings.rules, catalogue: catalogue.current(), queueMax: settings.queueMax }),
    admit: (agent, by) => admit(agent, by),
    emit,
  });
  const reconciler = createReconciler({
    driver: deps.driver,
    cell,
    inFlight,
    catalogue,
    readActivity: deps.readActivity,
    rules: () => settings.rules,
    clock: deps.clock,
    emit,
    onError: deps.onError,
    slotsChanged: () => line.serve(),
    stopOverCap: (agent) => inFlight.stop(agent) ?? inFlight.trackStop(agent, stopAgent(agent, 'evicted', 'reconcile', { reason: 'over the cap after reconcile' })),
  });

  const asDriverError = (error: unknown, agent: string): DriverError =>
    error instanceof DriverError ? error : new DriverError(`${agent}: ${(error as Error).message}`, [], undefined, '', { cause: error });

  async function stopAgent(agent: string, type: PoolEventType, by: string, extra: Extra = {}): Promise<void> {
    emit('stopping', agent, by, extra);
    try {
      await deps.driver.stop(agent, settings.stopTimeoutMs);
    } catch (error) {
      // Still `stopping`, still counted: Docker has not confirmed it is down. Reconcile retries.
      emit('failed', agent, by, { reason: `stop failed: ${(error as Error).message}` });
      await cell.persist();
      throw asDriverError(error, agent);
    }
    cell.set(stopConfirmed(cell.get(), agent));
    emit(type, agent, by, extra);
    line.serve();
    await cell.persist();
  }

  /** Starts the agent, after its eviction's stop when it has one; `resume`: its container is paused, unpause it instead. */
  async function startAgent(agent: string, by: string, eviction?: { victim: string; stopped: Promise<void> }, resume = false): Promise<StartedReply> {
    if (eviction !== undefined) {
      try {
        await eviction.stopped;
      } catch (error) {
        cell.set(evictionFailed(cell.get(), eviction.victim, agent));
        line.serve();
        await cell.persist();
        throw asDriverError(error, agent);
      }
    }
    emit('starting', agent, by, resume ? { reason: 'paused: unpausing' } : {});
    try {
      if (!resume) await deps.driver.start(agent);
      else if (deps.driver.unpause !== undefined) await deps.driver.unpause(agent);
      else throw new Error('its container is paused and this backend cannot unpause it');
    } catch (error) {
      // A paused container is still there: it keeps its slot. A start that failed leaves nothing.
      const state = cell.get();
      cell.set(resume ? unpauseFailed(state, agent) : startFailed(state, agent));
      emit('failed', agent, by, { reason: `${resume ? 'unpause' : 'start'} failed: ${(error as Error).message}` });
      line.serve();
      await cell.persist();
      throw asDriverError(error, agent);
    }
    cell.set(startSucceeded(cell.get(), agent, deps.clock()));
    emit('started', agent, by, eviction !== undefined ? { reason: `evicted ${eviction.victim}` } : resume ? { reason: 'unpaused' } : {});
    await cell.persist();
    return eviction === undefined ? { status: 'started', agent } : { status: 'started', agent, evicted: eviction.victim };
  }

  /** An agent left `stopping` by a failed stop has no stop in flight; start one so waiters do not wait forever. */
  const stopInFlight = (agent: string, by: string): Promise<void> =>
    inFlight.stop(agent) ?? inFlight.trackStop(agent, stopAgent(agent, 'stopped', by, { reason: 'retrying an unfinished stop' }));

  /**
   * SPEC §1 request. Waiting requests are served first come first served: a new request is only
   * decided after the line has been served, so it can never take a slot the head of the line could.
   */
  async function request(agent: string, requestedBy: string, options: RequestOptions = {}): Promise<StartReply> {
    // A look ahead, reserving nothing: admit() must decide and reserve in one synchronous step (the
    // line relies on it), so whether a start can succeed is asked before, not between the two.
    const ahead = decideRequest(cell.get(), { agent, requestedBy }, deps.clock(), settings.rules, catalogue.current(), options).kind;
    if (ahead === 'start' || ahead === 'evict' || ahead === 'project_invalid') await catalogue.checkDefinition();
    line.serve();
    try {
      return await admit(agent, requestedBy, options);
    } catch (error) {
      if (!(error instanceof PoolFullError)) throw error;
      if (options.waitSeconds === undefined || options.waitSeconds <= 0) {
        emit('pool_full', agent, requestedBy, { reason: 'all agents recently active' });
        throw error;
      }
      return await line.wait(agent, requestedBy, options.waitSeconds, options.signal);
    }
  }

  async function admit(agent: string, requestedBy: string, options: RequestOptions = {}): Promise<StartReply> {
    let refreshed = false;
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const d = decideRequest(cell.get(), { agent, requestedBy }, deps.clock(), settings.rules, catalogue.current(), options);
      switch (d.kind) {
        case 'forbidden':
          throw new ForbiddenAgentError(agent);
        case 'unknown_agent':
          if (!refreshed && (refreshed = true) && (await catalogue.refresh())) continue;
          throw new UnknownAgentError(agent, d.known);
        case 'pool_full':
          throw new PoolFullError(agent);
        case 'project_invalid':
          emit('failed', agent, requestedBy, { reason: `not started, nobody evicted: ${d.reason}` });
          throw new DriverError(d.reason, [], undefined, '');
        case 'unpause':
          cell.set(d.state);
          return await inFlight.trackStart(agent, startAgent(agent, requestedBy, undefined, true));
        case 'already_running':
          cell.set(d.state);
          cell.touched();
          return { status: 'already_running', agent };
        case 'join_start': {
          cell.set(d.state);
          cell.touched();
          const joined = inFlight.start(agent);
          if (joined === undefined) throw new Error(`internal: ${agent} is starting with no start in flight`);
          return await joined;
        }
        case 'await_stop':
          await stopInFlight(agent, requestedBy).catch(() => {});
          continue;
        case 'start':
          cell.set(d.state);
          return await inFlight.trackStart(agent, startAgent(agent, requestedBy));
        case 'evict': {
          cell.set(d.state);
          const stopped = inFlight.trackStop(d.victim, stopAgent(d.victim, 'evicted', requestedBy, { for: agent, reason: 'least recently active' }));
          return await inFlight.trackStart(agent, startAgent(agent, requestedBy, { victim: d.victim, stopped }));
        }
      }
    }
    throw new DriverError(`${agent} kept changing state; try again`, [], undefined, '');
  }

  async function release(agent: string, by: string) {
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const d = decideRelease(cell.get(), agent, settings.rules, catalogue.current());
      switch (d.kind) {
        case 'forbidden':
          throw new ForbiddenAgentError(agent);
        case 'unknown_agent':
          throw new UnknownAgentError(agent, d.known);
        case 'not_running':
          return { status: 'not_running', agent } as const;
        case 'stop':
          cell.set(d.state);
          await inFlight.trackStop(agent, stopAgent(agent, 'released', by));
          return { status: 'stopped', agent } as const;
        case 'join_stop':
          await stopInFlight(agent, by);
          return { status: 'stopped', agent } as const;
        case 'await_start':
          await inFlight.start(agent)?.catch(() => {});
          continue;
      }
    }
    throw new DriverError(`${agent} kept changing state; try again`, [], undefined, '');
  }

  return {
    request,
    release,
    heartbeat(agent, busySeconds) {
      const before = cell.get();
      const next = recordHeartbeat(before, agent, deps.clock(), settings.rules, busySeconds);
      if (next === before) return;
      cell.set(next);
      cell.touched();
    },
    reconcile: () => reconciler.run(),
    status: () => status(cell.get()),
    available: () => availableAgents(cell.get()),
    known: () => [...catalogue.current().known].sort(),
    health() {
      const problem = catalogue.problem();
      const docker = reconciler.docker();
      const invalid = problem === undefined ? undefined : `project invalid, starts refused: ${problem}`;
      const problems = [docker.ok ? undefined : `docker unreachable: ${docker.reason}`, cell.problem(), invalid].filter((p) => p !== undefined);
      return { ok: problems.length === 0, docker: docker.ok, projectValid: problem === undefined, reason: problems.join('; ') || undefined };
    },
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
    dismissWaiters: () => line.dismiss((agent) => new DriverError(`${agent}: the pool manager is shutting down`, [], undefined, '')),
    async close() {
      cell.stopFlushing();
      await inFlight.settledAll();
      await reconciler.idle();
      await cell.persist();
    },
    async stopAll(by) {
      await Promise.allSettled([...cell.get().agents.keys()].map((agent) => release(agent, by)));
    },
  };
}

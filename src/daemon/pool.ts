import type {
  AlreadyRunningReply,
  PoolEvent,
  PoolEventType,
  ReleaseReply,
  StartedReply,
  StatusReply,
} from '../contract/index.js';
import { formatWireTime } from '../contract/index.js';
import {
  type AgentDriver,
  ClientGoneError,
  type Catalogue,
  DriverError,
  ForbiddenAgentError,
  type PoolRules,
  type PoolState,
  PoolFullError,
  UnknownAgentError,
  applyActivityMarks,
  availableAgents,
  planAutostart,
  decideRelease,
  decideRequest,
  emptyQueue,
  enqueue,
  evictionFailed,
  expiredWaiters,
  headAdmissible,
  nextQueueWake,
  type WaitQueue,
  withoutWaiters,
  recordHeartbeat,
  reconcile,
  shiftQueue,
  shiftState,
  startFailed,
  startSucceeded,
  statusView,
  stopConfirmed,
  unpauseFailed,
} from '../core/index.js';

export type StartReply = StartedReply | AlreadyRunningReply;
type Started = StartedReply;

export interface PoolSettings {
  readonly rules: PoolRules;
  readonly stopTimeoutMs: number;
  /** Most distinct agents waiting for a slot at once (QUEUE_MAX). */
  readonly queueMax: number;
}

export interface RequestOptions {
  /** Reconcile-time starts (autostart) must not evict anybody. */
  readonly allowEvict?: boolean;
  /** When the pool is full and nobody can be evicted, wait in line this long for a slot. */
  readonly waitSeconds?: number;
  /** The client went away: leave the line. */
  readonly signal?: AbortSignal;
}

/** A waiting client's way to get its answer. */
interface WaitingClient {
  readonly agent: string;
  readonly by: string;
  readonly since: number;
  readonly settle: (outcome: { reply: StartReply } | { error: unknown }) => void;
}

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

/** How often in-memory activity (heartbeats) is flushed to state.json: at most one fsync per interval. */
export const ACTIVITY_FLUSH_MS = 1000;
/** An unknown name may be an agent just added to the compose file; look again at most this often. */
const CATALOGUE_REFRESH_MS = 5000;
/** A request or release that keeps finding the agent in transition gives up after this many rounds. */
const MAX_ROUNDS = 20;

/**
 * Carries out the core's decisions. Every decision and its reservation happen in one synchronous
 * step on the current state, so concurrent callers can never both take the last slot; Docker work
 * then runs outside that step with the slot held. Starts and stops in flight are shared promises,
 * so overlapping requests for one agent ask Docker once and share its outcome.
 */
export function createPool(deps: PoolDeps, initial: PoolState, initialSettings: PoolSettings, services: readonly string[]) {
  let state = initial;
  let settings = initialSettings;
  /** Why the project's definition cannot start anything now (the driver's `definitionProblem`), if so. */
  let definitionProblem: string | undefined;
  let catalogue: Catalogue = catalogueOf(services, settings.rules);
  let catalogueCheckedAt = deps.clock();
  const starts = new Map<string, Promise<Started>>();
  const stops = new Map<string, Promise<void>>();
  /** Sequence number of each agent's last settled operation, so a reconcile ignores what changed under its listing. */
  const settled = new Map<string, number>();
  let sequence = 0;
  let dirty = false;
  let docker: { ok: boolean; reason?: string } = { ok: true };
  let storeProblem: string | undefined;
  let reconciling: Promise<void> | undefined;
  let reconcileAgain = false;
  let queue: WaitQueue = emptyQueue;
  const waiting = new Map<number, WaitingClient>();
  let waiterIds = 0;
  let wakeTimer: NodeJS.Timeout | undefined;

  const flushTimer = setInterval(() => {
    if (dirty) void persist();
  }, ACTIVITY_FLUSH_MS);
  flushTimer.unref();

  function catalogueOf(names: readonly string[], rules: PoolRules): Catalogue {
    return { known: new Set(names.filter((name) => !rules.infra.has(name))), ...(definitionProblem !== undefined && { invalid: definitionProblem }) };
  }

  /**
   * Asks the driver whether a start can succeed, before a request that would start (and maybe
   * evict) is decided, and at each reconcile; a queued request is admitted on what the last of
   * those found. While the definition is unchanged this is a stat of its files, so an eviction
   * stays within its overhead; a driver that cannot tell is taken at its word that it can start.
   */
  async function checkDefinition(): Promise<void> {
    if (deps.driver.definitionProblem === undefined) return;
    const problem = await deps.driver.definitionProblem().catch((error: unknown) => (error as Error).message);
    if (problem === definitionProblem) return;
    definitionProblem = problem;
    catalogue = catalogueOf([...catalogue.known], settings.rules);
    if (problem !== undefined) deps.onError('loading the project (starts are refused, nobody is evicted, until it is fixed)', new Error(problem));
  }

  function emit(type: PoolEventType, agent: string, by: string, extra: { for?: string; reason?: string } = {}) {
    deps.onEvent({ time: formatWireTime(deps.clock()), type, agent, by, ...extra });
  }

  /** Makes the current state durable. Never throws: a store failure is reported and retried by the flush timer. */
  async function persist(): Promise<void> {
    dirty = false;
    const snapshot = state;
    try {
      await deps.save(snapshot);
      storeProblem = undefined;
    } catch (error) {
      dirty = true;
      storeProblem = `cannot write state: ${(error as Error).message}`;
      deps.onError('saving state.json', error);
    }
    await deps.publish(statusView(snapshot, deps.clock(), settings.rules, queue)).catch((error) => deps.onError('writing roster.json', error));
  }

  function track<T>(map: Map<string, Promise<T>>, agent: string, operation: Promise<T>): Promise<T> {
    map.set(agent, operation);
    const settle = () => {
      if (map.get(agent) === operation) map.delete(agent);
      settled.set(agent, ++sequence);
    };
    operation.then(settle, settle);
    return operation;
  }

  const asDriverError = (error: unknown, agent: string): DriverError =>
    error instanceof DriverError ? error : new DriverError(`${agent}: ${(error as Error).message}`, [], undefined, '', { cause: error });

  async function stopAgent(agent: string, type: PoolEventType, by: string, extra: { for?: string; reason?: string } = {}): Promise<void> {
    emit('stopping', agent, by, extra);
    try {
      await deps.driver.stop(agent, settings.stopTimeoutMs);
    } catch (error) {
      // Still `stopping`, still counted: Docker has not confirmed it is down. Reconcile retries.
      emit('failed', agent, by, { reason: `stop failed: ${(error as Error).message}` });
      await persist();
      throw asDriverError(error, agent);
    }
    state = stopConfirmed(state, agent);
    emit(type, agent, by, extra);
    serveQueue();
    await persist();
  }

  /** Starts the agent, after its eviction's stop when it has one; `resume`: its container is paused, unpause it instead. */
  async function startAgent(agent: string, by: string, eviction?: { victim: string; stopped: Promise<void> }, resume = false): Promise<Started> {
    if (eviction !== undefined) {
      try {
        await eviction.stopped;
      } catch (error) {
        state = evictionFailed(state, eviction.victim, agent);
        serveQueue();
        await persist();
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
      state = resume ? unpauseFailed(state, agent) : startFailed(state, agent);
      emit('failed', agent, by, { reason: `${resume ? 'unpause' : 'start'} failed: ${(error as Error).message}` });
      serveQueue();
      await persist();
      throw asDriverError(error, agent);
    }
    state = startSucceeded(state, agent, deps.clock());
    emit('started', agent, by, eviction !== undefined ? { reason: `evicted ${eviction.victim}` } : resume ? { reason: 'unpaused' } : {});
    await persist();
    return eviction === undefined ? { status: 'started', agent } : { status: 'started', agent, evicted: eviction.victim };
  }

  /** An agent left `stopping` by a failed stop has no stop in flight; start one so waiters do not wait forever. */
  function stopInFlight(agent: string, by: string): Promise<void> {
    return stops.get(agent) ?? track(stops, agent, stopAgent(agent, 'stopped', by, { reason: 'retrying an unfinished stop' }));
  }

  async function refreshCatalogue(): Promise<boolean> {
    if (deps.clock() - catalogueCheckedAt < CATALOGUE_REFRESH_MS) return false;
    catalogueCheckedAt = deps.clock();
    try {
      const before = catalogue.known.size;
      catalogue = catalogueOf(await deps.driver.services(), settings.rules);
      return catalogue.known.size !== before;
    } catch (error) {
      deps.onError('reading the compose services', error);
      return false;
    }
  }

  const secondsSince = (since: number) => Math.round((deps.clock() - since) / 100) / 10;

  /**
   * SPEC §1 request. Waiting requests are served first come first served: a new request is only
   * decided after the line has been served, so it can never take a slot the head of the line could.
   */
  async function request(agent: string, requestedBy: string, options: RequestOptions = {}): Promise<StartReply> {
    // A look ahead, reserving nothing: admit() must decide and reserve in one synchronous step (the
    // line relies on it), so whether a start can succeed is asked before, not between the two.
    const ahead = decideRequest(state, { agent, requestedBy }, deps.clock(), settings.rules, catalogue, options).kind;
    if (ahead === 'start' || ahead === 'evict' || ahead === 'project_invalid') await checkDefinition();
    serveQueue();
    try {
      return await admit(agent, requestedBy, options);
    } catch (error) {
      if (!(error instanceof PoolFullError)) throw error;
      if (options.waitSeconds === undefined || options.waitSeconds <= 0) {
        emit('pool_full', agent, requestedBy, { reason: 'all agents recently active' });
        throw error;
      }
      return await waitForSlot(agent, requestedBy, options.waitSeconds, options.signal);
    }
  }

  function waitForSlot(agent: string, by: string, waitSeconds: number, signal: AbortSignal | undefined): Promise<StartReply> {
    const now = deps.clock();
    const waiter = { id: ++waiterIds, since: now, deadline: now + waitSeconds * 1000 };
    const entered = enqueue(queue, agent, by, waiter, settings.queueMax);
    if (entered.outcome === 'full') {
      emit('pool_full', agent, by, { reason: `wait queue full (QUEUE_MAX=${settings.queueMax})` });
      throw new PoolFullError(agent, { queueFull: true });
    }
    queue = entered.queue;
    emit('waiting', agent, by, { reason: `up to ${waitSeconds} s, place ${queue.findIndex((e) => e.agent === agent) + 1} of ${queue.length} in line` });
    return new Promise<StartReply>((resolve, reject) => {
      const leave = () => {
        if (!waiting.delete(waiter.id)) return;
        queue = withoutWaiters(queue, new Set([waiter.id]));
        reject(new ClientGoneError(agent));
        armQueueWake();
      };
      if (signal?.aborted) return leave();
      signal?.addEventListener('abort', leave, { once: true });
      waiting.set(waiter.id, {
        agent,
        by,
        since: now,
        settle: (outcome) => {
          signal?.removeEventListener('abort', leave);
          if ('reply' in outcome) resolve(outcome.reply);
          else reject(outcome.error);
        },
      });
      armQueueWake();
    });
  }

  /** Answers waiters whose deadline came, then serves the head of the line for as long as it can be served. */
  function serveQueue(): void {
    if (queue.length === 0) return;
    const now = deps.clock();
    const expired = expiredWaiters(queue, now);
    queue = withoutWaiters(queue, expired);
    for (const id of expired) {
      const client = waiting.get(id);
      if (client === undefined) continue;
      waiting.delete(id);
      const waited = secondsSince(client.since);
      emit('pool_full', client.agent, client.by, { reason: `waited ${waited} s, no slot came free` });
      client.settle({ error: new PoolFullError(client.agent, { waitedSeconds: waited }) });
    }
    while (headAdmissible(queue, state, now, settings.rules, catalogue)) {
      const [head, ...rest] = queue as [WaitQueue[number], ...WaitQueue];
      queue = rest;
      const clients = head.waiters.map((w) => waiting.get(w.id)).filter((c) => c !== undefined);
      for (const w of head.waiters) waiting.delete(w.id);
      emit('waited', head.agent, head.requestedBy, {
        reason: `${clients.length === 1 ? 'waited' : `${clients.length} requests waited up to`} ${secondsSince(Math.min(...clients.map((c) => c.since)))} s for a slot`,
      });
      // admit() decides and reserves synchronously, so the next head is judged on the updated state.
      admit(head.agent, head.requestedBy).then(
        (reply) => {
          for (const c of clients) c.settle({ reply: { ...reply, waited_seconds: secondsSince(c.since) } });
        },
        (error: unknown) => {
          for (const c of clients) c.settle({ error });
        },
      );
    }
    armQueueWake();
  }

  function armQueueWake(): void {
    clearTimeout(wakeTimer);
    const wake = nextQueueWake(queue, state, deps.clock(), settings.rules);
    if (wake === undefined) return;
    wakeTimer = setTimeout(serveQueue, Math.max(0, wake - deps.clock()));
  }

  async function admit(agent: string, requestedBy: string, options: RequestOptions = {}): Promise<StartReply> {
    let refreshed = false;
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const d = decideRequest(state, { agent, requestedBy }, deps.clock(), settings.rules, catalogue, options);
      switch (d.kind) {
        case 'forbidden':
          throw new ForbiddenAgentError(agent);
        case 'unknown_agent':
          if (!refreshed && (refreshed = true) && (await refreshCatalogue())) continue;
          throw new UnknownAgentError(agent, d.known);
        case 'pool_full':
          throw new PoolFullError(agent);
        case 'project_invalid':
          emit('failed', agent, requestedBy, { reason: `not started, nobody evicted: ${d.reason}` });
          throw new DriverError(d.reason, [], undefined, '');
        case 'unpause':
          state = d.state;
          return await track(starts, agent, startAgent(agent, requestedBy, undefined, true));
        case 'already_running':
          state = d.state;
          dirty = true;
          return { status: 'already_running', agent };
        case 'join_start': {
          state = d.state;
          dirty = true;
          const inFlight = starts.get(agent);
          if (inFlight === undefined) throw new Error(`internal: ${agent} is starting with no start in flight`);
          return await inFlight;
        }
        case 'await_stop':
          await stopInFlight(agent, requestedBy).catch(() => {});
          continue;
        case 'start':
          state = d.state;
          return await track(starts, agent, startAgent(agent, requestedBy));
        case 'evict': {
          state = d.state;
          const stopped = track(stops, d.victim, stopAgent(d.victim, 'evicted', requestedBy, { for: agent, reason: 'least recently active' }));
          return await track(starts, agent, startAgent(agent, requestedBy, { victim: d.victim, stopped }));
        }
      }
    }
    throw new DriverError(`${agent} kept changing state; try again`, [], undefined, '');
  }

  async function release(agent: string, by: string): Promise<ReleaseReply> {
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const d = decideRelease(state, agent, settings.rules, catalogue);
      switch (d.kind) {
        case 'forbidden':
          throw new ForbiddenAgentError(agent);
        case 'unknown_agent':
          throw new UnknownAgentError(agent, d.known);
        case 'not_running':
          return { status: 'not_running', agent };
        case 'stop':
          state = d.state;
          await track(stops, agent, stopAgent(agent, 'released', by));
          return { status: 'stopped', agent };
        case 'join_stop':
          await stopInFlight(agent, by);
          return { status: 'stopped', agent };
        case 'await_start':
          await starts.get(agent)?.catch(() => {});
          continue;
      }
    }
    throw new DriverError(`${agent} kept changing state; try again`, [], undefined, '');
  }

  function heartbeat(agent: string, busySeconds?: number): void {
    const next = recordHeartbeat(state, agent, deps.clock(), settings.rules, busySeconds);
    if (next !== state) {
      state = next;
      dirty = true;
    }
  }

  async function reconcileOnce(): Promise<void> {
    const listedAt = sequence;
    try {
      // Marks before the listing: the listing is judged against the state as soon as it arrives.
      const marks = await deps.readActivity([...state.agents.keys()], deps.clock()).catch((error: unknown) => {
        deps.onError('reading activity marks', error);
        return new Map<string, number>();
      });
      const observed = await deps.driver.list();
      docker = { ok: true };
      // So that health says so even while nobody asks for a start.
      await checkDefinition();
      const busy = new Set([...starts.keys(), ...stops.keys()]);
      for (const [agent, at] of settled) if (at > listedAt) busy.add(agent);
      const result = reconcile(applyActivityMarks(state, marks), observed, deps.clock(), settings.rules, busy);
      const changed = result.lost.length + result.adopted.length + result.stopped.length + result.stop.length > 0;
      if (result.state !== state) dirty = true;
      state = result.state;
      serveQueue();
      for (const { agent, reason } of result.lost) emit('lost', agent, 'reconcile', { reason });
      for (const agent of result.adopted) emit('adopted', agent, 'reconcile', { reason: 'running container not in state' });
      for (const agent of result.stopped) emit('stopped', agent, 'reconcile', { reason: 'stop completed before a restart' });
      const stopping = result.stop.map((agent) =>
        stops.get(agent) ?? track(stops, agent, stopAgent(agent, 'evicted', 'reconcile', { reason: 'over the cap after reconcile' })),
      );
      if (changed) await persist();
      await Promise.allSettled(stopping);
    } catch (error) {
      docker = { ok: false, reason: (error as Error).message };
      throw error;
    }
  }

  /** Runs a reconcile now, or once more right after the one in progress; concurrent callers share it. */
  function requestReconcile(): Promise<void> {
    if (reconciling !== undefined) {
      reconcileAgain = true;
      return reconciling;
    }
    const runLoop = async () => {
      try {
        do {
          reconcileAgain = false;
          await reconcileOnce();
        } while (reconcileAgain);
      } finally {
        reconciling = undefined;
      }
    };
    reconciling = runLoop();
    return reconciling;
  }

  return {
    request,
    release,
    heartbeat,
    reconcile: requestReconcile,
    status: (): StatusReply => statusView(state, deps.clock(), settings.rules, queue),
    available: (): string[] => availableAgents(state),
    known: (): string[] => [...catalogue.known].sort(),
    health: () => {
      const invalid = definitionProblem === undefined ? undefined : `project invalid, starts refused: ${definitionProblem}`;
      const problems = [docker.ok ? undefined : `docker unreachable: ${docker.reason}`, storeProblem, invalid].filter((p) => p !== undefined);
      return { ok: problems.length === 0, docker: docker.ok, projectValid: definitionProblem === undefined, reason: problems.join('; ') || undefined };
    },
    /** Which agents of an autostart list to start now, judged on the pool's own state, rules and services. */
    planAutostart: (list: readonly string[]) => planAutostart(list, state, settings.rules, catalogue),
    /** Applies re-read configuration; the next reconcile enforces a lowered cap. */
    configure(next: PoolSettings, names?: readonly string[]) {
      settings = next;
      catalogue = catalogueOf(names ?? [...catalogue.known], next.rules);
      dirty = true;
      serveQueue();
    },
    /**
     * The pool's clock moved to a stepped wall clock (PoolClock.resync): every time kept moves the
     * same way, so no grace period, busy hold, wait or throttle is lengthened or cut short.
     */
    clockStepped(deltaMs: number) {
      state = shiftState(state, deltaMs);
      queue = shiftQueue(queue, deltaMs);
      for (const [id, client] of waiting) waiting.set(id, { ...client, since: client.since + deltaMs });
      catalogueCheckedAt += deltaMs;
      dirty = true;
      armQueueWake();
    },
    /** Answers every waiting request with an error (the daemon is stopping) and empties the line. */
    dismissWaiters() {
      clearTimeout(wakeTimer);
      for (const [id, client] of waiting) {
        waiting.delete(id);
        client.settle({ error: new DriverError(`${client.agent}: the pool manager is shutting down`, [], undefined, '') });
      }
      queue = emptyQueue;
    },
    /** Stops the flush timer after a last flush; waits for operations in flight. */
    async close() {
      clearInterval(flushTimer);
      await Promise.allSettled([...starts.values(), ...stops.values()]);
      if (reconciling) await reconciling.catch(() => {});
      await persist();
    },
    /** Stops every pooled agent (the systemd stop path). */
    async stopAll(by: string) {
      await Promise.allSettled([...state.agents.keys()].map((agent) => release(agent, by)));
    },
  };
}

export type Pool = ReturnType<typeof createPool>;

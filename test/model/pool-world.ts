import { isDeepStrictEqual } from 'node:util';
import { vi } from 'vitest';
import { type AgentView, ClientGoneError, type PoolEvent, PoolError, type StatusReply } from '../../src/contract/index.js';
import {
  IDLE_STOPPER,
  type PoolRules,
  type PoolService,
  type PoolSettings,
  type PoolState,
  type StartReply,
  statusView,
  updateAgent,
} from '../../src/core/index.js';
import { type Caller as PoolCaller, type CallerAction, judgeCall } from '../../src/core/callers.js';
import { FREES_MEMORY } from '../../src/daemon/pool/admission.js';
import { createPool } from '../../src/daemon/pool/service.js';
import { MemoryStore } from './memory-store.js';
import { type CallKind, ScriptedDriver } from './scripted-driver.js';

export const AGENTS = ['ceo', 'cto', 'cfo', 'dev', 'qa'] as const;
export const INFRA = 'gateway';
/** A name no compose service has. */
export const UNKNOWN = 'intruder';
const PINNED = ['qa'];
const SERVICES = [...AGENTS, INFRA];
export const FIRST_CAP = 3;
export const GRACE_MS = 60_000;
const QUEUE_MAX = 3;
/** Longest `wait_seconds` the commands use: advancing past it answers every waiter. */
export const WAIT_MAX_SECONDS = 120;
/** 2026-02-28T05:17:04Z, where every sequence starts. */
export const T0 = Date.UTC(2026, 1, 28, 5, 17, 4);

const MiB = 1024 ** 2;
/** With a memory budget: what each agent uses (and its compose limit), in bytes; any three are more than the budget, most two fit. */
const MEMORY = new Map(Object.entries({ ceo: 200, cto: 300, cfo: 450, dev: 600, qa: 250 }).map(([agent, mib]) => [agent, mib * MiB]));
const BUDGET_BYTES = 1000 * MiB;

/** With idle stop: IDLE_STOP_SECONDS, shorter than some of the commands' advances and longer than others. */
const IDLE_STOP_MS = 120_000;

/** In work mode: three HEARTBEAT_INTERVALs of 30 s, shorter than some of the commands' advances and longer than others. */
const UNRESPONSIVE_MS = 90_000;

export function settingsFor(cap: number, memory = false, idleStop = false, work = false): PoolSettings {
  const rules: PoolRules = {
    maxAgents: cap,
    evictGraceMs: GRACE_MS,
    infra: new Set([INFRA]),
    pinned: new Set(PINNED),
    busyMaxMs: 3_600_000,
    ...(memory && { memory: { budgetBytes: BUDGET_BYTES, defaultBytes: 330 * MiB } }),
    ...(idleStop && { idleStopMs: IDLE_STOP_MS }),
    ...(work && { work: { cpuPercent: 5, netBytes: 65_536 }, unresponsiveMs: UNRESPONSIVE_MS }),
  };
  return { rules, stopTimeoutMs: 10_000, queueMax: QUEUE_MAX };
}

/** Who a command comes from, as the bridge would have established it: the host (loopback), or an agent by its address. */
export type From = 'host' | (typeof AGENTS)[number];
/** What the host's calls claim as their requester. */
const HOST_REQUESTER = 'model';

export interface Caller {
  readonly what: string;
  readonly controller: AbortController | undefined;
  settled: boolean;
  /** The reply's status, or the error's name. */
  outcome?: string;
}


/** Every promise the pool's callers hold is settled by microtasks alone: one turn of the event loop drains them all. */
const flush = () => new Promise<void>((resolve) => setImmediate(resolve));

/** A stopping agent evicted for a newcomer, as its events told. */
interface Eviction {
  readonly for: string;
  /** Its slot passes to the newcomer (not when it went for the memory it holds). */
  readonly promised: boolean;
  /** Its stop failed: Docker has not confirmed it is down, and a retry may be in flight. */
  failed: boolean;
  /** The step its `stopping` event came in. */
  readonly step: number;
}

/** The model's invariants are broken: the message says which, and what the pool and Docker looked like. */
export class ModelViolation extends Error {
  override name = 'ModelViolation';
}

/**
 * The pool service on the scripted driver, the in-memory store and the fake clock (vitest's fake
 * timers, so that the wait line's wake timer and the flush timer fire at the pool's own times),
 * with the world's checks. Commands act on it, then call `step`, which lets the pool run as far as
 * it can without Docker answering and checks every invariant.
 *
 * The cap invariant, exactly. The pool's count P is its agents starting, running or stopping, an
 * evicted agent whose slot is promised to a starting newcomer counted with it as one (the
 * newcomer's container is started only once the victim's is down: core/state.ts slotsUsed).
 * Docker's count D is the containers up that are the pool's to count (all but those brought up
 * behind its back and not yet adopted) plus the starts in flight. The cap in force may drop below
 * P (configure lowers it, or a reconcile adopts containers) and the pool documents that the next
 * reconcile brings it back, by stops, without starting anything meanwhile; starts decided under
 * the old cap may still complete (an eviction's newcomer starts once its victim is down: one out,
 * one in). So after each step: P <= cap, or P did not grow beyond what this step adopted; every
 * agent in D is one the pool counts, and D <= P (D may grow within P: a container that vanished
 * behind the pool's back still holds its slot until a reconcile sees it gone, and an eviction of
 * it lets the newcomer start); and at quiescence, after a reconcile, P <= cap outright.
 */
export class PoolWorld {
  readonly store = new MemoryStore();
  readonly driver: ScriptedDriver;
  pool: PoolService;
  cap = FIRST_CAP;
  steps = 0;
  restarts = 0;
  private readonly callers: Caller[] = [];
  private stepEvents: PoolEvent[] = [];
  /** Each stopping agent's last `stopping` event's `for`, and whether its slot is promised to that newcomer (not when it went for its memory). */
  private readonly stoppingFor = new Map<string, Eviction>();
  /** A container brought up behind the pool's back was adopted: from then on Docker may hold more than the budget (see checkMemory). */
  private adoptedAny = false;
  private marks = new Set<string>();
  private line: string[] = [];
  private poolCount = 0;
  private committedMemory = 0;
  /** The most the committed memory may be: the budget, or what adoption brought it to (kept: a failed eviction of an adopted agent gives its memory back). */
  private memoryAllowance = BUDGET_BYTES;

  /**
   * `memory`: a memory budget too, with the memory table above. The memory the pool has committed
   * is that of every agent it holds except the victims of a newcomer that is starting (all of
   * them: the decision made room for the newcomer as if they were gone). It holds to the budget
   * the way the count holds to the cap: at most the budget, or, once adoption took it over, no
   * more than adoption took it to (an eviction that fails gives the victim's memory back). Docker's memory, that of the containers in D, is at most the budget as long as
   * nothing was adopted: a newcomer's victims are down before its start is asked for, so that
   * holds at every step, evictions of several victims included. (A container adopted while a
   * newcomer waits for its victims does not stop that start: Docker then holds more, and the
   * pool refuses further starts until it is back under the budget.)
   */
  /** Idle stops that stopped whom they must not (a pinned agent, a busy hold, one active lately), found as their events came. */
  private readonly idleViolations: string[] = [];
  /** Events whose caller identity is wrong: a `via` that does not go with its `by`, or a release of an agent by one that neither is it nor requested it. */
  private readonly identityViolations: string[] = [];
  /** Calls the policy refused, for the run's figures: a property that never refuses checks little. */
  refusals = 0;
  /** Idle stops begun, for the run's figures: a property that never stops anyone checks nothing. */
  idleStops = 0;

  /** Evictions that passed over an unresponsive agent that could have gone (work mode), found as their events came. */
  private readonly orderViolations: string[] = [];
  /** Evictions of unresponsive agents, for the run's figures. */
  unresponsiveEvictions = 0;

  /**
   * `idleStop`: IDLE_STOP_SECONDS is set, and every idle stop is checked against the rules as it is decided.
   * `work`: ACTIVITY_MODE=work, and every eviction is checked to take unresponsive agents first.
   */
  constructor(readonly memory = false, readonly idleStop = false, readonly work = false) {
    vi.clearAllTimers();
    vi.setSystemTime(T0);
    this.driver = new ScriptedDriver(SERVICES, new Set(AGENTS), Date.now, memory ? MEMORY : undefined);
    this.pool = this.build({ agents: new Map() });
  }

  private build(state: PoolState): PoolService {
    return createPool(
      {
        driver: this.driver,
        save: this.store.save,
        publish: this.store.publish,
        readActivity: async (agents) => {
          const found = new Map<string, number>();
          for (const agent of agents) if (this.marks.has(agent)) found.set(agent, Date.now());
          this.marks = new Set();
          return found;
        },
        onEvent: (event) => {
          this.stepEvents.push(event);
          // A victim evicted for the memory it holds keeps its own slot until it is down (core decideRequest).
          // A retry of a victim's failed stop (a request waiting for it) says no `for`; its promise stands until its newcomer gives up.
          if (event.type === 'stopping' && event.for !== undefined) this.evicting(event.agent, event.for, event.reason?.endsWith(FREES_MEMORY) !== true);
          if (event.type === 'stopping' && event.by === IDLE_STOPPER) this.checkIdleStop(event.agent);
          this.checkIdentity(event);
          if (this.work && event.type === 'stopping' && event.for !== undefined) this.checkEvictionOrder(event);
          const failed = event.type === 'failed' ? this.stoppingFor.get(event.agent) : undefined;
          if (failed !== undefined) failed.failed = true;
          // Down, or gone: a container of the same name adopted later is none of that eviction's.
          if (['evicted', 'stopped', 'released', 'lost', 'idle'].includes(event.type)) this.stoppingFor.delete(event.agent);
        },
        // Expected here: failures the driver was told to make, reported as the daemon would log them.
        onError: () => {},
        clock: Date.now,
      },
      state,
      settingsFor(this.cap, this.memory, this.idleStop, this.work),
      SERVICES,
    );
  }

  // ---- what commands do ----

  request(agent: string, waitSeconds?: number, hangsUp = false, from: From = 'host'): Caller {
    const call = this.judged(from, 'request', agent);
    if (call === undefined) throw new ModelViolation(`the policy refused a request of ${agent} from ${from}: any caller may request any agent`);
    const controller = hangsUp ? new AbortController() : undefined;
    const options = { via: call.via, ...(waitSeconds !== undefined && { waitSeconds }), ...(controller && { signal: controller.signal }) };
    return this.track(`request ${agent}`, this.pool.request(agent, call.requestedBy, options), controller);
  }

  release(agent: string, from: From = 'host'): void {
    const call = this.judged(from, 'release', agent);
    if (call !== undefined) this.track(`release ${agent}`, this.pool.release(agent, call.requestedBy, call.via));
  }

  heartbeat(agent: string, busySeconds?: number, from: From = 'host'): void {
    if (this.judged(from, 'heartbeat', agent) !== undefined) this.pool.heartbeat(agent, busySeconds);
  }

  /** The policy's verdict on a call, as the bridge reaches it (CALLER_POLICY=agents): the requester and `via` it runs under, or undefined when refused. */
  private judged(from: From, action: CallerAction, agent: string): { requestedBy: string; via: 'host' | 'peer' } | undefined {
    const caller: PoolCaller = from === 'host' ? { kind: 'host', via: 'host' } : { kind: 'agent', name: from, via: 'peer' };
    const verdict = judgeCall(caller, action, { agent, requested_by: HOST_REQUESTER }, (a) => this.pool.status().running.find((r) => r.id === a)?.requested_by);
    if ('refused' in verdict) {
      this.refusals++;
      return undefined;
    }
    return { requestedBy: verdict.requestedBy ?? HOST_REQUESTER, via: caller.via === 'host' ? 'host' : 'peer' };
  }

  reconcile(): void {
    this.track('reconcile', this.pool.reconcile());
  }

  /** Clients still waiting for an answer that could hang up. */
  hangUps(): Caller[] {
    return this.callers.filter((c) => !c.settled && c.controller !== undefined && !c.controller.signal.aborted);
  }

  /** Docker behind the pool's back: a container brought up by hand (`startedAgoMs` before now), one that vanishes, one paused. */
  dockerAppears(agent: string, startedAgoMs = 0): void {
    if (this.driver.containers.get(agent)?.up !== true) this.driver.containers.set(agent, { up: true, paused: false, startedAt: Date.now() - startedAgoMs, external: true });
  }

  dockerVanishes(agent: string): void {
    const c = this.driver.containers.get(agent);
    if (c !== undefined) Object.assign(c, { up: false, paused: false, external: false });
  }

  dockerPauses(agent: string): void {
    const c = this.driver.containers.get(agent);
    if (c?.up === true) c.paused = true;
  }

  touchMark(agent: string): void {
    this.marks.add(agent);
  }

  /** Moves the fake clock; the pool's timers fire at their own times on the way. */
  advance(ms: number): void {
    vi.advanceTimersByTime(ms);
  }

  configure(cap: number): void {
    this.cap = cap;
    this.pool.configure(settingsFor(cap, this.memory, this.idleStop, this.work));
  }

  /**
   * The daemon stops (waiters dismissed, every Docker call it made answered, `close`) and a new
   * one starts from the state it saved, reconciling first as the daemon does at start-up.
   */
  async restart(): Promise<void> {
    this.pool.dismissWaiters();
    await this.drain(false);
    await this.pool.close();
    this.checkSettledAndSaved('at a restart');
    this.restarts++;
    this.pool = this.build(this.store.load());
    this.reconcile();
  }

  // ---- checks ----

  /** Lets the pool run as far as it can, then checks the invariants. */
  async step(): Promise<void> {
    await flush();
    this.steps++;
    this.check();
    this.stepEvents = [];
  }

  /** End of a sequence: every Docker call answered with success, every waiter's deadline passed, a last reconcile; then quiescence checks. */
  async finish(): Promise<void> {
    await this.drain(true);
    const status = this.pool.status();
    const inTransition = status.running.filter((a) => a.state === 'starting' || a.state === 'stopping');
    if (inTransition.length > 0) this.fail(`at quiescence agents are still in transition: ${inTransition.map((a) => `${a.id} ${a.state}`).join(', ')}`);
    if (this.poolCountOf(status) > this.cap) this.fail(`at quiescence, after a reconcile, ${this.poolCountOf(status)} agents hold slots against a cap of ${this.cap}`);
    if (!this.dockerAgrees(status)) this.fail('at quiescence the pool and Docker disagree on what runs');
    await this.pool.close();
    this.checkSettledAndSaved('at quiescence');
  }

  /** Answers Docker calls (all with success), passes waiters' deadlines and, with `reconcile`, reconciles until the pool matches Docker. */
  private async drain(reconcile: boolean): Promise<void> {
    let reconciled = false;
    for (let round = 0; round < 50; round++) {
      if (this.driver.pending.length > 0) {
        for (const call of [...this.driver.pending]) call.succeed(true);
      } else if (this.pool.status().queue.length > 0) {
        this.advance(WAIT_MAX_SECONDS * 1000 + 1000);
      } else if (reconcile && (!reconciled || !this.dockerAgrees(this.pool.status()))) {
        this.reconcile();
        reconciled = true;
      } else {
        return;
      }
      await this.step();
    }
    this.fail('the pool does not come to rest: 50 rounds of answering every Docker call and reconciling');
  }

  /** Emitted as the stop begins, the decision just taken: the agent as the decision saw it, but stopping. */
  private checkIdleStop(agent: string): void {
    this.idleStops++;
    const a = this.pool.status().running.find((r) => r.id === agent);
    const now = Date.now();
    if (a === undefined) this.idleViolations.push(`${agent} stopped as idle is not in the pool`);
    else if (PINNED.includes(agent)) this.idleViolations.push(`pinned ${agent} stopped as idle`);
    else if (a.busy_until !== undefined) this.idleViolations.push(`${agent} stopped as idle under a busy hold until ${a.busy_until}`);
    else if (now - Date.parse(a.last_active) < IDLE_STOP_MS) this.idleViolations.push(`${agent} stopped as idle, last active ${a.last_active}, ${now - Date.parse(a.last_active)} ms ago`);
  }

  /**
   * An event of a call says how its caller was known, and that goes with who it names: `peer`, an
   * agent under its own name; `host`, the host's claim. A release an agent made (a stop with no
   * newcomer) stops only that agent itself or one it requested.
   */
  private checkIdentity(event: PoolEvent): void {
    if (event.via === undefined) return;
    const agentCaller = (AGENTS as readonly string[]).includes(event.by);
    if ((event.via === 'peer') !== agentCaller || (event.via === 'host' && event.by !== HOST_REQUESTER)) {
      this.identityViolations.push(`${event.type} ${event.agent} by ${event.by} via ${event.via}`);
    }
    if (event.type === 'stopping' && event.for === undefined && event.via === 'peer' && event.by !== event.agent) {
      const requester = this.pool.status().running.find((r) => r.id === event.agent)?.requested_by;
      if (requester !== event.by) this.identityViolations.push(`${event.by} released ${event.agent}, requested by ${requester}`);
    }
  }

  /**
   * Emitted as the stop begins, the decision (and all its victims) just taken: an eviction may take
   * an agent that answers only when no unresponsive agent that may be evicted is left running, and
   * never a pinned one or one under a busy hold, silent or not.
   */
  private checkEvictionOrder(event: PoolEvent): void {
    const running = this.pool.status().running;
    if (event.reason?.startsWith('unresponsive') === true) this.unresponsiveEvictions++;
    else {
      const passedOver = running.filter((a) => a.state === 'unresponsive' && a.protection === null && a.id !== event.for).map((a) => a.id);
      if (passedOver.length > 0) this.orderViolations.push(`${event.agent} evicted for ${event.for} while unresponsive ${passedOver.join(', ')} could go`);
    }
    const victim = running.find((a) => a.id === event.agent);
    if (PINNED.includes(event.agent) || victim?.busy_until !== undefined) this.orderViolations.push(`${event.agent} evicted for ${event.for} though pinned or busy`);
  }

  private check(): void {
    if (this.idleViolations.length > 0) this.fail(`idle stop: ${this.idleViolations.join('; ')}`);
    if (this.identityViolations.length > 0) this.fail(`caller identity: ${this.identityViolations.join('; ')}`);
    if (this.orderViolations.length > 0) this.fail(`eviction order: ${this.orderViolations.join('; ')}`);
    if (this.driver.violations.length > 0) this.fail(`the pool asked Docker what it must not: ${this.driver.violations.join('; ')}`);
    const status = this.pool.status();
    if (status.slots_total !== this.cap) this.fail(`status says ${status.slots_total} slots, the cap in force is ${this.cap}`);
    const adopted = this.stepEvents.filter((e) => e.type === 'adopted').length;

    const p = this.poolCountOf(status);
    // Admissions and adoptions of one step come in any order: it may have filled the pool to the cap, then adopted.
    if (p > Math.max(this.cap, this.poolCount) + adopted) this.fail(`the pool holds ${p} slots against a cap of ${this.cap} (it held ${this.poolCount}, adopted ${adopted})`);
    this.poolCount = p;

    const counted = new Set(status.running.map((a) => a.id));
    // Once adopted, a container brought up behind the pool's back is the pool's to count (a start
    // of it makes it the pool's too). An agent the pool held before its container came back is
    // no proof that the pool has seen the new one: a stale listing may still call it gone.
    for (const event of this.stepEvents) {
      const c = event.type === 'adopted' ? this.driver.containers.get(event.agent) : undefined;
      if (c?.up === true) c.external = false;
    }
    const docker = this.dockerSet();
    const d = docker.size;
    const uncounted = [...docker].filter((agent) => !counted.has(agent));
    if (uncounted.length > 0) this.fail(`containers up or starting that the pool does not count: ${uncounted.join(', ')}`);
    if (d > p) this.fail(`Docker runs or starts ${d} agents, the pool counts ${p} slots`);
    if (this.memory) this.checkMemory(status, docker);

    this.checkLine(status);
    // An eviction whose newcomer is no longer starting is over, whatever becomes of its victims.
    const starting = new Set(status.running.filter((a) => a.state === 'starting').map((a) => a.id));
    for (const [agent, { for: newcomer }] of this.stoppingFor) if (!starting.has(newcomer)) this.stoppingFor.delete(agent);
  }

  /** A victim evicted for `newcomer`: the victims of an earlier eviction for it are none of this one's (it gave up since). */
  private evicting(agent: string, newcomer: string, promised: boolean): void {
    for (const [other, e] of this.stoppingFor) if (e.for === newcomer && e.step < this.steps) this.stoppingFor.delete(other);
    this.stoppingFor.set(agent, { for: newcomer, promised, failed: false, step: this.steps });
  }

  /**
   * The eviction a stopping agent is part of, while it stands: its newcomer is starting and waits
   * for it. A failed stop ends the eviction once the newcomer gives up, which it does once the
   * stops of all its victims have settled (core evictionFailed), so until then it stands.
   */
  private evictionOf(a: AgentView, status: StatusReply): Eviction | undefined {
    const eviction = this.stoppingFor.get(a.id);
    if (a.state !== 'stopping' || eviction === undefined || !status.running.some((b) => b.id === eviction.for && b.state === 'starting')) return undefined;
    const pending = status.running.filter((b) => b.state === 'stopping' && this.stoppingFor.get(b.id)?.for === eviction.for);
    return pending.every((b) => this.stoppingFor.get(b.id)?.failed === true) ? undefined : eviction;
  }

  private checkMemory(status: StatusReply, docker: ReadonlySet<string>): void {
    const bytes = (agents: Iterable<string>) => [...agents].reduce((sum, agent) => sum + (MEMORY.get(agent) ?? 0), 0);
    const adopted = this.stepEvents.filter((e) => e.type === 'adopted').map((e) => e.agent);
    this.adoptedAny ||= adopted.length > 0;
    const victim = (a: AgentView) => this.evictionOf(a, status) !== undefined;
    const committed = bytes(status.running.filter((a) => !victim(a)).map((a) => a.id));
    // Adoptions and admissions of one step come in any order: the step may have admitted up to the budget, then adopted.
    if (adopted.length > 0) this.memoryAllowance = Math.max(this.memoryAllowance, Math.max(BUDGET_BYTES, this.committedMemory) + bytes(adopted));
    if (committed > this.memoryAllowance) {
      this.fail(`the pool committed ${committed / MiB} MiB against a budget of ${BUDGET_BYTES / MiB} MiB (it had ${this.committedMemory / MiB}, adopted ${bytes(adopted) / MiB})`);
    }
    this.committedMemory = committed;
    if (!this.adoptedAny && bytes(docker) > BUDGET_BYTES) this.fail(`Docker's containers use ${bytes(docker) / MiB} MiB against a budget of ${BUDGET_BYTES / MiB} MiB`);
  }

  /**
   * First come, first served: the line keeps its order and new places go to its end; a place is
   * served (`waited`) only with every place ahead of it gone too; and after a step nobody at the head could be served now, so no new request can have overtaken it
   * and no wake-up was missed.
   */
  private checkLine(status: StatusReply): void {
    const now = status.queue.map((e) => e.agent);
    const kept = this.line.filter((agent) => now.includes(agent));
    if (!isDeepStrictEqual(now.slice(0, kept.length), kept)) this.fail(`the line went from [${this.line.join(', ')}] to [${now.join(', ')}]: reordered, or a newcomer went ahead`);
    for (const event of this.stepEvents) {
      if (event.type !== 'waited') continue;
      const ahead = this.line.slice(0, Math.max(0, this.line.indexOf(event.agent)));
      const overtaken = ahead.filter((agent) => now.includes(agent));
      if (overtaken.length > 0) this.fail(`${event.agent} was served before ${overtaken.join(', ')}, ahead of it in line`);
    }
    this.line = now;
    const head = now[0];
    if (head !== undefined && this.servable(head, status)) this.fail(`${head}, at the head of the line, could be served now but still waits`);
  }

  /**
   * What `headAdmissible` decides, read from the status: anything but pool_full. Under a budget the
   * victims are taken until both a slot and the memory are there, so it can be served when the
   * agents that may be evicted give enough of both, whatever their order.
   */
  private servable(agent: string, status: StatusReply): boolean {
    if (status.running.some((a) => a.id === agent) || !(AGENTS as readonly string[]).includes(agent)) return true;
    const evictable = status.running.filter((a) => a.protection === null);
    if (status.slots_free === 0 && evictable.length === 0) return false;
    if (!this.memory) return true;
    const shortfall = (status.memory_used_bytes ?? 0) + (MEMORY.get(agent) ?? 0) - BUDGET_BYTES;
    return evictable.reduce((sum, a) => sum + (a.memory_expected_bytes ?? 0), 0) >= shortfall;
  }

  private checkSettledAndSaved(when: string): void {
    const open = this.callers.filter((c) => !c.settled).map((c) => c.what);
    if (open.length > 0) this.fail(`${when} callers still wait for an answer: ${open.join(', ')}`);
    const now = Date.now();
    const rules = settingsFor(this.cap, this.memory, this.idleStop, this.work).rules;
    // `paused` and the memory now are observations, never saved: the first listing and sample find
    // them again, so the saved state is read with the pool's word on which containers are paused
    // (it changes more than the state shown: a paused agent is never unresponsive).
    const live = this.pool.status().running;
    const memory = live.map(({ memory_bytes: _sampled, ...a }) => a);
    const paused = new Set(live.filter((a) => a.state === 'paused').map((a) => a.id));
    let loaded = this.store.load();
    for (const agent of paused) loaded = updateAgent(loaded, agent, (r) => ({ ...r, paused: true }));
    const saved = statusView(loaded, now, rules, undefined, this.driver.memoryLimits?.()).running;
    if (!isDeepStrictEqual(memory, saved)) this.fail(`${when} state.json differs from the pool's state:\n  saved  ${JSON.stringify(saved)}\n  memory ${JSON.stringify(memory)}`);
    const roster = (this.store.roster?.running ?? []).map((a) => `${a.id} ${a.state}`);
    const shown = this.pool.status().running.map((a) => `${a.id} ${a.state}`);
    if (!isDeepStrictEqual(roster, shown)) this.fail(`${when} roster.json shows [${roster.join(', ')}], the pool [${shown.join(', ')}]`);
  }

  /** Agents whose containers are the pool's to count and up, or being started. */
  private dockerSet(): Set<string> {
    const set = new Set<string>();
    for (const [agent, c] of this.driver.containers) if (c.up && !c.external) set.add(agent);
    for (const call of this.driver.pending) if (call.kind === 'start' && call.agent !== undefined) set.add(call.agent);
    return set;
  }

  private dockerAgrees(status: StatusReply): boolean {
    const docker = [...this.driver.containers].filter(([, c]) => c.up).map(([agent, c]) => `${agent} ${c.paused ? 'paused' : 'running'}`);
    // Silence is the pool's verdict on the agent, not Docker's: its container runs.
    const pool = status.running.map((a) => `${a.id} ${a.state === 'unresponsive' ? 'running' : a.state}`);
    return isDeepStrictEqual(docker.sort(), pool.sort());
  }

  private poolCountOf(status: StatusReply): number {
    return status.running.filter((a) => this.evictionOf(a, status)?.promised !== true).length;
  }

  private track(what: string, promise: Promise<StartReply | { status: string } | void>, controller?: AbortController): Caller {
    const caller: Caller = { what, controller, settled: false };
    this.callers.push(caller);
    promise.then(
      (reply) => {
        caller.settled = true;
        caller.outcome = reply?.status ?? 'done';
      },
      (error: unknown) => {
        caller.settled = true;
        caller.outcome = (error as Error).name;
        // Every refusal is one of the pool's errors, which map to replies; anything else is a bug.
        if (!(error instanceof PoolError || error instanceof ClientGoneError)) this.driver.violations.push(`${what} rejected with ${(error as Error).stack ?? String(error)}`);
      },
    );
    return caller;
  }

  /** Docker answers the call in flight of this kind (for this agent). */
  answer(kind: CallKind, agent?: string, ok = true): void {
    const call = this.driver.pending.find((c) => c.kind === kind && c.agent === agent);
    if (call === undefined) throw new Error(`no ${kind}${agent === undefined ? '' : ` ${agent}`} in flight`);
    if (ok) call.succeed(true);
    else call.fail();
  }

  private fail(message: string): never {
    throw new ModelViolation(`${message}\n${this.describe()}`);
  }

  /** The pool, Docker and the driver calls in flight, in a few lines. */
  describe(): string {
    const status = this.pool.status();
    const agents = status.running.map((a) => `${a.id} ${a.state}${a.protection ? ` (${a.protection})` : ''}`).join(', ') || 'none';
    const docker = [...this.driver.containers].filter(([, c]) => c.up).map(([agent, c]) => `${agent}${c.paused ? ' paused' : ''}${c.external ? ' external' : ''}`).join(', ') || 'none';
    const pending = this.driver.pending.map((c) => `${c.kind}${c.agent ? ` ${c.agent}` : ''}`).join(', ') || 'none';
    return `  at step ${this.steps}, t=+${(Date.now() - T0) / 1000} s, cap ${this.cap}\n  pool: ${agents}; line [${status.queue.map((e) => e.agent).join(', ')}]\n  docker up: ${docker}\n  driver calls in flight: ${pending}`;
  }
}

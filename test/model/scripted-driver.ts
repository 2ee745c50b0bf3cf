import { DriverError } from '../../src/contract/index.js';
import type { AgentDriver, AgentUsage, ObservedAgent } from '../../src/core/index.js';

// Test doubles live here and only here: the model test drives the pool service through its ports
// (AgentDriver, the store's save/publish, a clock), so it needs them scripted. The real drivers and
// store are tested on real Docker and real files elsewhere.

export type CallKind = 'start' | 'stop' | 'unpause' | 'list' | 'services';

/** One call the pool made, unanswered until the test says how Docker answers it. */
export interface DriverCall {
  readonly id: number;
  readonly kind: CallKind;
  readonly agent: string | undefined;
  /**
   * Docker does what was asked (a start brings the container up, a stop takes it down) and says
   * so. A listing reports the containers as they were when it was asked for, or with `fresh` as
   * they are now: real listings fall anywhere in between.
   */
  succeed(fresh?: boolean): void;
  /** Docker fails; a failed start leaves no container, a failed stop leaves it up. */
  fail(): void;
}

/** One agent's container as "Docker" holds it. */
export interface Container {
  up: boolean;
  paused: boolean;
  /** When it last came up (epoch ms), as the listing reports it. */
  startedAt: number;
  /**
   * Brought up behind the pool's back (`docker compose up` by hand) and not yet taken on by the pool:
   * the pool cannot count what it has not listed, so such a container is no fault of the pool's.
   */
  external: boolean;
}

/**
 * A double of the AgentDriver port whose every call is a deferred promise, answered by the test in
 * any order; the containers it keeps are the model's Docker. What the pool must never ask of
 * Docker is recorded in `violations` at the moment it asks.
 */
export class ScriptedDriver implements AgentDriver {
  readonly containers = new Map<string, Container>();
  readonly pending: DriverCall[] = [];
  readonly violations: string[] = [];
  calls = 0;
  private nextId = 0;
  /**
   * With a memory table (bytes by agent): each agent's limit in the definition, and what each up
   * container uses, answered at once. The two are the same, so a measurement never changes what
   * the pool expects of an agent, and the model can hold Docker to the budget exactly.
   */
  readonly memoryLimits?: () => ReadonlyMap<string, number>;
  readonly usage?: () => Promise<ReadonlyMap<string, AgentUsage>>;

  constructor(
    private readonly serviceNames: readonly string[],
    /** Names the pool may start or stop (the pooled agents, not infrastructure nor unknown names). */
    private readonly pooled: ReadonlySet<string>,
    private readonly clock: () => number,
    memory?: ReadonlyMap<string, number>,
  ) {
    if (memory === undefined) return;
    this.memoryLimits = () => memory;
    this.usage = async () => new Map([...this.containers].filter(([, c]) => c.up).map(([agent]) => [agent, { memoryBytes: memory.get(agent) ?? 0 }]));
  }

  services(): Promise<string[]> {
    return this.defer('services', undefined, () => [...this.serviceNames]);
  }

  start(agent: string): Promise<void> {
    this.checkStart('start', agent);
    return this.defer('start', agent, () => {
      const c = this.containers.get(agent);
      // Idempotent: a running container is left as is, and from now on it is the pool's.
      if (c?.up === true) Object.assign(c, { paused: false, external: false });
      else this.containers.set(agent, { up: true, paused: false, startedAt: this.clock(), external: false });
    });
  }

  stop(agent: string): Promise<void> {
    this.checkTouch('stop', agent);
    if (this.inFlight(agent, 'start', 'unpause')) this.violations.push(`stop(${agent}) while its start is in flight`);
    return this.defer('stop', agent, () => {
      const c = this.containers.get(agent);
      if (c !== undefined) Object.assign(c, { up: false, paused: false, external: false });
    });
  }

  unpause(agent: string): Promise<void> {
    this.checkStart('unpause', agent);
    return this.defer('unpause', agent, () => {
      const c = this.containers.get(agent);
      if (c?.up !== true) throw new DriverError(`${agent}: no such container`, ['docker', 'compose', 'unpause', '--', agent], 1, 'no container');
      c.paused = false;
    });
  }

  list(): Promise<ObservedAgent[]> {
    const asked = this.observe();
    return this.defer('list', undefined, (fresh) => (fresh ? this.observe() : asked));
  }

  private observe(): ObservedAgent[] {
    return [...this.containers].map(([agent, c]) => ({ agent, running: c.up, ...(c.paused && c.up && { paused: true }), startedAt: c.startedAt }));
  }

  /** Agents with a call of one of these kinds unanswered. */
  inFlight(agent: string, ...kinds: CallKind[]): boolean {
    return this.pending.some((call) => call.agent === agent && kinds.includes(call.kind));
  }

  private checkTouch(kind: CallKind, agent: string): void {
    if (!this.pooled.has(agent)) this.violations.push(`${kind}(${agent}): not a pooled agent (infrastructure or unknown)`);
  }

  private checkStart(kind: CallKind, agent: string): void {
    this.checkTouch(kind, agent);
    if (this.inFlight(agent, 'start', 'unpause', 'stop')) {
      const busy = this.pending.filter((call) => call.agent === agent).map((call) => call.kind);
      this.violations.push(`${kind}(${agent}) while ${busy.join(' and ')} of it in flight`);
    }
  }

  private defer<T>(kind: CallKind, agent: string | undefined, done: (fresh: boolean) => T): Promise<T> {
    this.calls++;
    return new Promise<T>((resolve, reject) => {
      const call: DriverCall = {
        id: ++this.nextId,
        kind,
        agent,
        succeed: (fresh = false) => {
          this.take(call);
          try {
            resolve(done(fresh));
          } catch (error) {
            reject(error);
          }
        },
        fail: () => {
          this.take(call);
          const argv = ['docker', 'compose', kind, ...(agent === undefined ? [] : ['--', agent])];
          reject(new DriverError(`${kind}${agent === undefined ? '' : ` ${agent}`} failed: scripted failure`, argv, 1, 'scripted failure'));
        },
      };
      this.pending.push(call);
    });
  }

  private take(call: DriverCall): void {
    const at = this.pending.indexOf(call);
    if (at === -1) throw new Error(`internal: driver call ${call.id} answered twice`);
    this.pending.splice(at, 1);
  }
}

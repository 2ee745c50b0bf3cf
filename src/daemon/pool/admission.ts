import {
  type CallerVia,
  ChangingStateError,
  ForbiddenAgentError,
  PoolFullError,
  ProjectInvalidError,
  type ReleaseReply,
  UnknownAgentError,
} from '../../contract/index.js';
import { type PoolSettings, type RequestOptions, type StartReply, decideRelease, decideRequest, isUnresponsive } from '../../core/index.js';
import { type AgentWork, type Emit, viaOf } from './agent-work.js';
import type { CatalogueCell } from './catalogue.js';
import type { InFlight } from './in-flight.js';
import type { StateCell } from './state-cell.js';

/** How an eviction's events say that the victim went for the memory it holds, its slot not promised to the newcomer. */
export const FREES_MEMORY = 'to free memory';

/** A request or release that keeps finding the agent in transition gives up after this many rounds. */
const MAX_ROUNDS = 20;

export interface AdmissionDeps {
  readonly cell: StateCell;
  readonly inFlight: InFlight;
  readonly catalogue: CatalogueCell;
  readonly work: AgentWork;
  readonly emit: Emit;
  readonly clock: () => number;
  readonly settings: () => PoolSettings;
}

/**
 * Admission and release as the core decides them: each round decides and reserves in one
 * synchronous step on the current state, then joins or starts the Docker work the decision calls
 * for. An agent in transition (a stop to wait for, a start to join) makes another round.
 */
export interface Admission {
  /** Rejects with PoolFullError when the pool is full and nobody can be evicted: the caller may wait in line. */
  admit(agent: string, requestedBy: string, options?: RequestOptions): Promise<StartReply>;
  release(agent: string, by: string, via?: CallerVia): Promise<ReleaseReply>;
  /** The stop in flight of an agent, or, for one left `stopping` by a failed stop, a new one, so nobody waits for ever. */
  stopInFlight(agent: string, by: string): Promise<void>;
}

export function createAdmission(deps: AdmissionDeps): Admission {
  const { cell, inFlight, catalogue, work } = deps;

  const stopInFlight = (agent: string, by: string): Promise<void> =>
    inFlight.stop(agent) ?? inFlight.trackStop(agent, work.stop(agent, 'stopped', by, { reason: 'retrying an unfinished stop' }));

  async function admit(agent: string, requestedBy: string, options: RequestOptions = {}): Promise<StartReply> {
    const { via } = options;
    let refreshed = false;
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const now = deps.clock();
      const { rules } = deps.settings();
      const d = decideRequest(cell.get(), { agent, requestedBy }, now, rules, catalogue.current(), options);
      switch (d.kind) {
        case 'forbidden':
          throw new ForbiddenAgentError(agent);
        case 'unknown_agent':
          if (!refreshed && (refreshed = true) && (await catalogue.refresh())) continue;
          throw new UnknownAgentError(agent, d.known);
        case 'pool_full':
          throw new PoolFullError(agent, { ...(d.reason !== undefined && { reason: d.reason }), ...(d.needsBytes !== undefined && { needsBytes: d.needsBytes }) });
        case 'too_large':
          throw new PoolFullError(agent, { reason: 'too_large', needsBytes: d.needsBytes, budgetBytes: d.budgetBytes });
        case 'project_invalid':
          deps.emit('failed', agent, requestedBy, { reason: `not started, nobody evicted: ${d.reason}`, ...viaOf(via) });
          throw new ProjectInvalidError(agent, d.reason);
        case 'unpause':
          cell.set(d.state);
          return await inFlight.trackStart(agent, work.start(agent, requestedBy, undefined, true, via));
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
          return await inFlight.trackStart(agent, work.start(agent, requestedBy, undefined, false, via));
        case 'evict': {
          const before = cell.get();
          cell.set(d.state);
          const why = (victim: string) => (isUnresponsive(before.agents.get(victim)!, now, rules) ? 'unresponsive' : 'least recently active');
          // A victim whose slot passes to the newcomer went for the count; the others for the memory they hold.
          const reason = (victim: string) => (d.state.agents.get(victim)?.slotFor === agent ? why(victim) : `${why(victim)}, ${FREES_MEMORY}`);
          const stopped = d.victims.map((victim) => inFlight.trackStop(victim, work.stop(victim, 'evicted', requestedBy, { for: agent, reason: reason(victim), ...viaOf(via) })));
          return await inFlight.trackStart(agent, work.start(agent, requestedBy, { victims: d.victims, stopped }, false, via));
        }
      }
    }
    throw new ChangingStateError(agent);
  }

  async function release(agent: string, by: string, via?: CallerVia): Promise<ReleaseReply> {
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const d = decideRelease(cell.get(), agent, deps.settings().rules, catalogue.current());
      switch (d.kind) {
        case 'forbidden':
          throw new ForbiddenAgentError(agent);
        case 'unknown_agent':
          throw new UnknownAgentError(agent, d.known);
        case 'not_running':
          return { status: 'not_running', agent };
        case 'stop':
          cell.set(d.state);
          await inFlight.trackStop(agent, work.stop(agent, 'released', by, viaOf(via)));
          return { status: 'stopped', agent };
        case 'join_stop':
          await stopInFlight(agent, by);
          return { status: 'stopped', agent };
        case 'await_start':
          await inFlight.start(agent)?.catch(() => {});
          continue;
      }
    }
    throw new ChangingStateError(agent);
  }

  return { admit, release, stopInFlight };
}

import { type CallerVia, DriverError, type PoolEventType, type StartedReply } from '../../contract/index.js';
import { type AgentDriver, evictionFailed, startFailed, startSucceeded, stopConfirmed, unpauseFailed } from '../../core/index.js';
import type { StateCell } from './state-cell.js';
import type { WaitLine } from './wait-line.js';

export type Extra = { for?: string; reason?: string; via?: CallerVia };

/** An event's `via`, when the bridge established who asked. */
export const viaOf = (via: CallerVia | undefined): { via?: CallerVia } => (via === undefined ? {} : { via });
export type Emit = (type: PoolEventType, agent: string, by: string, extra?: Extra) => void;

export interface AgentWorkDeps {
  readonly driver: AgentDriver;
  readonly cell: StateCell;
  readonly line: WaitLine;
  readonly emit: Emit;
  readonly clock: () => number;
  readonly stopTimeoutMs: () => number;
}

/**
 * The Docker work of a decision already taken and reserved: a stop or a start, run outside the
 * decision's synchronous step with the slot held, and the transition its outcome calls for. Every
 * outcome that frees a slot serves the wait line before it is saved.
 */
export interface AgentWork {
  /** Stops the agent; on a failure it stays `stopping` and counted (Docker has not confirmed it is down), and a DriverError is thrown. */
  stop(agent: string, type: PoolEventType, by: string, extra?: Extra): Promise<void>;
  /** Starts the agent, after its eviction's stops when it has some; `resume`: its container is paused, unpause it instead. */
  start(agent: string, by: string, eviction?: Eviction, resume?: boolean, via?: CallerVia): Promise<StartedReply>;
}

/** The agents stopped to make room for a start (the first is the one whose slot may be promised), and their stops in flight. */
export interface Eviction {
  readonly victims: readonly string[];
  readonly stopped: readonly Promise<void>[];
}

export function createAgentWork(deps: AgentWorkDeps): AgentWork {
  const { cell, line, emit } = deps;
  const asDriverError = (error: unknown, agent: string): DriverError =>
    error instanceof DriverError ? error : new DriverError(`${agent}: ${(error as Error).message}`, [], undefined, '', { cause: error });

  async function stop(agent: string, type: PoolEventType, by: string, extra: Extra = {}): Promise<void> {
    emit('stopping', agent, by, extra);
    try {
      await deps.driver.stop(agent, deps.stopTimeoutMs());
    } catch (error) {
      // Still `stopping`, still counted: Docker has not confirmed it is down. Reconcile retries.
      emit('failed', agent, by, { reason: `stop failed: ${(error as Error).message}`, ...viaOf(extra.via) });
      await cell.persist();
      throw asDriverError(error, agent);
    }
    cell.set(stopConfirmed(cell.get(), agent));
    emit(type, agent, by, extra);
    line.serve();
    await cell.persist();
  }

  async function start(agent: string, by: string, eviction?: Eviction, resume = false, via?: CallerVia): Promise<StartedReply> {
    if (eviction !== undefined) {
      // Every victim down before the newcomer starts: until then the memory it needs is still in use.
      const failed = (await Promise.allSettled(eviction.stopped)).find((outcome) => outcome.status === 'rejected');
      if (failed !== undefined) {
        cell.set(evictionFailed(cell.get(), eviction.victims[0]!, agent));
        line.serve();
        await cell.persist();
        throw asDriverError(failed.reason, agent);
      }
    }
    emit('starting', agent, by, { ...(resume && { reason: 'paused: unpausing' }), ...viaOf(via) });
    try {
      if (!resume) await deps.driver.start(agent);
      else if (deps.driver.unpause !== undefined) await deps.driver.unpause(agent);
      else throw new Error('its container is paused and this backend cannot unpause it');
    } catch (error) {
      // A paused container is still there: it keeps its slot. A start that failed leaves nothing.
      const state = cell.get();
      cell.set(resume ? unpauseFailed(state, agent) : startFailed(state, agent));
      emit('failed', agent, by, { reason: `${resume ? 'unpause' : 'start'} failed: ${(error as Error).message}`, ...viaOf(via) });
      line.serve();
      await cell.persist();
      throw asDriverError(error, agent);
    }
    cell.set(startSucceeded(cell.get(), agent, deps.clock()));
    emit('started', agent, by, { ...(eviction !== undefined ? { reason: `evicted ${eviction.victims.join(', ')}` } : resume && { reason: 'unpaused' }), ...viaOf(via) });
    // Running now, with a grace that ends at a time no wake-up was armed for (a starting agent is
    // no victim, so the line's timer could not count on it): the model test's seed 1003785841.
    line.serve();
    await cell.persist();
    if (eviction === undefined) return { status: 'started', agent };
    const [evicted, ...others] = eviction.victims as [string, ...string[]];
    return { status: 'started', agent, evicted, ...(others.length > 0 && { evicted_all: [...eviction.victims] }) };
  }

  return { stop, start };
}

import { byEvictionOrder, protection } from './evict.js';
import { type AgentRecord, type PoolRules, type PoolState, slotsUsed } from './state.js';

/** What Docker says of one service of the project. */
export interface ObservedAgent {
  readonly agent: string;
  /** The container is up: running, or paused (Docker's own `State.Running` is true for both). */
  readonly running: boolean;
  /** Up but frozen by `docker pause`: it still holds its memory, so it still counts. */
  readonly paused?: boolean;
  /** When its container started, if Docker said (epoch ms). */
  readonly startedAt?: number;
  /** A running container's addresses on its networks, where the backend lists them (compose over the Engine API): who calls from them. */
  readonly addresses?: readonly string[];
  /** The host its container runs on, for backends that span several (swarm). */
  readonly node?: string;
  /** The backend's id of its container (compose), so that reads about it after the listing need no listing of their own. */
  readonly container?: string;
}

export type LostReason = 'not_running' | 'start_interrupted' | 'infrastructure';

export interface ReconcileResult {
  readonly state: PoolState;
  /** Agents the state had whose container is gone or not running; dropped. */
  readonly lost: readonly { readonly agent: string; readonly reason: LostReason }[];
  /** Stops that had been decided (before a crash, say) and that Docker confirms are done. */
  readonly stopped: readonly string[];
  /** Running containers the state did not know; now pooled with `requested_by: "adopted"`. */
  readonly adopted: readonly string[];
  /** Agents the caller must stop: unfinished stops, and the overflow when adoption exceeded the cap. Already `stopping` in `state`. */
  readonly stop: readonly string[];
}

/** Stop order when the pool is over its cap: unprotected agents first, then those in their grace period, pinned agents last; within each, in eviction order. */
const OVERFLOW_TIER = { none: 0, grace: 1, busy: 2, pinned: 3 } as const;

/**
 * Brings the state in line with what Docker observes. Agents in `busy` have an operation in flight
 * whose own completion will settle them, so they are left alone. Infrastructure services are
 * never adopted or stopped. The cap is a hard limit (it stands for the host's memory), so when
 * adoption overfills the pool, agents are stopped even if they are inside their grace period.
 */
export function reconcile(
  state: PoolState,
  observed: readonly ObservedAgent[],
  now: number,
  rules: PoolRules,
  busy: ReadonlySet<string> = new Set(),
): ReconcileResult {
  const running = new Map<string, ObservedAgent>();
  for (const o of observed) if (o.running && !rules.infra.has(o.agent)) running.set(o.agent, o);

  const agents = new Map(state.agents);
  const lost: { agent: string; reason: LostReason }[] = [];
  const stopped: string[] = [];
  const adopted: string[] = [];
  const stop: string[] = [];

  for (const [name, record] of state.agents) {
    if (busy.has(name)) continue;
    const up = running.has(name);
    if (rules.infra.has(name)) {
      agents.delete(name);
      lost.push({ agent: name, reason: 'infrastructure' });
    } else if (record.status === 'running' && !up) {
      agents.delete(name);
      lost.push({ agent: name, reason: 'not_running' });
    } else if (record.status === 'starting') {
      // Nobody is starting it any more (the daemon restarted): it came up or it did not.
      if (up) agents.set(name, { ...record, status: 'running' });
      else {
        agents.delete(name);
        lost.push({ agent: name, reason: 'start_interrupted' });
      }
    } else if (record.status === 'stopping') {
      if (up) stop.push(name);
      else {
        agents.delete(name);
        stopped.push(name);
      }
    }
  }

  for (const [name, o] of running) {
    // A busy agent the state no longer holds was stopped (or failed to start) since the listing:
    // the listing's word on it is stale, and the next listing tells whether it really runs.
    if (agents.has(name) || busy.has(name)) continue;
    const since = o.startedAt !== undefined && o.startedAt <= now ? o.startedAt : now;
    agents.set(name, { status: 'running', started: since, lastActive: since, requestedBy: 'adopted' });
    adopted.push(name);
  }

  // Where a container runs and whether it is paused are observations, so the listing's word is
  // final, except for agents with an operation in flight: their container may have changed since the listing.
  for (const [name, record] of agents) {
    if (busy.has(name)) continue;
    const o = running.get(name);
    const paused = o?.paused === true;
    const node = o?.node ?? record.node;
    if (paused === (record.paused === true) && node === record.node) continue;
    const { paused: _was, node: _at, ...rest } = record;
    agents.set(name, { ...rest, ...(node !== undefined && { node }), ...(paused && { paused: true as const }) });
  }

  // A promise of a slot to an agent that is no longer starting is void: the slot is the evicted agent's again.
  for (const [name, record] of agents) {
    if (record.slotFor !== undefined && agents.get(record.slotFor)?.status !== 'starting') {
      const { slotFor: _void, ...rest } = record;
      agents.set(name, rest);
    }
  }

  let overflow = slotsUsed({ agents }) - rules.maxAgents;
  if (overflow > 0) {
    const candidates = [...agents].filter(([name, r]) => r.status === 'running' && !busy.has(name));
    const tier = ([name, r]: [string, AgentRecord]) => OVERFLOW_TIER[overflowProtection(name, r, now, rules)];
    const first = byEvictionOrder(now, rules);
    candidates.sort((a, b) => tier(a) - tier(b) || first(a, b));
    for (const [name, record] of candidates) {
      if (overflow <= 0) break;
      agents.set(name, { ...record, status: 'stopping' });
      stop.push(name);
      overflow--;
    }
  }

  // The same state when Docker agrees with it: the caller saves only a changed one, and an idle
  // pool would otherwise rewrite state.json and roster.json on every reconcile.
  const unchanged = agents.size === state.agents.size && [...agents].every(([name, record]) => state.agents.get(name) === record);
  return { state: unchanged ? state : { ...state, agents }, lost, stopped, adopted, stop };
}

function overflowProtection(name: string, record: AgentRecord, now: number, rules: PoolRules): keyof typeof OVERFLOW_TIER {
  const p = protection(name, record, now, rules);
  return p === 'pinned' || p === 'grace' || p === 'busy' ? p : 'none';
}

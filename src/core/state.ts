import type { AgentStatus, PoolConfig } from '../contract/index.js';

/** One pooled agent. Times are epoch milliseconds; the clock is always passed in. */
export interface AgentRecord {
  readonly status: AgentStatus;
  readonly started: number;
  readonly lastActive: number;
  readonly requestedBy: string;
  /**
   * Set on a `stopping` agent that is being evicted to make room for another: the name of the
   * `starting` agent its slot is promised to. The pair holds one slot between them, and the
   * newcomer's container is only started once this one is confirmed down, so neither the count
   * nor the containers ever exceed the cap.
   */
  readonly slotFor?: string;
  /** End of a busy hold a heartbeat asked for: no eviction until then, whatever the grace period. */
  readonly busyUntil?: number;
  /**
   * The host its container was seen on at the last listing, for backends that span several (swarm).
   * An observation, not part of the pool's decisions: not saved, found again by the first listing.
   */
  readonly node?: string;
  /**
   * Docker says its container is paused (`docker pause`): still there, holding its memory and its
   * slot, but frozen. An observation like `node`, kept in line by every listing and not saved.
   */
  readonly paused?: true;
}

export interface PoolState {
  readonly agents: ReadonlyMap<string, AgentRecord>;
}

export const emptyState: PoolState = { agents: new Map() };

/** What the decisions need of the configuration. */
export interface PoolRules {
  readonly maxAgents: number;
  readonly evictGraceMs: number;
  readonly infra: ReadonlySet<string>;
  readonly pinned: ReadonlySet<string>;
  /** Longest busy hold a heartbeat may set. */
  readonly busyMaxMs: number;
}

export function rulesFromConfig(config: PoolConfig): PoolRules {
  return {
    maxAgents: config.maxAgents,
    evictGraceMs: config.evictGraceSeconds * 1000,
    infra: new Set(config.infraServices),
    pinned: new Set(config.pinnedAgents),
    busyMaxMs: config.busyMaxSeconds * 1000,
  };
}

/** Slots held: every starting, running and stopping agent, except an evicted one whose slot is already promised. */
export function slotsUsed(state: PoolState): number {
  let used = 0;
  for (const record of state.agents.values()) if (!isHandedOver(record)) used++;
  return used;
}

function isHandedOver(record: AgentRecord): boolean {
  return record.status === 'stopping' && record.slotFor !== undefined;
}

export function withAgent(state: PoolState, name: string, record: AgentRecord): PoolState {
  const agents = new Map(state.agents);
  agents.set(name, record);
  return { agents };
}

export function withoutAgent(state: PoolState, name: string): PoolState {
  if (!state.agents.has(name)) return state;
  const agents = new Map(state.agents);
  agents.delete(name);
  return { agents };
}

export function updateAgent(state: PoolState, name: string, change: (record: AgentRecord) => AgentRecord): PoolState {
  const record = state.agents.get(name);
  return record === undefined ? state : withAgent(state, name, change(record));
}

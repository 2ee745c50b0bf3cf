import { type AgentView, type StatusReply, formatWireTime } from '../contract/index.js';
import { byLeastRecentlyActive, protection } from './evict.js';
import { type AgentRecord, type PoolRules, type PoolState, slotsUsed } from './state.js';

export function agentView(id: string, record: AgentRecord, now: number, rules: PoolRules): AgentView {
  return {
    id,
    started: formatWireTime(record.started),
    last_active: formatWireTime(record.lastActive),
    requested_by: record.requestedBy,
    state: record.status,
    protection: protection(id, record, now, rules) ?? null,
  };
}

/** The pool as `/status`, `roster.json` and the socket show it: agents in start order. */
export function statusView(state: PoolState, now: number, rules: PoolRules): StatusReply {
  const entries = [...state.agents].sort(([a, ra], [b, rb]) => ra.started - rb.started || byLeastRecentlyActive([a, ra], [b, rb]));
  return {
    running: entries.map(([id, record]) => agentView(id, record, now, rules)),
    slots_total: rules.maxAgents,
    slots_free: Math.max(0, rules.maxAgents - slotsUsed(state)),
  };
}

/** `/available`: the agents that are up and can be talked to. */
export function availableAgents(state: PoolState): string[] {
  return [...state.agents].filter(([, r]) => r.status === 'running').map(([id]) => id).sort();
}

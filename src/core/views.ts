import { type AgentView, type StatusReply, formatWireTime } from '../contract/index.js';
import { byLeastRecentlyActive, isUnresponsive, protectedUntil, protection, protectionEndsAt } from './evict.js';
import { type WaitQueue, emptyQueue, queueView } from './queue.js';
import { type MemorySample, expectedMemory, memoryInUse } from './memory.js';
import { type AgentRecord, type MemoryRules, type PoolRules, type PoolState, slotsUsed } from './state.js';

/**
 * Wire times of a record, formatted once: records are immutable (an update makes a new one), and
 * formatting dates was the largest cost of `/status` after the HTTP itself.
 */
const wireTimes = new WeakMap<AgentRecord, readonly [string, string]>();

function wireTimesOf(record: AgentRecord): readonly [string, string] {
  let text = wireTimes.get(record);
  if (text === undefined) wireTimes.set(record, (text = [formatWireTime(record.started), formatWireTime(record.lastActive)]));
  return text;
}

export function agentView(id: string, record: AgentRecord, now: number, rules: PoolRules, memory?: MemoryFigures): AgentView {
  const [started, lastActive] = wireTimesOf(record);
  const until = protectedUntil(id, record, now, rules);
  return {
    id,
    started,
    last_active: lastActive,
    requested_by: record.requestedBy,
    // A paused container holds its slot like a running one, and so does a silent one; the wire says which it is.
    state: record.status === 'running' && record.paused ? 'paused' : isUnresponsive(record, now, rules) ? 'unresponsive' : record.status,
    protection: protection(id, record, now, rules) ?? null,
    ...(until !== undefined && { protected_until: formatWireTime(until) }),
    ...(record.busyUntil !== undefined && now <= record.busyUntil && { busy_until: formatWireTime(record.busyUntil) }),
    ...(record.node !== undefined && { node: record.node }),
    ...(record.activeReason !== undefined && { active_reason: record.activeReason }),
    ...(memory !== undefined && memoryView(id, record, memory)),
  };
}

/** What the memory figures of a view are computed from, while a budget is set. */
interface MemoryFigures {
  readonly state: PoolState;
  readonly rules: MemoryRules;
  readonly limits: ReadonlyMap<string, number> | undefined;
  readonly usage: ReadonlyMap<string, MemorySample> | undefined;
}

function memoryView(id: string, record: AgentRecord, { state, rules, limits, usage }: MemoryFigures): Pick<AgentView, 'memory_bytes' | 'memory_peak_bytes' | 'memory_expected_bytes'> {
  const measured = state.memory?.get(id);
  const now = usage?.get(id);
  return {
    ...(now?.run === record.started && { memory_bytes: now.bytes }),
    ...(measured?.run === record.started && { memory_peak_bytes: measured.peaks[0] }),
    memory_expected_bytes: expectedMemory(id, state, rules, limits),
  };
}

/**
 * The last reply computed for each state, kept while it is still what `statusView` would compute:
 * the same state and rules, and `now` before the first moment an agent's grace protection ends
 * or it turns unresponsive.
 * A reply is shared by every caller in that window, so it is frozen.
 */
const statusCache = new WeakMap<PoolState, { rules: PoolRules; queue: WaitQueue; limits: unknown; usage: unknown; from: number; until: number; reply: StatusReply }>();

/**
 * The pool as `/status`, `roster.json` and the socket show it: agents in start order; with a
 * budget, memory figures (`limits`: the catalogue's; `usage`: the last sample, a new map per
 * sample, so a cached reply lasts until the next one).
 */
export function statusView(
  state: PoolState,
  now: number,
  rules: PoolRules,
  queue: WaitQueue = emptyQueue,
  limits?: ReadonlyMap<string, number>,
  usage?: ReadonlyMap<string, MemorySample>,
): StatusReply {
  const cached = statusCache.get(state);
  if (cached !== undefined && cached.rules === rules && cached.queue === queue && cached.limits === limits && cached.usage === usage && now >= cached.from && now < cached.until) {
    return cached.reply;
  }
  const entries = [...state.agents].sort(([a, ra], [b, rb]) => ra.started - rb.started || byLeastRecentlyActive([a, ra], [b, rb]));
  const memory = rules.memory && { state, rules: rules.memory, limits, usage };
  let until = Infinity;
  const running = entries.map(([id, record]) => {
    until = Math.min(until, protectionEndsAt(record, now, rules));
    return Object.freeze(agentView(id, record, now, rules, memory));
  });
  const reply: StatusReply = Object.freeze({
    running: Object.freeze(running) as StatusReply['running'],
    slots_total: rules.maxAgents,
    slots_free: Math.max(0, rules.maxAgents - slotsUsed(state)),
    queue: Object.freeze(queueView(queue)) as StatusReply['queue'],
    ...(memory && budgetView(memory.rules.budgetBytes, memoryInUse(state, memory.rules, limits))),
  });
  statusCache.set(state, { rules, queue, limits, usage, from: now, until, reply });
  return reply;
}

function budgetView(budgetBytes: number, usedBytes: number): Pick<StatusReply, 'memory_budget_bytes' | 'memory_used_bytes' | 'memory_free_bytes'> {
  // Adopted containers or a lowered budget can put the pool over it: nothing is free then, not less than nothing.
  return { memory_budget_bytes: budgetBytes, memory_used_bytes: usedBytes, memory_free_bytes: Math.max(0, budgetBytes - usedBytes) };
}

/** `/available`: the agents that are up and can be talked to. */
export function availableAgents(state: PoolState): string[] {
  return [...state.agents].filter(([, r]) => r.status === 'running').map(([id]) => id).sort();
}

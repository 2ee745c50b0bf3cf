import type { AgentView, StatusReply } from '../contract/api.js';
import { formatBytes } from '../contract/bytes.js';
import { left } from './relative-time.js';

/** What a refused start lacked, and the agents that would have to go for it, least recently active first. */
export interface RoomNeeded {
  /** Every slot is taken. */
  readonly slot: boolean;
  /** Bytes of the budget missing for the newcomer (0: memory is not what is short). */
  readonly shortBytes: number;
  /** The fewest agents, in LRU order, whose going would make the room; the pool's whole list when even that would not. */
  readonly agents: readonly AgentView[];
}

/**
 * What would have to go for `agent` to start, from the status as the refusal left it: a slot when
 * none is free, and under a budget what the newcomer needs (`needsBytes`, the refusal's) beyond
 * what is free. Agents already stopping are on their way and not listed; the rest are taken in
 * the order eviction takes them (unresponsive first, then least recently active, then earliest started, then by name),
 * whether they may be evicted or not: the point is to say which stand in the way, and why.
 * Undefined when nothing is short (the host's memory pressure, or room that came free since).
 */
export function roomNeeded(status: StatusReply, needsBytes: number | undefined): RoomNeeded | undefined {
  const slot = status.slots_free === 0;
  const { memory_budget_bytes: budget, memory_used_bytes: used } = status;
  const shortBytes = needsBytes === undefined || budget === undefined || used === undefined ? 0 : Math.max(0, used + needsBytes - budget);
  if (!slot && shortBytes === 0) return undefined;
  const candidates = status.running.filter((a) => a.state !== 'stopping').sort(byEvictionOrder);
  const agents: AgentView[] = [];
  let freed = 0;
  for (const candidate of candidates) {
    if ((agents.length > 0 || !slot) && freed >= shortBytes) break;
    agents.push(candidate);
    freed += candidate.memory_expected_bytes ?? 0;
  }
  return { slot, shortBytes, agents };
}

/** The core's eviction order on the wire's figures: unresponsive agents first, then least recently active. */
function byEvictionOrder(a: AgentView, b: AgentView): number {
  const rank = (agent: AgentView) => (agent.state === 'unresponsive' ? 0 : 1);
  return rank(a) - rank(b) || Date.parse(a.last_active) - Date.parse(b.last_active) || Date.parse(a.started) - Date.parse(b.started) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/** `grace, 40s left`, `pinned`, `busy, 12m left`; `may be evicted` when nothing protects it. */
export function protectionText(agent: AgentView, now: number): string {
  if (agent.protection === null) return 'may be evicted';
  if (agent.protected_until === undefined) return agent.protection;
  return `${agent.protection}, ${left(agent.protected_until, now)} left`;
}

/** `a slot (3 of 3 taken) and 31 MiB of memory (cfo is expected to need 64 MiB; 33 MiB of the 150 MiB budget is free)`. */
export function shortText(agent: string, room: RoomNeeded, status: StatusReply, needsBytes: number | undefined): string {
  const slot = room.slot ? [`a slot (${status.slots_total} of ${status.slots_total} taken)`] : [];
  const memory =
    room.shortBytes > 0
      ? [`${formatBytes(room.shortBytes)} of memory (${agent} is expected to need ${formatBytes(needsBytes ?? 0)}; ${formatBytes(status.memory_free_bytes ?? 0)} of the ${formatBytes(status.memory_budget_bytes ?? 0)} budget is free)`]
      : [];
  return [...slot, ...memory].join(' and ');
}

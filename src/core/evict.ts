import type { Protection } from '../contract/index.js';
import type { AgentRecord, PoolRules, PoolState } from './state.js';

/**
 * The first moment the agent counts as unresponsive (work mode): more than `unresponsiveMs` after
 * its last heartbeat, once it has beaten at all. Infinity when it cannot be: it never beat, the
 * rules track no liveness, or it is not simply running (a start or stop is under way, or someone
 * paused its container, which silences it on purpose).
 */
export function unresponsiveFrom(record: AgentRecord, rules: PoolRules): number {
  if (rules.unresponsiveMs === undefined || record.lastBeat === undefined || record.status !== 'running' || record.paused) return Infinity;
  return record.lastBeat + rules.unresponsiveMs + 1;
}

export function isUnresponsive(record: AgentRecord, now: number, rules: PoolRules): boolean {
  return now >= unresponsiveFrom(record, rules);
}

/** When the grace period protects the agent until (inclusive): it ends early for one that turns unresponsive, since nobody is home to be disturbed. */
function graceEnd(record: AgentRecord, rules: PoolRules): number {
  return Math.min(record.lastActive + rules.evictGraceMs, unresponsiveFrom(record, rules) - 1);
}

/**
 * Why an agent may not be evicted right now; undefined when it may.
 * Agents active within the grace period are protected, the boundary included: an agent last active
 * exactly `EVICT_GRACE_SECONDS` ago is still protected, unless it is unresponsive. Starting agents
 * are not victims either: their start is in flight and evicting them would only waste it. Pins and
 * busy holds are the operator's and the agent's own word, and hold for an unresponsive one too.
 */
export function protection(
  name: string,
  record: AgentRecord,
  now: number,
  rules: PoolRules,
  requested?: string,
): Protection | undefined {
  if (name === requested) return 'requested';
  if (record.status === 'stopping') return 'stopping';
  if (record.status === 'starting') return 'starting';
  if (rules.pinned.has(name)) return 'pinned';
  if (record.busyUntil !== undefined && now <= record.busyUntil) return 'busy';
  if (now <= graceEnd(record, rules)) return 'grace';
  return undefined;
}

/**
 * When the time-bound protections (grace, busy hold) of an agent end, if one applies now: the
 * later of the two, since the agent stays protected while either lasts. Undefined when neither
 * applies, or when a protection that does not end in time (pinned, starting, ...) comes first.
 */
export function protectedUntil(name: string, record: AgentRecord, now: number, rules: PoolRules): number | undefined {
  const reason = protection(name, record, now, rules);
  if (reason !== 'busy' && reason !== 'grace') return undefined;
  const grace = graceEnd(record, rules);
  const busyEnd = record.busyUntil !== undefined && now <= record.busyUntil ? record.busyUntil : -Infinity;
  return Math.max(now <= grace ? grace : -Infinity, busyEnd);
}

/**
 * The first moment after `now` at which a time-bound protection of the agent (grace period, busy
 * hold) has ended, or it turns unresponsive (it is shown so, and goes first); Infinity when none is
 * pending. Protections hold up to their end inclusive (see `protection`), so this is one
 * millisecond past it.
 */
export function protectionEndsAt(record: AgentRecord, now: number, rules: PoolRules): number {
  let at = Infinity;
  for (const end of [graceEnd(record, rules), record.busyUntil ?? -Infinity, unresponsiveFrom(record, rules) - 1]) if (end + 1 > now) at = Math.min(at, end + 1);
  return at;
}

/** Orders by least recently active; ties go to the earlier start, then to the name, so the choice is deterministic. */
export function byLeastRecentlyActive([nameA, a]: [string, AgentRecord], [nameB, b]: [string, AgentRecord]): number {
  return a.lastActive - b.lastActive || a.started - b.started || (nameA < nameB ? -1 : nameA > nameB ? 1 : 0);
}

/** The order victims are taken in: unresponsive agents first (nobody is home), then least recently active. */
export function byEvictionOrder(now: number, rules: PoolRules): (a: [string, AgentRecord], b: [string, AgentRecord]) => number {
  const rank = ([, record]: [string, AgentRecord]) => (isUnresponsive(record, now, rules) ? 0 : 1);
  return (a, b) => rank(a) - rank(b) || byLeastRecentlyActive(a, b);
}

/**
 * The agent that may be evicted to make room for `requested` and goes first (`byEvictionOrder`),
 * if any, other than those already chosen (`chosen`: a newcomer that needs the memory of several).
 * One pass, O(n).
 */
export function pickVictim(state: PoolState, now: number, rules: PoolRules, requested: string, chosen: readonly string[] = []): string | undefined {
  const first = byEvictionOrder(now, rules);
  let victim: [string, AgentRecord] | undefined;
  for (const entry of state.agents) {
    if (rules.infra.has(entry[0]) || chosen.includes(entry[0]) || protection(entry[0], entry[1], now, rules, requested) !== undefined) continue;
    if (victim === undefined || first(entry, victim) < 0) victim = entry;
  }
  return victim?.[0];
}

import type { Protection } from '../contract/index.js';
import type { AgentRecord, PoolRules, PoolState } from './state.js';

/**
 * Why an agent may not be evicted right now; undefined when it may.
 * Agents active within the grace period are protected, the boundary included: an agent last active
 * exactly `EVICT_GRACE_SECONDS` ago is still protected. Starting agents are not victims either: their
 * start is in flight and evicting them would only waste it.
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
  if (now - record.lastActive <= rules.evictGraceMs) return 'grace';
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
  const graceEnd = record.lastActive + rules.evictGraceMs;
  const busyEnd = record.busyUntil !== undefined && now <= record.busyUntil ? record.busyUntil : -Infinity;
  return Math.max(now <= graceEnd ? graceEnd : -Infinity, busyEnd);
}

/**
 * The first moment after `now` at which a time-bound protection of the agent (grace period, busy
 * hold) has ended; Infinity when none is pending. Protections hold up to their end inclusive
 * (see `protection`), so this is one millisecond past it.
 */
export function protectionEndsAt(record: AgentRecord, now: number, rules: PoolRules): number {
  let at = Infinity;
  for (const end of [record.lastActive + rules.evictGraceMs, record.busyUntil ?? -Infinity]) if (end + 1 > now) at = Math.min(at, end + 1);
  return at;
}

/** Orders by least recently active; ties go to the earlier start, then to the name, so the choice is deterministic. */
export function byLeastRecentlyActive([nameA, a]: [string, AgentRecord], [nameB, b]: [string, AgentRecord]): number {
  return a.lastActive - b.lastActive || a.started - b.started || (nameA < nameB ? -1 : nameA > nameB ? 1 : 0);
}

/**
 * The least-recently-active agent that may be evicted to make room for `requested`, if any, other
 * than those already chosen (`chosen`: a newcomer that needs the memory of several). One pass, O(n).
 */
export function pickVictim(state: PoolState, now: number, rules: PoolRules, requested: string, chosen: readonly string[] = []): string | undefined {
  let victim: [string, AgentRecord] | undefined;
  for (const entry of state.agents) {
    if (rules.infra.has(entry[0]) || chosen.includes(entry[0]) || protection(entry[0], entry[1], now, rules, requested) !== undefined) continue;
    if (victim === undefined || byLeastRecentlyActive(entry, victim) < 0) victim = entry;
  }
  return victim?.[0];
}

import type { ActiveReason } from '../contract/index.js';
import { pickVictim } from './evict.js';
import { expectedMemory, memoryInUse } from './memory.js';
import {
  type AgentRecord,
  type PoolRules,
  type PoolState,
  slotsUsed,
  updateAgent,
  withAgent,
  withoutAgent,
} from './state.js';

/** The services a request may name: the compose project's services minus infrastructure. */
export interface Catalogue {
  readonly known: ReadonlySet<string>;
  /**
   * Why no start can succeed now (compose's message for a project that does not load), if so.
   * A start that cannot succeed must not cost anyone their slot, so nobody is evicted for it.
   */
  readonly invalid?: string;
  /** Agents' memory limits in the project's definition (`mem_limit`, `deploy.resources.limits.memory`), in bytes. */
  readonly memoryLimits?: ReadonlyMap<string, number>;
}

export interface AdmitOptions {
  /** Autostart fills free slots only; it never evicts. */
  readonly allowEvict?: boolean;
}

export type RequestDecision =
  | { readonly kind: 'forbidden' }
  | { readonly kind: 'unknown_agent'; readonly known: readonly string[] }
  /** A start cannot succeed (see `Catalogue.invalid`): nothing was reserved, nobody is evicted. */
  | { readonly kind: 'project_invalid'; readonly reason: string }
  /** Running: `state` has its `last_active` refreshed. */
  | { readonly kind: 'already_running'; readonly state: PoolState }
  /**
   * Its container is paused: it already holds its slot, so it is resumed, never started again.
   * `state` holds it as `starting` (still paused) so that other requests join the resume.
   */
  | { readonly kind: 'unpause'; readonly state: PoolState }
  /** A start is in flight: wait for it and share its outcome (`state` refreshes `last_active`). */
  | { readonly kind: 'join_start'; readonly state: PoolState }
  /** The agent is being stopped: wait for the stop to finish, then decide again. */
  | { readonly kind: 'await_stop' }
  /** A slot is free and now reserved: `state` holds the agent as `starting`. */
  | { readonly kind: 'start'; readonly state: PoolState }
  /**
   * The pool is full: the `victims`, least recently active first, are now `stopping`, and the
   * requested agent is `starting`, to be started once they are all down. When the count was full,
   * the first victim's slot is promised to it (`slotFor`); the others (evicted for memory) hold
   * theirs until they are down. `victim` is the first, the one the reply names as `evicted`.
   */
  | { readonly kind: 'evict'; readonly victim: string; readonly victims: readonly string[]; readonly state: PoolState }
  /**
   * Nobody can be evicted, or not enough: `memory` when a slot was there but not the memory;
   * `memory_pressure` while the host is short of it (`PoolState.pressure`). Under a budget,
   * `needsBytes` is what the agent is expected to need, so the refusal can say what is short.
   */
  | { readonly kind: 'pool_full'; readonly reason?: 'memory' | 'memory_pressure'; readonly needsBytes?: number }
  /** The agent is expected to need more than the whole memory budget: no eviction could make room. */
  | { readonly kind: 'too_large'; readonly needsBytes: number; readonly budgetBytes: number };

/**
 * Decides a request and, when it starts something, reserves the slot in the returned state.
 * The caller applies the returned state before anything else can decide (decide-and-reserve is
 * one synchronous step), then does the Docker work with the slot held.
 */
export function decideRequest(
  state: PoolState,
  request: { readonly agent: string; readonly requestedBy: string },
  now: number,
  rules: PoolRules,
  catalogue: Catalogue,
  options: AdmitOptions = {},
): RequestDecision {
  const { agent, requestedBy } = request;
  if (rules.infra.has(agent)) return { kind: 'forbidden' };
  const record = state.agents.get(agent);
  if (record === undefined && !catalogue.known.has(agent)) {
    return { kind: 'unknown_agent', known: [...catalogue.known].sort() };
  }
  const reason = workReason(rules, 'request');
  const touch = () => updateAgent(state, agent, (r) => ({ ...r, lastActive: Math.max(r.lastActive, now), ...(reason && { activeReason: reason }) }));
  switch (record?.status) {
    case 'running':
      if (record.paused) return { kind: 'unpause', state: updateAgent(touch(), agent, (r) => ({ ...r, status: 'starting' })) };
      return { kind: 'already_running', state: touch() };
    case 'starting':
      return { kind: 'join_start', state: touch() };
    case 'stopping':
      return { kind: 'await_stop' };
    case undefined:
      break;
  }
  if (catalogue.invalid !== undefined) return { kind: 'project_invalid', reason: catalogue.invalid };
  const memory = memoryShortfall(state, agent, rules, catalogue);
  if ('kind' in memory) return memory;
  const { shortfall, needsBytes } = memory;
  if (state.pressure) return { kind: 'pool_full', reason: 'memory_pressure' };
  const starting = { status: 'starting', started: now, lastActive: now, requestedBy, ...(reason && { activeReason: reason }) } as const;
  const slotsNeeded = slotsUsed(state) < rules.maxAgents ? 0 : 1;
  if (slotsNeeded === 0 && shortfall <= 0) return { kind: 'start', state: withAgent(state, agent, starting) };
  const full = (victims: number): RequestDecision => ({
    kind: 'pool_full',
    ...(victims >= slotsNeeded && { reason: 'memory' }),
    ...(needsBytes !== undefined && { needsBytes }),
  });
  if (options.allowEvict === false) return full(0);
  const victims: string[] = [];
  for (let freed = 0; victims.length < slotsNeeded || freed < shortfall; ) {
    const victim = pickVictim(state, now, rules, agent, victims);
    if (victim === undefined) return full(victims.length);
    victims.push(victim);
    if (rules.memory !== undefined) freed += expectedMemory(victim, state, rules.memory, catalogue.memoryLimits);
  }
  let evicting = state;
  for (const victim of victims) {
    const promised = victim === victims[0] && slotsNeeded > 0;
    evicting = updateAgent(evicting, victim, (r) => ({ ...r, status: 'stopping', ...(promised && { slotFor: agent }) }));
  }
  return { kind: 'evict', victim: victims[0]!, victims, state: withAgent(evicting, agent, starting) };
}

/**
 * How many bytes must be freed before `agent` fits the memory budget (0 or less: it fits now, and
 * always without a budget) and what it is expected to need (under a budget), or why it never can.
 */
function memoryShortfall(
  state: PoolState,
  agent: string,
  rules: PoolRules,
  catalogue: Catalogue,
): { readonly shortfall: number; readonly needsBytes?: number } | Extract<RequestDecision, { kind: 'too_large' }> {
  if (rules.memory === undefined) return { shortfall: 0 };
  const { budgetBytes } = rules.memory;
  const needsBytes = expectedMemory(agent, state, rules.memory, catalogue.memoryLimits);
  if (needsBytes > budgetBytes) return { kind: 'too_large', needsBytes, budgetBytes };
  return { shortfall: memoryInUse(state, rules.memory, catalogue.memoryLimits) + needsBytes - budgetBytes, needsBytes };
}

/** The start (or the resume of a paused container) of `agent` is confirmed by Docker. */
export function startSucceeded(state: PoolState, agent: string, now: number): PoolState {
  return updateAgent(state, agent, ({ paused: _resumed, ...r }) => ({ ...r, status: 'running', lastActive: Math.max(r.lastActive, now) }));
}

/** The resume of a paused agent failed: its container is still there, paused, and keeps its slot. */
export function unpauseFailed(state: PoolState, agent: string): PoolState {
  return updateAgent(state, agent, (r) => ({ ...r, status: 'running', paused: true }));
}

/** The start failed: its slot is freed and the pool is as it was before the start was decided. */
export function startFailed(state: PoolState, agent: string): PoolState {
  return withoutAgent(state, agent);
}

/** Docker confirmed the agent's container is down: its slot is free (or passes to the agent it was promised to). */
export function stopConfirmed(state: PoolState, agent: string): PoolState {
  return withoutAgent(state, agent);
}

/**
 * The victim of an eviction could not be stopped, even with `kill`: the newcomer gives up its
 * reservation and the victim, still `stopping`, holds its own slot again until Docker says it is down.
 */
export function evictionFailed(state: PoolState, victim: string, agent: string): PoolState {
  const released = updateAgent(state, victim, ({ slotFor: _promised, ...r }) => r);
  return withoutAgent(released, agent);
}

export type ReleaseDecision =
  | { readonly kind: 'forbidden' }
  | { readonly kind: 'unknown_agent'; readonly known: readonly string[] }
  | { readonly kind: 'not_running' }
  /** `state` holds the agent as `stopping`; the caller stops its container. */
  | { readonly kind: 'stop'; readonly state: PoolState }
  /** Already being stopped: wait for that stop and share its outcome. */
  | { readonly kind: 'join_stop' }
  /** A start is in flight: wait for it to finish, then decide again. */
  | { readonly kind: 'await_start' };

export function decideRelease(state: PoolState, agent: string, rules: PoolRules, catalogue: Catalogue): ReleaseDecision {
  if (rules.infra.has(agent)) return { kind: 'forbidden' };
  const record = state.agents.get(agent);
  if (record === undefined) {
    return catalogue.known.has(agent) ? { kind: 'not_running' } : { kind: 'unknown_agent', known: [...catalogue.known].sort() };
  }
  switch (record.status) {
    case 'running':
      return { kind: 'stop', state: updateAgent(state, agent, (r) => ({ ...r, status: 'stopping' })) };
    case 'stopping':
      return { kind: 'join_stop' };
    case 'starting':
      return { kind: 'await_start' };
  }
}

/**
 * What the status names as the cause of an activity: only in work mode, where a heartbeat is not
 * enough and the cause is the point; in heartbeat mode every sign of life is the same.
 */
export function workReason(rules: PoolRules, reason: ActiveReason): ActiveReason | undefined {
  return rules.work === undefined ? undefined : reason;
}

function moved(record: AgentRecord, at: number, reason: ActiveReason | undefined): AgentRecord {
  return { ...record, lastActive: at, ...(reason && { activeReason: reason }) };
}

/** A sign of life (`reason`: its cause, see `workReason`): moves `last_active` forward, never back; unknown and stopping agents are ignored. */
export function recordActivity(state: PoolState, agent: string, at: number, reason?: ActiveReason): PoolState {
  const record = state.agents.get(agent);
  if (record === undefined || record.status === 'stopping' || record.lastActive >= at) return state;
  return withAgent(state, agent, moved(record, at, reason));
}

/**
 * A heartbeat: activity, and with `busySeconds` a busy hold from now (capped by the rules; 0 ends
 * a hold). A hold replaces the previous one, so an agent can shorten its own; a stopping agent
 * is past holding. In work mode a plain heartbeat is liveness only: activity is a hold or `active`;
 * every heartbeat, of any kind, is its last beat (see `AgentRecord.lastBeat`).
 */
export function recordHeartbeat(state: PoolState, agent: string, at: number, rules: PoolRules, busySeconds?: number, active = false): PoolState {
  const holding = busySeconds !== undefined && busySeconds > 0;
  const counts = rules.work === undefined || active || holding;
  const alive = rules.work === undefined ? state : recordBeat(state, agent, at);
  const touched = counts ? recordActivity(alive, agent, at, workReason(rules, holding ? 'busy' : 'heartbeat')) : alive;
  if (busySeconds === undefined) return touched;
  const record = touched.agents.get(agent);
  if (record === undefined || record.status === 'stopping') return touched;
  const { busyUntil: _previous, ...rest } = record;
  const hold = Math.min(busySeconds * 1000, rules.busyMaxMs);
  return withAgent(touched, agent, hold > 0 ? { ...rest, busyUntil: at + hold } : rest);
}

/** A sign that the agent is alive (work mode): its last beat moves forward, never back; unknown and stopping agents are ignored. */
function recordBeat(state: PoolState, agent: string, at: number): PoolState {
  const record = state.agents.get(agent);
  if (record === undefined || record.status === 'stopping' || (record.lastBeat ?? -Infinity) >= at) return state;
  return withAgent(state, agent, { ...record, lastBeat: at });
}

/**
 * Folds activity times (`POOL_DIR/activity/<agent>` modification times, or measured work) into
 * `last_active`, in one copy of the state; `reason` as for `recordActivity`.
 */
export function applyActivityMarks(state: PoolState, marks: ReadonlyMap<string, number>, reason?: ActiveReason): PoolState {
  let agents: Map<string, AgentRecord> | undefined;
  for (const [agent, at] of marks) {
    const record = state.agents.get(agent);
    if (record === undefined || record.status === 'stopping' || record.lastActive >= at) continue;
    agents ??= new Map(state.agents);
    agents.set(agent, moved(record, at, reason));
  }
  return agents === undefined ? state : { ...state, agents };
}

import type { AgentUsage } from './driver.js';
import { isUnresponsive, protection } from './evict.js';
import { type AgentRecord, type PoolRules, type PoolState, type WorkRules, updateAgent } from './state.js';

/** Who stops the agents idle stop stops: their events' `by`. */
export const IDLE_STOPPER = 'idle';

/**
 * The least time between two samples compared: dockerd (20.10) answers one-shot stats from its own
 * sampling, up to a second old, so two samples taken close together (reconciles on Docker events)
 * could credit a second's CPU to a fraction of one. Over 2 s the error is at most half again.
 */
export const MIN_WORK_SAMPLE_GAP_MS = 2000;

/** A container's counters at one sample, `at` on the pool's clock (epoch ms). */
export interface WorkSample {
  readonly at: number;
  readonly cpuNanos?: number;
  readonly networkBytes?: number;
}

/**
 * Whether a container worked between two consecutive samples: at least `cpuPercent` of one core
 * over the time between them (CPU nanoseconds over wall nanoseconds), or at least `netBytes`
 * received and sent. A counter that went back (the container restarted in between) or is missing
 * on either side says nothing; on `network_mode: host` there are no network counters at all.
 */
export function workedBetween(previous: WorkSample, next: WorkSample, rules: WorkRules): boolean {
  const wallNanos = (next.at - previous.at) * 1e6;
  if (wallNanos <= 0) return false;
  const cpu = delta(previous.cpuNanos, next.cpuNanos);
  if (cpu !== undefined && (cpu / wallNanos) * 100 >= rules.cpuPercent) return true;
  const network = delta(previous.networkBytes, next.networkBytes);
  return network !== undefined && network >= rules.netBytes;
}

function delta(before: number | undefined, after: number | undefined): number | undefined {
  return before === undefined || after === undefined || after < before ? undefined : after - before;
}

/**
 * One sampling of the running containers' usage at `at`: the samples to compare the next one
 * with (agents no longer running are forgotten; a sample within MIN_WORK_SAMPLE_GAP_MS of the last
 * is not compared, and the last is kept), and the agents that worked since their last sample.
 */
export function sampleWork(
  previous: ReadonlyMap<string, WorkSample>,
  usage: ReadonlyMap<string, AgentUsage>,
  at: number,
  rules: WorkRules,
): { readonly samples: ReadonlyMap<string, WorkSample>; readonly worked: ReadonlyMap<string, number> } {
  const samples = new Map<string, WorkSample>();
  const worked = new Map<string, number>();
  for (const [agent, { cpuNanos, networkBytes }] of usage) {
    const before = previous.get(agent);
    if (before !== undefined && at >= before.at && at - before.at < MIN_WORK_SAMPLE_GAP_MS) {
      samples.set(agent, before);
      continue;
    }
    const sample: WorkSample = { at, ...(cpuNanos !== undefined && { cpuNanos }), ...(networkBytes !== undefined && { networkBytes }) };
    samples.set(agent, sample);
    if (before !== undefined && workedBetween(before, sample, rules)) worked.set(agent, at);
  }
  return { samples, worked };
}

/**
 * The agents idle stop stops now (IDLE_STOP_SECONDS): running ones last active at least that long
 * ago, held `stopping` in the returned state. Never pinned, busy-held, starting or stopping ones
 * (infrastructure is not pooled); a paused one is frozen by someone on purpose and is left to them.
 * The grace period does not apply: the idle time is its own, longer or shorter.
 */
export function decideIdleStops(state: PoolState, now: number, rules: PoolRules): { readonly victims: readonly string[]; readonly state: PoolState } {
  const { idleStopMs } = rules;
  const victims: string[] = [];
  if (idleStopMs === undefined) return { victims, state };
  let next = state;
  for (const [name, record] of state.agents) {
    if (rules.infra.has(name) || record.paused || now - record.lastActive < idleStopMs) continue;
    const held = protection(name, record, now, rules);
    if (held !== undefined && held !== 'grace') continue;
    victims.push(name);
    next = updateAgent(next, name, (r) => ({ ...r, status: 'stopping' }));
  }
  return { victims, state: next };
}

/**
 * The state a new daemon takes over (state.json): an agent that had been beating keeps that, but
 * its silence is counted from `now`, the daemon's start. While no daemon listened no agent could
 * reach one, so the time since its last beat says nothing of it until it has had its intervals to
 * beat again; without the saved beat, one that fell silent before the restart would never count
 * as unresponsive. Outside work mode no beat is kept, and none is restored.
 */
export function resumeLiveness(state: PoolState, now: number, rules: PoolRules): PoolState {
  let agents: Map<string, AgentRecord> | undefined;
  for (const [name, record] of state.agents) {
    if (record.lastBeat === undefined || (rules.work !== undefined && record.lastBeat >= now)) continue;
    agents ??= new Map(state.agents);
    const { lastBeat: _saved, ...rest } = record;
    agents.set(name, rules.work === undefined ? rest : { ...rest, lastBeat: now });
  }
  return agents === undefined ? state : { ...state, agents };
}

/**
 * The agents that have turned unresponsive since they were last noticed, so that each silence
 * makes one event: `noticed` maps an agent to the last beat it was noticed unresponsive after.
 * The map returned forgets agents no longer silent or no longer in the pool.
 */
export function noticeUnresponsive(
  state: PoolState,
  now: number,
  rules: PoolRules,
  noticed: ReadonlyMap<string, number>,
): { readonly newly: readonly string[]; readonly noticed: ReadonlyMap<string, number> } {
  const newly: string[] = [];
  const next = new Map<string, number>();
  for (const [name, record] of state.agents) {
    if (record.lastBeat === undefined || !isUnresponsive(record, now, rules)) continue;
    if (noticed.get(name) !== record.lastBeat) newly.push(name);
    next.set(name, record.lastBeat);
  }
  return { newly, noticed: next };
}

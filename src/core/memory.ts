import type { MemoryRecord, MemoryRules, PoolState } from './state.js';

/**
 * An agent's memory at the last sample, for the status only: `run` is the `started` of the run it
 * measured, so a figure is never shown for a later run. Kept beside the state, not in it: it moves
 * at every sample, and a state that changed would be saved to state.json each time.
 */
export interface MemorySample {
  readonly bytes: number;
  readonly run: number;
}

/**
 * Runs whose peak an agent's expectation remembers: the highest of them counts, so one spike
 * weighs on an agent for its next two runs and is then forgotten, while a steady need stays.
 */
export const RUNS_REMEMBERED = 3;

/**
 * What an agent is expected to use, in bytes: the highest peak of its last runs as measured,
 * else its compose memory limit (`limits`), else the default.
 */
export function expectedMemory(agent: string, state: PoolState, rules: MemoryRules, limits: ReadonlyMap<string, number> = new Map()): number {
  const peaks = state.memory?.get(agent)?.peaks ?? [];
  return peaks.length > 0 ? Math.max(...peaks) : (limits.get(agent) ?? rules.defaultBytes);
}

/** The expected memory of every agent the pool holds: starting, running and stopping all count until Docker says they are down. */
export function memoryInUse(state: PoolState, rules: MemoryRules, limits?: ReadonlyMap<string, number>): number {
  let total = 0;
  for (const agent of state.agents.keys()) total += expectedMemory(agent, state, rules, limits);
  return total;
}

/**
 * Folds one sample of what the pool's agents use (bytes, by agent) into their peaks, in one copy of
 * the state. A sample of a run not seen before (the agent's `started` moved) opens a new peak and
 * the oldest beyond RUNS_REMEMBERED is dropped; agents the pool does not hold are not its to measure.
 */
export function recordUsage(state: PoolState, samples: ReadonlyMap<string, number>): PoolState {
  let memory: Map<string, MemoryRecord> | undefined;
  for (const [agent, bytes] of samples) {
    const record = state.agents.get(agent);
    if (record === undefined) continue;
    const known = (memory ?? state.memory)?.get(agent);
    const next = known?.run === record.started ? withPeak(known, bytes) : { peaks: [bytes, ...(known?.peaks ?? [])].slice(0, RUNS_REMEMBERED), run: record.started };
    if (next === known) continue;
    memory ??= new Map(state.memory);
    memory.set(agent, next);
  }
  return memory === undefined ? state : { ...state, memory };
}

/** One sample of what the pool's agents use (bytes, by agent) as the status shows it; agents the pool does not hold are left out, as in `recordUsage`. */
export function latestUsage(state: PoolState, samples: ReadonlyMap<string, number>): ReadonlyMap<string, MemorySample> {
  const latest = new Map<string, MemorySample>();
  for (const [agent, bytes] of samples) {
    const record = state.agents.get(agent);
    if (record !== undefined) latest.set(agent, { bytes, run: record.started });
  }
  return latest;
}

function withPeak(known: MemoryRecord, bytes: number): MemoryRecord {
  const [current = 0, ...earlier] = known.peaks;
  return bytes <= current ? known : { ...known, peaks: [bytes, ...earlier] };
}

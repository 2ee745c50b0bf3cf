import { pickVictim } from './evict.js';
import { type PoolRules, type PoolState, updateAgent } from './state.js';

/** Samples in a row below the minimum before the guard acts: one low reading is a blip, not pressure. */
export const PRESSURE_SAMPLES = 3;

/** Who stops the agents the guard stops: their events' `by`, and the metrics' cause. */
export const PRESSURE_STOPPER = 'memory_pressure';

/** The guard's memory of the host's MemAvailable readings. */
export interface Pressure {
  /** Readings in a row below the minimum. */
  readonly below: number;
  /** Acting: no new start, and one agent stopped per reading, until MemAvailable is back above the minimum plus the margin. */
  readonly active: boolean;
}

export const noPressure: Pressure = { below: 0, active: false };

/**
 * How far above the minimum MemAvailable must be again before the guard stands down: a tenth of
 * the minimum, at least 64 MiB, so that a reading that hovers at the minimum does not switch it on
 * and off at every sample (and starts and stops agents in turn).
 */
export function pressureMargin(minBytes: number): number {
  return Math.max(64 * 1024 ** 2, minBytes / 10);
}

/** Folds one reading of MemAvailable (bytes) in. */
export function samplePressure(pressure: Pressure, availableBytes: number, minBytes: number): Pressure {
  const below = availableBytes < minBytes ? pressure.below + 1 : 0;
  const active = pressure.active ? availableBytes < minBytes + pressureMargin(minBytes) : below >= PRESSURE_SAMPLES;
  return below === pressure.below && active === pressure.active ? pressure : { below, active };
}

/**
 * The agent the guard stops now, under pressure: the least recently active one that may be
 * evicted (today's rules: grace, pins, busy holds, transitions, infrastructure), held `stopping` in
 * the returned state; undefined when nobody may go.
 */
export function decidePressureStop(state: PoolState, now: number, rules: PoolRules): { readonly victim: string; readonly state: PoolState } | undefined {
  const victim = pickVictim(state, now, rules, '');
  if (victim === undefined) return undefined;
  return { victim, state: updateAgent(state, victim, (r) => ({ ...r, status: 'stopping' })) };
}

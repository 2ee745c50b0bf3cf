import { performance } from 'node:perf_hooks';
import { type ClockAnchor, poolTimeAt, wallStep } from '../core/index.js';

/** The two clocks of the host: the wall clock (epoch ms) and a monotonic one (ms, any origin). */
export interface Clock {
  wall(): number;
  monotonic(): number;
}

export const systemClock: Clock = { wall: () => Date.now(), monotonic: () => performance.now() };

/** The pool's time (see ClockAnchor): epoch ms that only the monotonic clock moves, until `resync`. */
export interface PoolClock {
  now(): number;
  monotonic(): number;
  /**
   * Compares the pool's time with the wall clock; on a step, moves the pool's time to the wall
   * clock and returns the step (ms, positive: forward), which the caller must apply to every time
   * it keeps, in the same synchronous step.
   */
  resync(): number | undefined;
}

export function createPoolClock(source: Clock): PoolClock {
  let anchor: ClockAnchor = { wall: source.wall(), monotonic: source.monotonic() };
  return {
    now: () => poolTimeAt(anchor, source.monotonic()),
    monotonic: () => source.monotonic(),
    resync() {
      const monotonic = source.monotonic();
      const wall = source.wall();
      const step = wallStep(anchor, wall, monotonic);
      if (step !== undefined) anchor = { wall, monotonic };
      return step;
    },
  };
}

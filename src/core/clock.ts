import type { WaitQueue } from './queue.js';
import type { AgentRecord, PoolState } from './state.js';

/**
 * The pool keeps time as epoch milliseconds (the wire, state.json and the event log show them),
 * but advances it with the monotonic clock: a step of the wall clock (NTP at a VPS's boot, an
 * operator's `date -s`) must neither lengthen nor cut short a grace period, busy hold or wait.
 * The anchor pairs one reading of each clock; pool time is the wall reading plus the monotonic
 * time since.
 */
export interface ClockAnchor {
  readonly wall: number;
  readonly monotonic: number;
}

/**
 * Smallest difference between the two clocks taken for a step. Linux slews both alike, so they
 * only drift apart by steps; the margin absorbs the two readings not being simultaneous and an
 * event loop busy between them.
 */
export const CLOCK_STEP_TOLERANCE_MS = 1000;

export function poolTimeAt(anchor: ClockAnchor, monotonic: number): number {
  return anchor.wall + (monotonic - anchor.monotonic);
}

/** How far the wall clock was stepped since the anchor (positive: forward), if by more than the tolerance. */
export function wallStep(anchor: ClockAnchor, wall: number, monotonic: number, toleranceMs = CLOCK_STEP_TOLERANCE_MS): number | undefined {
  const step = wall - poolTimeAt(anchor, monotonic);
  return Math.abs(step) > toleranceMs ? step : undefined;
}

/**
 * The state with every time it keeps moved by `deltaMs`: when the pool moves to a stepped wall
 * clock, every duration it is measuring (grace from last_active, busy holds, time since start)
 * stays what it was.
 */
export function shiftState(state: PoolState, deltaMs: number): PoolState {
  if (deltaMs === 0 || (state.agents.size === 0 && state.memory === undefined)) return state;
  const agents = new Map<string, AgentRecord>();
  for (const [name, record] of state.agents) {
    agents.set(name, {
      ...record,
      started: record.started + deltaMs,
      lastActive: record.lastActive + deltaMs,
      ...(record.busyUntil !== undefined && { busyUntil: record.busyUntil + deltaMs }),
      ...(record.lastBeat !== undefined && { lastBeat: record.lastBeat + deltaMs }),
    });
  }
  // A run is known by its start: shifted alike, the next sample still finds the run it belongs to.
  const memory = state.memory && new Map([...state.memory].map(([name, m]) => [name, { ...m, run: m.run + deltaMs }]));
  return { ...state, agents, ...(memory !== undefined && { memory }) };
}

/** The wait line with its arrivals and deadlines moved by `deltaMs`, for the same reason. */
export function shiftQueue(queue: WaitQueue, deltaMs: number): WaitQueue {
  if (deltaMs === 0 || queue.length === 0) return queue;
  return queue.map((entry) => ({
    ...entry,
    waiters: entry.waiters.map((w) => ({ ...w, since: w.since + deltaMs, deadline: w.deadline + deltaMs })),
  }));
}

import { describe, expect, it } from 'vitest';
import {
  CLOCK_STEP_TOLERANCE_MS,
  decideRequest,
  emptyQueue,
  enqueue,
  expiredWaiters,
  poolTimeAt,
  protection,
  shiftQueue,
  recordUsage,
  shiftState,
  wallStep,
} from '../../src/core/index.js';
import { createPoolClock } from '../../src/daemon/clock.js';
import { MiB, NOW, catalogue, pool, rules, withPeaks } from '../support/builders.js';

const HOUR = 3_600_000;
/** The monotonic clock's reading at NOW: any origin. */
const MONO = 5_000;
const anchor = { wall: NOW, monotonic: MONO };

describe('wallStep: when the wall clock was stepped, against the monotonic clock', () => {
  it.each([
    { what: 'both clocks moved alike: no step', wall: NOW + 90_000, mono: MONO + 90_000, step: undefined },
    { what: 'readings a few ms apart (a busy event loop): no step', wall: NOW + 10_004, mono: MONO + 10_000, step: undefined },
    { what: 'exactly the tolerance: no step', wall: NOW + 10_000 + CLOCK_STEP_TOLERANCE_MS, mono: MONO + 10_000, step: undefined },
    { what: 'just past the tolerance: a step', wall: NOW + 10_000 + CLOCK_STEP_TOLERANCE_MS + 1, mono: MONO + 10_000, step: CLOCK_STEP_TOLERANCE_MS + 1 },
    { what: 'stepped back an hour (NTP at boot)', wall: NOW + 2_000 - HOUR, mono: MONO + 2_000, step: -HOUR },
    { what: 'stepped forward an hour', wall: NOW + 2_000 + HOUR, mono: MONO + 2_000, step: HOUR },
    { what: 'stepped back while no time passed', wall: NOW - 5_000, mono: MONO, step: -5_000 },
  ])('$what', ({ wall, mono, step }) => {
    expect(wallStep(anchor, wall, mono)).toBe(step);
  });

  it('pool time advances with the monotonic clock only', () => {
    expect(poolTimeAt(anchor, MONO + 61_000)).toBe(NOW + 61_000);
  });
});

describe('durations across a wall-clock step: the pool shifts its times by the step (both ways)', () => {
  // Full pool: cfo last active 90 s ago, past a 60 s grace; a request for designer must evict it.
  const full = pool({ ceo: { idle: 10 }, cto: { idle: 20 }, cfo: { idle: 90 } });
  const decide = (state: typeof full, now: number) => decideRequest(state, { agent: 'designer', requestedBy: 'ceo' }, now, rules(), catalogue()).kind;

  it.each([
    { what: 'stepped back an hour: the LRU agent is still past its grace, evicted', step: -HOUR, shifted: 'evict', unshifted: 'pool_full' },
    { what: 'stepped forward an hour: the recently active agents are still inside theirs', step: HOUR, shifted: 'evict', unshifted: 'evict' },
  ])('$what', ({ step, shifted, unshifted }) => {
    expect(decide(shiftState(full, step), NOW + step)).toBe(shifted);
    // What the wall clock alone decided: a step back protected everyone for an hour.
    expect(decide(full, NOW + step)).toBe(unshifted);
  });

  it.each([
    { what: 'a busy hold set 1 s before a step forward of an hour still holds', step: HOUR, busy: 1_800, later: 60, reason: 'busy' },
    { what: 'a busy hold set 1 s before a step back of an hour ends when it should', step: -HOUR, busy: 1_800, later: 1_801, reason: undefined },
    { what: 'a grace period across a step forward: still protected 30 s on', step: HOUR, busy: undefined, later: 30, reason: 'grace' },
    { what: 'a grace period across a step back: over 61 s on', step: -HOUR, busy: undefined, later: 61, reason: undefined },
  ])('$what', ({ step, busy, later, reason }) => {
    const before = pool({ cfo: { idle: 0, ...(busy !== undefined && { busy }) } });
    const record = shiftState(before, step).agents.get('cfo')!;
    expect(protection('cfo', record, NOW + step + later * 1000, rules())).toBe(reason);
  });

  it('moves the runs memory peaks belong to with the starts, so the next sample finds its run, and keeps the pressure verdict', () => {
    const before = { ...withPeaks(pool({ cfo: {} }), { cfo: [300], qa: [200] }), pressure: true as const };
    const after = recordUsage(shiftState(before, -HOUR), new Map([['cfo', 350 * MiB]]));
    expect(after.memory?.get('cfo')?.peaks).toEqual([350 * MiB]);
    expect(after.memory?.get('qa')?.run).toBe(before.memory!.get('qa')!.run - HOUR);
    expect(after.pressure).toBe(true);
  });

  it('moves started, last_active and busy_until alike, and keeps everything else', () => {
    const before = pool({ cfo: { idle: 30, startedAgo: 600, busy: 100, by: 'ceo' }, qa: { status: 'starting', idle: 1 } });
    const after = shiftState(before, -HOUR);
    const cfo = before.agents.get('cfo')!;
    expect(after.agents.get('cfo')).toEqual({ ...cfo, started: cfo.started - HOUR, lastActive: cfo.lastActive - HOUR, busyUntil: cfo.busyUntil! - HOUR });
    expect(after.agents.get('qa')).not.toHaveProperty('busyUntil');
    expect(shiftState(before, 0)).toBe(before);
  });

  it('moves the last heartbeat alike, so a step makes no agent unresponsive (work mode)', () => {
    const before = pool({ cfo: { idle: 30, beat: 20 } });
    const cfo = before.agents.get('cfo')!;
    expect(shiftState(before, -HOUR).agents.get('cfo')?.lastBeat).toBe(cfo.lastBeat! - HOUR);
  });

  it('a wait of 15 s stays 15 s: its deadline moves with the step', () => {
    const { queue } = enqueue(emptyQueue, 'designer', 'ceo', { id: 1, since: NOW, deadline: NOW + 15_000 }, 8);
    const back = shiftQueue(queue, -HOUR);
    expect(expiredWaiters(back, NOW - HOUR + 14_999).size).toBe(0);
    expect(expiredWaiters(back, NOW - HOUR + 15_000)).toEqual(new Set([1]));
    // Unshifted, the step back would have kept it waiting for an hour and 15 s.
    expect(expiredWaiters(queue, NOW - HOUR + 15_000).size).toBe(0);
    expect(shiftQueue(queue, 0)).toBe(queue);
  });
});

describe('createPoolClock: the daemon clock on two sources', () => {
  it('keeps time through a step until resync, then moves to the wall clock and reports the step once', () => {
    let wall = NOW;
    let mono = MONO;
    const clock = createPoolClock({ wall: () => wall, monotonic: () => mono });
    wall += 10_000;
    mono += 10_000;
    expect(clock.now()).toBe(NOW + 10_000);
    expect(clock.resync()).toBeUndefined();
    wall -= HOUR;
    expect(clock.now()).toBe(NOW + 10_000);
    expect(clock.resync()).toBe(-HOUR);
    expect(clock.now()).toBe(NOW + 10_000 - HOUR);
    expect(clock.resync()).toBeUndefined();
    mono += 5_000;
    wall += 5_000;
    expect(clock.now()).toBe(NOW + 15_000 - HOUR);
  });
});

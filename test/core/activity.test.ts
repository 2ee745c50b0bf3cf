import { describe, expect, it } from 'vitest';
import {
  type WorkSample,
  applyActivityMarks,
  decideIdleStops,
  decideRequest,
  noticeUnresponsive,
  recordHeartbeat,
  resumeLiveness,
  sampleWork,
  statusView,
  workedBetween,
} from '../../src/core/index.js';
import { NOW, catalogue, pool, rules, secondsAgo, statuses } from '../support/builders.js';

const WORK = { cpuPercent: 5, netBytes: 64 * 1024 };
const work = rules({ work: WORK });
const SECOND_NS = 1e9;
const at = (seconds: number, cpuSeconds?: number, networkBytes?: number): WorkSample => ({
  at: NOW + seconds * 1000,
  ...(cpuSeconds !== undefined && { cpuNanos: cpuSeconds * SECOND_NS }),
  ...(networkBytes !== undefined && { networkBytes }),
});

describe('workedBetween: CPU over wall time, or bytes moved, between two samples (5 % of a core, 64 KiB)', () => {
  it.each([
    { rule: 'a quarter of a core over 10 s is work', before: at(0, 100), after: at(10, 102.5), worked: true },
    { rule: 'exactly 5 % of a core is work (the boundary included)', before: at(0, 100), after: at(10, 100.5), worked: true },
    { rule: 'just under 5 % of a core is not', before: at(0, 100), after: at(10, 100.49), worked: false },
    { rule: 'the same CPU spread over a longer interval is not', before: at(0, 100), after: at(60, 102.5), worked: false },
    { rule: '64 KiB moved is work, with no CPU to speak of', before: at(0, 100, 1000), after: at(10, 100, 1000 + 64 * 1024), worked: true },
    { rule: 'less than 64 KiB moved is not', before: at(0, 100, 1000), after: at(10, 100, 1000 + 64 * 1024 - 1), worked: false },
    { rule: 'on the host network (no network counters) only CPU counts', before: at(0, 100), after: at(10, 100.1), worked: false },
    { rule: 'counters that went back (a restart in between) say nothing', before: at(0, 100, 1e9), after: at(10, 1, 10), worked: false },
    { rule: 'a counter missing on one side says nothing', before: at(0), after: at(10, 100, 1e6), worked: false },
    { rule: 'two samples at the same time say nothing', before: at(10, 100), after: at(10, 200), worked: false },
    { rule: 'a clock that went back says nothing', before: at(10, 100), after: at(0, 200), worked: false },
  ])('$rule', ({ before, after, worked }) => {
    expect(workedBetween(before, after, WORK)).toBe(worked);
  });
});

describe('sampleWork: one sampling of the running containers', () => {
  it('reports who worked since their last sample, at the time of this one, and forgets agents no longer sampled', () => {
    const previous = new Map([['busy', at(-10, 100)], ['idle', at(-10, 100)], ['gone', at(-10, 100)]]);
    const usage = new Map([
      ['busy', { memoryBytes: 1, cpuNanos: 102.5 * SECOND_NS }],
      ['idle', { memoryBytes: 1, cpuNanos: 100.01 * SECOND_NS }],
      ['new', { memoryBytes: 1, cpuNanos: 500 * SECOND_NS }],
    ]);
    const { samples, worked } = sampleWork(previous, usage, NOW, WORK);
    expect([...worked]).toEqual([['busy', NOW]]);
    expect([...samples.keys()]).toEqual(['busy', 'idle', 'new']);
    expect(samples.get('new')).toEqual({ at: NOW, cpuNanos: 500 * SECOND_NS });
  });

  it('does not compare samples taken less than 2 s apart (dockerd answers from a sample up to a second old): the older one stays', () => {
    const previous = new Map([['busy', at(-1, 100)]]);
    const { samples, worked } = sampleWork(previous, new Map([['busy', { memoryBytes: 1, cpuNanos: 101 * SECOND_NS }]]), NOW, WORK);
    expect(worked.size).toBe(0);
    expect(samples.get('busy')).toEqual(at(-1, 100));
    const later = sampleWork(samples, new Map([['busy', { memoryBytes: 1, cpuNanos: 101 * SECOND_NS }]]), NOW + 1000, WORK);
    expect([...later.worked]).toEqual([['busy', NOW + 1000]]);
  });
});

describe('activity in work mode', () => {
  it.each([
    { rule: 'a plain heartbeat is liveness only', busy: undefined, active: false, lastActive: secondsAgo(300), reason: undefined },
    { rule: 'heartbeat --active is activity', busy: undefined, active: true, lastActive: NOW, reason: 'heartbeat' },
    { rule: 'a busy hold is activity', busy: 60, active: false, lastActive: NOW, reason: 'busy' },
    { rule: 'ending a busy hold is not', busy: 0, active: false, lastActive: secondsAgo(300), reason: undefined },
  ])('$rule', ({ busy, active, lastActive, reason }) => {
    const record = recordHeartbeat(pool({ ceo: {} }), 'ceo', NOW, work, busy, active).agents.get('ceo');
    expect(record?.lastActive).toBe(lastActive);
    expect(record?.activeReason).toBe(reason);
  });

  it('in heartbeat mode every heartbeat is activity, and no reason is kept', () => {
    const record = recordHeartbeat(pool({ ceo: {} }), 'ceo', NOW, rules()).agents.get('ceo');
    expect(record).toMatchObject({ lastActive: NOW });
    expect(record?.activeReason).toBeUndefined();
  });

  it('a request names its cause, and status shows it as active_reason', () => {
    const d = decideRequest(pool({ ceo: {} }), { agent: 'ceo', requestedBy: 'cto' }, NOW, work, catalogue());
    expect(d.kind === 'already_running' && d.state.agents.get('ceo')).toMatchObject({ lastActive: NOW, activeReason: 'request' });
    const started = decideRequest(pool({}), { agent: 'cfo', requestedBy: 'cto' }, NOW, work, catalogue());
    expect(started.kind === 'start' && statusView(started.state, NOW, work).running[0]?.active_reason).toBe('request');
  });

  it('measured work and marks fold in with their reasons, never moving last_active back', () => {
    const state = pool({ ceo: { idle: 100 }, cto: { idle: 5 } });
    const after = applyActivityMarks(state, new Map([['ceo', secondsAgo(20)], ['cto', secondsAgo(50)]]), 'work');
    expect(after.agents.get('ceo')).toMatchObject({ lastActive: secondsAgo(20), activeReason: 'work' });
    expect(after.agents.get('cto')).toBe(state.agents.get('cto'));
  });

  it('a full pool evicts the agent that only beats, not the one that works', () => {
    const beating = recordHeartbeat(pool({ ceo: { idle: 200 }, cto: { idle: 300 }, qa: { idle: 250 } }), 'cto', NOW, work);
    const working = applyActivityMarks(beating, new Map([['cto', secondsAgo(1)]]), 'work');
    const d = decideRequest(working, { agent: 'cfo', requestedBy: 'api' }, NOW, work, catalogue());
    expect(d.kind === 'evict' && d.victim).toBe('qa');
  });
});

describe('decideIdleStops (IDLE_STOP_SECONDS of 600)', () => {
  const idle = (overrides: Parameters<typeof rules>[0] = {}) => rules({ idleStopMs: 600_000, ...overrides });
  it.each([
    { rule: 'stops an agent idle that long, the boundary included, the pool not full', state: pool({ ceo: { idle: 600 }, cto: { idle: 599 } }), victims: ['ceo'] },
    { rule: 'stops every agent idle that long at once', state: pool({ ceo: { idle: 700 }, cto: { idle: 9000 } }), victims: ['ceo', 'cto'] },
    { rule: 'never a pinned agent', state: pool({ ceo: { idle: 9000 } }), pinned: ['ceo'], victims: [] },
    { rule: 'never one under a busy hold', state: pool({ ceo: { idle: 9000, busy: 60 } }), victims: [] },
    { rule: 'never one starting or stopping', state: pool({ ceo: { idle: 9000, status: 'starting' }, cto: { idle: 9000, status: 'stopping' } }), victims: [] },
    { rule: 'never a paused one, frozen on purpose', state: pool({ ceo: { idle: 9000, paused: true } }), victims: [] },
    { rule: 'even within a grace period longer than the idle time', state: pool({ ceo: { idle: 700 } }), evictGraceMs: 3_600_000, victims: ['ceo'] },
  ])('$rule', ({ state, pinned, evictGraceMs, victims }) => {
    const d = decideIdleStops(state, NOW, idle({ pinned, ...(evictGraceMs !== undefined && { evictGraceMs }) }));
    expect(d.victims).toEqual(victims);
    for (const victim of victims) expect(statuses(d.state)[victim]).toBe('stopping');
  });

  it('is off without IDLE_STOP_SECONDS', () => {
    const state = pool({ ceo: { idle: 1e6 } });
    expect(decideIdleStops(state, NOW, rules())).toEqual({ victims: [], state });
  });
});

describe('unresponsive agents (work mode, three intervals of 30 s)', () => {
  const silent = rules({ work: WORK, unresponsiveMs: 90_000 });

  it('status shows a silent agent as unresponsive and evictable, from the moment it turns so', () => {
    const state = pool({ ceo: { idle: 10, beat: 80 }, cto: { idle: 10, beat: 5 } });
    const before = statusView(state, NOW, silent).running;
    expect(before.map((a) => [a.id, a.state, a.protection])).toEqual([['ceo', 'running', 'grace'], ['cto', 'running', 'grace']]);
    // The same state a moment later: a cached reply must not outlive the change.
    const after = statusView(state, NOW + 10_001, silent).running;
    expect(after.map((a) => [a.id, a.state, a.protection])).toEqual([['ceo', 'unresponsive', null], ['cto', 'running', 'grace']]);
  });

  it('idle stop treats an unresponsive agent by its activity: stopped when idle that long, not for being silent', () => {
    const state = pool({ ceo: { idle: 700, beat: 900 }, cto: { idle: 5, beat: 900 } });
    expect(decideIdleStops(state, NOW, { ...silent, idleStopMs: 600_000 }).victims).toEqual(['ceo']);
  });

  it.each([
    { rule: 'an agent that had been beating is counted from the daemon start', spec: { beat: 900 }, work: true, beat: NOW },
    { rule: 'an agent that never beat stays so', spec: {}, work: true, beat: undefined },
    { rule: 'a beat later than the start (a clock set back) is kept', spec: { beat: -5 }, work: true, beat: NOW + 5000 },
    { rule: 'outside work mode no beat is kept', spec: { beat: 10 }, work: false, beat: undefined },
  ])('resumeLiveness: $rule', ({ spec, work: inWork, beat }) => {
    const resumed = resumeLiveness(pool({ ceo: spec }), NOW, inWork ? silent : rules());
    expect(resumed.agents.get('ceo')?.lastBeat).toBe(beat);
    expect(isUnresponsiveAt(resumed, NOW + 90_000)).toBe(false);
  });

  it('resumeLiveness leaves a state with no beats as it is', () => {
    const state = pool({ ceo: {} });
    expect(resumeLiveness(state, NOW, silent)).toBe(state);
  });

  it('noticeUnresponsive: one notice per silence, again after the agent beat and fell silent anew, none for agents gone', () => {
    const state = pool({ ceo: { beat: 100 }, cto: { beat: 5 } });
    const first = noticeUnresponsive(state, NOW, silent, new Map());
    expect(first.newly).toEqual(['ceo']);
    expect(noticeUnresponsive(state, NOW + 30_000, silent, first.noticed).newly).toEqual([]);
    const again = recordHeartbeat(state, 'ceo', NOW + 1000, silent);
    expect(noticeUnresponsive(again, NOW + 92_000, silent, first.noticed).newly).toEqual(['ceo', 'cto']);
    expect([...noticeUnresponsive(pool({}), NOW, silent, first.noticed).noticed]).toEqual([]);
  });

  function isUnresponsiveAt(state: ReturnType<typeof pool>, at: number): boolean {
    return statusView(state, at, silent).running.some((a) => a.state === 'unresponsive');
  }
});

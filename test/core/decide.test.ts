import { describe, expect, it } from 'vitest';
import {
  applyActivityMarks,
  decideRelease,
  decideRequest,
  evictionFailed,
  recordActivity,
  recordHeartbeat,
  slotsUsed,
  startFailed,
  startSucceeded,
  stopConfirmed,
  unpauseFailed,
} from '../../src/core/index.js';
import { MiB, NOW, catalogue, pool, rules, secondsAgo, statuses } from '../support/builders.js';

const request = (agent: string, requestedBy = 'ceo') => ({ agent, requestedBy });

describe('decideRequest (SPEC §1 request rules)', () => {
  it.each([
    { rule: 'refuses an infrastructure service', state: pool({}), agent: 'gateway', kind: 'forbidden' },
    { rule: 'refuses an infrastructure service even when it is a compose service', state: pool({}), agent: 'litellm', known: ['litellm', 'ceo'], kind: 'forbidden' },
    { rule: 'refuses a name that is not a service of the project', state: pool({}), agent: 'janitor', kind: 'unknown_agent' },
    { rule: 'answers already_running for a running agent', state: pool({ cfo: {} }), agent: 'cfo', kind: 'already_running' },
    { rule: 'joins a start in flight', state: pool({ cfo: { status: 'starting' } }), agent: 'cfo', kind: 'join_start' },
    { rule: 'waits for an agent being stopped', state: pool({ cfo: { status: 'stopping' } }), agent: 'cfo', kind: 'await_stop' },
    { rule: 'starts into a free slot', state: pool({ ceo: {}, cto: {} }), agent: 'cfo', kind: 'start' },
    { rule: 'evicts when the pool is full', state: pool({ ceo: {}, cto: {}, qa: {} }), agent: 'cfo', kind: 'evict' },
    { rule: 'answers pool_full when everyone is inside the grace period', state: pool({ ceo: { idle: 1 }, cto: { idle: 2 }, qa: { idle: 3 } }), agent: 'cfo', kind: 'pool_full' },
    { rule: 'accepts an agent the state holds although the catalogue does not list it (adopted)', state: pool({ legacy: {} }), agent: 'legacy', kind: 'already_running' },
    { rule: 'resumes a paused agent instead of starting it again', state: pool({ cfo: { paused: true } }), agent: 'cfo', kind: 'unpause' },
    { rule: 'resumes a paused agent on a full pool without evicting anyone', state: pool({ cfo: { paused: true }, ceo: {}, cto: {} }), agent: 'cfo', kind: 'unpause' },
    { rule: 'counts a paused agent against the cap', state: pool({ ceo: { paused: true, idle: 1 }, cto: { idle: 1 }, qa: { idle: 1 } }), agent: 'cfo', kind: 'pool_full' },
    { rule: 'starts nothing while the project does not load', state: pool({ ceo: {} }), agent: 'cfo', invalid: 'yaml: line 3: bad', kind: 'project_invalid' },
    { rule: 'evicts nobody for a start that cannot succeed', state: pool({ ceo: {}, cto: {}, qa: {} }), agent: 'cfo', invalid: 'yaml: line 3: bad', kind: 'project_invalid' },
    { rule: 'still answers already_running while the project does not load', state: pool({ cfo: {} }), agent: 'cfo', invalid: 'yaml: line 3: bad', kind: 'already_running' },
    { rule: 'still resumes a paused agent while the project does not load (Docker says whether it can)', state: pool({ cfo: { paused: true } }), agent: 'cfo', invalid: 'yaml: line 3: bad', kind: 'unpause' },
  ])('$rule', ({ state, agent, known, invalid, kind }) => {
    const cat = { ...(known ? catalogue(...known) : catalogue()), ...(invalid !== undefined && { invalid }) };
    expect(decideRequest(state, request(agent), NOW, rules(), cat).kind).toBe(kind);
  });

  it('names what compose said when it refuses a start, and reserves nothing', () => {
    const d = decideRequest(pool({ ceo: {}, cto: {}, qa: {} }), request('cfo'), NOW, rules(), { ...catalogue(), invalid: 'yaml: line 3: bad' });
    expect(d).toEqual({ kind: 'project_invalid', reason: 'yaml: line 3: bad' });
  });

  it('holds a paused agent being resumed as starting, so that other requests join the resume', () => {
    const d = decideRequest(pool({ cfo: { paused: true, idle: 500 } }), request('cfo'), NOW, rules(), catalogue());
    if (d.kind !== 'unpause') throw new Error(d.kind);
    expect(d.state.agents.get('cfo')).toMatchObject({ status: 'starting', lastActive: NOW, paused: true });
    expect(decideRequest(d.state, request('cfo', 'cto'), NOW, rules(), catalogue()).kind).toBe('join_start');
  });

  it('lists the known agents, sorted, with unknown_agent', () => {
    expect(decideRequest(pool({}), request('x'), NOW, rules(), catalogue('cto', 'ceo'))).toEqual({ kind: 'unknown_agent', known: ['ceo', 'cto'] });
  });

  it('refreshes last_active of a running agent that is requested again', () => {
    const d = decideRequest(pool({ cfo: { idle: 500 } }), request('cfo'), NOW, rules(), catalogue());
    expect(d.kind === 'already_running' && d.state.agents.get('cfo')?.lastActive).toBe(NOW);
  });

  it('reserves the slot as starting with who asked and when', () => {
    const d = decideRequest(pool({}), request('cfo', 'cto'), NOW, rules(), catalogue());
    expect(d.kind === 'start' && d.state.agents.get('cfo')).toEqual({ status: 'starting', started: NOW, lastActive: NOW, requestedBy: 'cto' });
  });

  it('does not evict for autostart', () => {
    const d = decideRequest(pool({ ceo: {}, cto: {}, qa: {} }), request('cfo', 'autostart'), NOW, rules(), catalogue(), { allowEvict: false });
    expect(d.kind).toBe('pool_full');
  });

  it('counts a pinned agent against the cap', () => {
    const d = decideRequest(pool({ ceo: { idle: 9000 }, cto: { idle: 1 } }), request('cfo'), NOW, rules({ maxAgents: 2, pinned: ['ceo'] }), catalogue());
    expect(d.kind).toBe('pool_full');
  });
});

describe('outcomes of a start or an eviction', () => {
  it('a confirmed start makes the agent running', () => {
    expect(statuses(startSucceeded(pool({ cfo: { status: 'starting' } }), 'cfo', NOW))).toEqual({ cfo: 'running' });
  });

  it('a failed start leaves the pool as it was before the start was decided', () => {
    const before = pool({ ceo: {}, cto: {} });
    const d = decideRequest(before, request('cfo'), NOW, rules(), catalogue());
    if (d.kind !== 'start') throw new Error(d.kind);
    expect(startFailed(d.state, 'cfo')).toEqual(before);
  });

  it('a resumed agent is running and no longer paused', () => {
    expect(startSucceeded(pool({ cfo: { status: 'starting', paused: true } }), 'cfo', NOW).agents.get('cfo')).toMatchObject({ status: 'running' });
    expect(startSucceeded(pool({ cfo: { status: 'starting', paused: true } }), 'cfo', NOW).agents.get('cfo')?.paused).toBeUndefined();
  });

  it('a failed resume leaves the agent paused, keeping its slot', () => {
    const after = unpauseFailed(pool({ cfo: { status: 'starting', paused: true } }), 'cfo');
    expect(after.agents.get('cfo')).toMatchObject({ status: 'running', paused: true });
    expect(slotsUsed(after)).toBe(1);
  });

  it('a confirmed stop of the victim hands its slot to the newcomer', () => {
    const d = decideRequest(pool({ ceo: {}, cto: { idle: 900 }, qa: {} }), request('cfo'), NOW, rules(), catalogue());
    if (d.kind !== 'evict') throw new Error(d.kind);
    const after = stopConfirmed(d.state, d.victim);
    expect(statuses(after)).toEqual({ ceo: 'running', qa: 'running', cfo: 'starting' });
    expect(slotsUsed(after)).toBe(3);
  });

  it('a victim that will not stop takes its slot back and the newcomer gives up its reservation', () => {
    const d = decideRequest(pool({ ceo: {}, cto: { idle: 900 }, qa: {} }), request('cfo'), NOW, rules(), catalogue());
    if (d.kind !== 'evict') throw new Error(d.kind);
    const after = evictionFailed(d.state, 'cto', 'cfo');
    expect(statuses(after)).toEqual({ ceo: 'running', cto: 'stopping', qa: 'running' });
    expect(after.agents.get('cto')?.slotFor).toBeUndefined();
    expect(slotsUsed(after)).toBe(3);
  });
});

describe('decideRelease', () => {
  it.each([
    { rule: 'refuses an infrastructure service', state: pool({}), agent: 'ollama', kind: 'forbidden' },
    { rule: 'refuses an unknown agent', state: pool({}), agent: 'janitor', kind: 'unknown_agent' },
    { rule: 'answers not_running for a known agent that is not pooled', state: pool({}), agent: 'cfo', kind: 'not_running' },
    { rule: 'stops a running agent', state: pool({ cfo: {} }), agent: 'cfo', kind: 'stop' },
    { rule: 'joins a stop in flight', state: pool({ cfo: { status: 'stopping' } }), agent: 'cfo', kind: 'join_stop' },
    { rule: 'waits for a start in flight before stopping', state: pool({ cfo: { status: 'starting' } }), agent: 'cfo', kind: 'await_start' },
  ])('$rule', ({ state, agent, kind }) => {
    expect(decideRelease(state, agent, rules(), catalogue()).kind).toBe(kind);
  });

  it('keeps a released agent counted while it stops', () => {
    const d = decideRelease(pool({ cfo: {} }), 'cfo', rules(), catalogue());
    expect(d.kind === 'stop' && slotsUsed(d.state)).toBe(1);
  });
});

describe('activity', () => {
  it.each([
    { what: 'a heartbeat moves last_active forward', state: pool({ cfo: { idle: 100 } }), at: NOW, expected: NOW },
    { what: 'an older mark never moves last_active back', state: pool({ cfo: { idle: 10 } }), at: secondsAgo(50), expected: secondsAgo(10) },
    { what: 'a heartbeat counts for an agent still starting', state: pool({ cfo: { status: 'starting', idle: 100 } }), at: NOW, expected: NOW },
    { what: 'a heartbeat for a stopping agent changes nothing', state: pool({ cfo: { status: 'stopping', idle: 100 } }), at: NOW, expected: secondsAgo(100) },
  ])('$what', ({ state, at, expected }) => {
    expect(recordActivity(state, 'cfo', at).agents.get('cfo')?.lastActive).toBe(expected);
  });

  it('a heartbeat for an agent that is not running changes nothing', () => {
    const state = pool({ ceo: {} });
    expect(recordActivity(state, 'cfo', NOW)).toBe(state);
  });

  it('folds activity-file times into last_active and ignores files of agents not pooled', () => {
    const state = pool({ ceo: { idle: 100 }, cto: { idle: 5 } });
    const after = applyActivityMarks(state, new Map([['ceo', secondsAgo(20)], ['cto', secondsAgo(50)], ['ghost', NOW]]));
    expect([...after.agents].map(([n, r]) => [n, r.lastActive])).toEqual([['ceo', secondsAgo(20)], ['cto', secondsAgo(5)]]);
  });
});

describe('liveness in work mode: heartbeats, unresponsive agents and requests (three intervals of 30 s)', () => {
  const work = rules({ work: { cpuPercent: 5, netBytes: 65_536 }, unresponsiveMs: 90_000 });

  it.each([
    { what: 'a plain heartbeat is its last beat, and not activity', state: pool({ cfo: { idle: 100 } }), busy: undefined, active: false, beat: NOW, lastActive: secondsAgo(100) },
    { what: 'heartbeat --active is a beat too', state: pool({ cfo: { idle: 100, beat: 20 } }), busy: undefined, active: true, beat: NOW, lastActive: NOW },
    { what: 'a busy hold is a beat too', state: pool({ cfo: { idle: 100, beat: 20 } }), busy: 60, active: false, beat: NOW, lastActive: NOW },
    { what: 'an agent still starting beats', state: pool({ cfo: { status: 'starting', idle: 100 } }), busy: undefined, active: false, beat: NOW, lastActive: secondsAgo(100) },
    { what: 'a stopping agent does not', state: pool({ cfo: { status: 'stopping', idle: 100, beat: 20 } }), busy: undefined, active: false, beat: secondsAgo(20), lastActive: secondsAgo(100) },
  ])('$what', ({ state, busy, active, beat, lastActive }) => {
    const record = recordHeartbeat(state, 'cfo', NOW, work, busy, active).agents.get('cfo');
    expect(record?.lastBeat).toBe(beat);
    expect(record?.lastActive).toBe(lastActive);
  });

  it('in heartbeat mode a heartbeat keeps no last beat: the record is what it was, with last_active moved', () => {
    const state = pool({ cfo: { idle: 100 } });
    expect(recordHeartbeat(state, 'cfo', NOW, rules()).agents.get('cfo')).toEqual({ ...state.agents.get('cfo'), lastActive: NOW });
  });

  it('a beat of an agent that was unresponsive makes it an ordinary candidate again', () => {
    const state = pool({ ceo: { idle: 100, beat: 200 }, cto: { idle: 300, beat: 5 }, cfo: { idle: 200, beat: 5 } });
    expect(decideRequest(state, request('qa'), NOW, work, catalogue())).toMatchObject({ kind: 'evict', victim: 'ceo' });
    const beaten = recordHeartbeat(state, 'ceo', NOW, work);
    expect(decideRequest(beaten, request('qa'), NOW, work, catalogue())).toMatchObject({ kind: 'evict', victim: 'cto' });
  });

  it('a full pool of agents in their grace period evicts the unresponsive one rather than answer pool_full', () => {
    const state = pool({ ceo: { idle: 5, beat: 100 }, cto: { idle: 5, beat: 5 }, cfo: { idle: 5, beat: 5 } });
    const d = decideRequest(state, request('qa', 'cto'), NOW, work, catalogue());
    expect(d).toMatchObject({ kind: 'evict', victim: 'ceo', victims: ['ceo'] });
    if (d.kind === 'evict') expect(statuses(d.state)).toEqual({ ceo: 'stopping', cto: 'running', cfo: 'running', qa: 'starting' });
  });

  it('under a memory budget, takes unresponsive agents first, then the least recently active', () => {
    const memory = { budgetBytes: 300 * MiB, defaultBytes: 100 * MiB };
    const state = pool({ ceo: { idle: 900, beat: 5 }, cto: { idle: 100, beat: 500 }, cfo: { idle: 300, beat: 5 } });
    const d = decideRequest(state, request('qa'), NOW, { ...work, maxAgents: 5, memory }, catalogue());
    // qa needs 100 MiB of a full 300 MiB: one victim, the unresponsive cto, though ceo is less recently active.
    expect(d).toMatchObject({ kind: 'evict', victims: ['cto'] });
    const big = decideRequest(state, request('qa'), NOW, { ...work, maxAgents: 5, memory }, { ...catalogue(), memoryLimits: new Map([['qa', 250 * MiB]]) });
    expect(big).toMatchObject({ kind: 'evict', victims: ['cto', 'ceo', 'cfo'] });
  });
});

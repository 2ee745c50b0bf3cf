import { describe, expect, it } from 'vitest';
import { decideRequest, isUnresponsive, pickVictim, protectedUntil, protection, protectionEndsAt, recordHeartbeat, slotsUsed } from '../../src/core/index.js';
import { NOW, catalogue, pool, rules, statuses } from '../support/builders.js';

describe('pickVictim: who is evicted when the pool is full (SPEC §1 rule 5)', () => {
  it.each([
    {
      rule: 'evicts the least recently active agent',
      state: pool({ ceo: { idle: 100 }, cto: { idle: 300 }, cfo: { idle: 200 } }),
      victim: 'cto',
    },
    {
      rule: 'does not evict an agent active within the grace period',
      state: pool({ ceo: { idle: 10 }, cto: { idle: 59 }, cfo: { idle: 61 } }),
      victim: 'cfo',
    },
    {
      rule: 'protects an agent last active exactly at the grace boundary',
      state: pool({ ceo: { idle: 60 }, cto: { idle: 30 }, cfo: { idle: 20 } }),
      victim: undefined,
    },
    {
      rule: 'evicts an agent one millisecond past the grace boundary',
      state: pool({ ceo: { idle: 60.001 }, cto: { idle: 30 }, cfo: { idle: 20 } }),
      victim: 'ceo',
    },
    {
      rule: 'never evicts the requested agent itself',
      state: pool({ designer: { idle: 900 }, cto: { idle: 300 }, cfo: { idle: 200 } }),
      victim: 'cto',
    },
    {
      rule: 'never evicts a pinned agent, however idle',
      state: pool({ ceo: { idle: 5000 }, cto: { idle: 300 }, cfo: { idle: 200 } }),
      pinned: ['ceo'],
      victim: 'cto',
    },
    {
      rule: 'never evicts an infrastructure service, even one found in the state',
      state: pool({ gateway: { idle: 5000 }, cto: { idle: 300 }, cfo: { idle: 200 } }),
      victim: 'cto',
    },
    {
      rule: 'does not pick an agent that is already stopping',
      state: pool({ ceo: { status: 'stopping', idle: 5000 }, cto: { idle: 300 }, cfo: { idle: 200 } }),
      victim: 'cto',
    },
    {
      rule: 'does not pick an agent whose start is in flight',
      state: pool({ ceo: { status: 'starting', idle: 5000 }, cto: { idle: 300 }, cfo: { idle: 200 } }),
      victim: 'cto',
    },
    {
      rule: 'finds nobody when every agent is protected',
      state: pool({ ceo: { idle: 1 }, cto: { status: 'stopping', idle: 900 }, cfo: { idle: 900 } }),
      pinned: ['cfo'],
      victim: undefined,
    },
    {
      rule: 'breaks a tie in last activity by the earlier start, then by name',
      state: pool({ cto: { idle: 300, startedAgo: 1000 }, cfo: { idle: 300, startedAgo: 2000 }, ceo: { idle: 300, startedAgo: 2000 } }),
      victim: 'ceo',
    },
    {
      rule: 'never evicts an agent in a busy hold, however long past its grace period',
      state: pool({ ceo: { idle: 5000, busy: 600 }, cto: { idle: 300 }, cfo: { idle: 200 } }),
      victim: 'cto',
    },
    {
      rule: 'protects a busy hold up to its last millisecond',
      state: pool({ ceo: { idle: 5000, busy: 0 }, cto: { idle: 30 }, cfo: { idle: 20 } }),
      victim: undefined,
    },
    {
      rule: 'evicts an agent whose busy hold ended, by last activity as usual',
      state: pool({ ceo: { idle: 5000, busy: -0.001 }, cto: { idle: 300 }, cfo: { idle: 200 } }),
      victim: 'ceo',
    },
    {
      // Paused agents hold their memory and slot, and cannot heartbeat: the same LRU rule applies
      // to them, and evicting one stops it (docker stop works on a paused container).
      rule: 'evicts a paused agent by the same least-recently-active rule as a running one',
      state: pool({ ceo: { idle: 100 }, cto: { idle: 300, paused: true }, cfo: { idle: 200 } }),
      victim: 'cto',
    },
    {
      rule: 'does not prefer a paused agent over a less recently active running one',
      state: pool({ ceo: { idle: 100, paused: true }, cto: { idle: 300 }, cfo: { idle: 200 } }),
      victim: 'cto',
    },
    {
      rule: 'keeps the grace period of a paused agent',
      state: pool({ ceo: { idle: 10, paused: true }, cto: { idle: 30 }, cfo: { idle: 20 } }),
      victim: undefined,
    },
    {
      rule: 'never evicts a pinned agent because it is paused',
      state: pool({ ceo: { idle: 5000, paused: true }, cto: { idle: 300 }, cfo: { idle: 200 } }),
      pinned: ['ceo'],
      victim: 'cto',
    },
    {
      rule: 'with no grace period, protects only activity at this very instant',
      state: pool({ ceo: { idle: 0 }, cto: { idle: 0.5 } }),
      grace: 0,
      victim: 'cto',
    },
  ])('$rule', ({ state, pinned, grace, victim }) => {
    expect(pickVictim(state, NOW, rules({ pinned, evictGraceMs: grace === undefined ? undefined : grace * 1000 }), 'designer')).toBe(victim);
  });
});

describe('pickVictim in work mode: an agent whose heartbeats stopped for three intervals (30 s) goes first', () => {
  const silent = rules({ work: { cpuPercent: 5, netBytes: 65_536 }, unresponsiveMs: 90_000 });
  it.each([
    {
      rule: 'evicts an unresponsive agent before a less recently active one',
      state: pool({ ceo: { idle: 100, beat: 91 }, cto: { idle: 300, beat: 5 }, cfo: { idle: 200, beat: 5 } }),
      victim: 'ceo',
    },
    {
      rule: 'evicts an unresponsive agent within its grace period: nobody is home',
      state: pool({ ceo: { idle: 10, beat: 91 }, cto: { idle: 30, beat: 5 }, cfo: { idle: 20, beat: 5 } }),
      victim: 'ceo',
    },
    {
      rule: 'does not count an agent silent exactly three intervals as unresponsive yet',
      state: pool({ ceo: { idle: 10, beat: 90 }, cto: { idle: 300, beat: 5 } }),
      victim: 'cto',
    },
    {
      rule: 'counts it one millisecond past the three intervals',
      state: pool({ ceo: { idle: 10, beat: 90.001 }, cto: { idle: 300, beat: 5 } }),
      victim: 'ceo',
    },
    {
      rule: 'takes the least recently active of several unresponsive agents',
      state: pool({ ceo: { idle: 100, beat: 500 }, cto: { idle: 200, beat: 95 }, cfo: { idle: 900, beat: 1 } }),
      victim: 'cto',
    },
    {
      rule: 'never evicts a pinned agent because it went silent',
      state: pool({ ceo: { idle: 10, beat: 900 }, cto: { idle: 300, beat: 5 } }),
      pinned: ['ceo'],
      victim: 'cto',
    },
    {
      rule: 'never evicts a silent agent under a busy hold',
      state: pool({ ceo: { idle: 10, beat: 900, busy: 600 }, cto: { idle: 300, beat: 5 } }),
      victim: 'cto',
    },
    {
      rule: 'never evicts the requested agent, silent or not',
      state: pool({ designer: { idle: 10, beat: 900 }, cto: { idle: 300, beat: 5 } }),
      victim: 'cto',
    },
    {
      rule: 'never evicts an infrastructure service found in the state, silent or not',
      state: pool({ gateway: { idle: 10, beat: 900 }, cto: { idle: 300, beat: 5 } }),
      victim: 'cto',
    },
    {
      rule: 'does not pick a silent agent whose start or stop is in flight',
      state: pool({ ceo: { status: 'starting', idle: 10, beat: 900 }, cfo: { status: 'stopping', idle: 10, beat: 900 }, cto: { idle: 300, beat: 5 } }),
      victim: 'cto',
    },
    {
      rule: 'does not count an agent that never beat as unresponsive, however long its silence',
      state: pool({ ceo: { idle: 10 }, cto: { idle: 30, beat: 5 } }),
      victim: undefined,
    },
    {
      rule: 'does not count a paused agent as unresponsive: it was silenced on purpose, and keeps its grace',
      state: pool({ ceo: { idle: 10, beat: 900, paused: true }, cto: { idle: 30, beat: 5 } }),
      victim: undefined,
    },
  ])('$rule', ({ state, pinned, victim }) => {
    expect(pickVictim(state, NOW, { ...silent, pinned: new Set(pinned) }, 'designer')).toBe(victim);
  });

  it('in heartbeat mode a last beat means nothing: least recently active as always', () => {
    const state = pool({ ceo: { idle: 10, beat: 900 }, cto: { idle: 300, beat: 5 } });
    expect(pickVictim(state, NOW, rules(), 'designer')).toBe('cto');
    expect(isUnresponsive(state.agents.get('ceo')!, NOW, rules())).toBe(false);
  });

  it('ends the grace period when the agent turns unresponsive, and says when', () => {
    // Active 10 s ago (grace until NOW + 50 s), last beat 80 s ago: unresponsive 10 s from now.
    const record = pool({ ceo: { idle: 10, beat: 80 } }).agents.get('ceo')!;
    expect(protection('ceo', record, NOW, silent)).toBe('grace');
    expect(protectedUntil('ceo', record, NOW, silent)).toBe(NOW + 10_000);
    expect(protectionEndsAt(record, NOW, silent)).toBe(NOW + 10_001);
    expect(protection('ceo', record, NOW + 10_001, silent)).toBeUndefined();
    expect(protectedUntil('ceo', record, NOW + 10_001, silent)).toBeUndefined();
  });

  it('wakes the status and the line when a running agent past its grace turns unresponsive', () => {
    const record = pool({ ceo: { idle: 300, beat: 80 } }).agents.get('ceo')!;
    expect(protectionEndsAt(record, NOW, silent)).toBe(NOW + 10_001);
    expect(protectionEndsAt(record, NOW, rules())).toBe(Infinity);
  });
});

describe('protection and protectedUntil: why an agent may not be evicted now, and until when', () => {
  it.each([
    { what: 'an idle agent', spec: { idle: 300 }, reason: undefined, until: undefined },
    { what: 'an agent in its grace period', spec: { idle: 10 }, reason: 'grace', until: NOW + 50_000 },
    { what: 'a busy agent past its grace period', spec: { idle: 300, busy: 600 }, reason: 'busy', until: NOW + 600_000 },
    { what: 'a busy agent whose grace outlasts the hold', spec: { idle: 10, busy: 20 }, reason: 'busy', until: NOW + 50_000 },
    { what: 'a busy agent whose hold ended', spec: { idle: 300, busy: -5 }, reason: undefined, until: undefined },
    { what: 'a pinned agent, busy or not', spec: { idle: 10, busy: 600 }, pinned: true, reason: 'pinned', until: undefined },
    { what: 'a starting agent', spec: { status: 'starting' as const, busy: 600 }, reason: 'starting', until: undefined },
  ])('$what', ({ spec, pinned, reason, until }) => {
    const record = pool({ ceo: spec }).agents.get('ceo')!;
    const r = rules({ pinned: pinned ? ['ceo'] : [] });
    expect(protection('ceo', record, NOW, r)).toBe(reason);
    expect(protectedUntil('ceo', record, NOW, r)).toBe(until);
  });
});

describe('recordHeartbeat: activity and busy holds', () => {
  const r = rules({ busyMaxMs: 1_800_000 });
  it.each([
    { what: 'a plain heartbeat refreshes activity and keeps a hold', spec: { idle: 100, busy: 60 }, busy: undefined, until: NOW + 60_000 },
    { what: 'busy_seconds sets a hold from now', spec: { idle: 100 }, busy: 600, until: NOW + 600_000 },
    { what: 'a hold is capped by BUSY_MAX_SECONDS', spec: { idle: 100 }, busy: 7200, until: NOW + 1_800_000 },
    { what: 'a new hold replaces a longer one', spec: { idle: 100, busy: 900 }, busy: 60, until: NOW + 60_000 },
    { what: 'busy_seconds 0 ends a hold', spec: { idle: 100, busy: 900 }, busy: 0, until: undefined },
  ])('$what', ({ spec, busy, until }) => {
    const state = recordHeartbeat(pool({ ceo: spec }), 'ceo', NOW, r, busy);
    expect(state.agents.get('ceo')).toMatchObject({ lastActive: NOW });
    expect(state.agents.get('ceo')?.busyUntil).toBe(until);
  });

  it('gives no hold to an agent that is stopping or not in the pool', () => {
    const state = pool({ ceo: { status: 'stopping', idle: 100 } });
    expect(recordHeartbeat(state, 'ceo', NOW, r, 600)).toBe(state);
    expect(recordHeartbeat(state, 'cfo', NOW, r, 600)).toBe(state);
  });
});

describe('slotsUsed: what counts against MAX_AGENTS', () => {
  it.each([
    { what: 'an empty pool', state: pool({}), used: 0 },
    { what: 'starting, running and stopping agents alike', state: pool({ a: { status: 'starting' }, b: {}, c: { status: 'stopping' } }), used: 3 },
    { what: 'a paused agent (its container still holds its memory)', state: pool({ a: { paused: true }, b: {} }), used: 2 },
    {
      what: 'an evicted agent and the agent its slot is promised to as one slot',
      state: pool({ a: { status: 'stopping', slotFor: 'b' }, b: { status: 'starting' } }),
      used: 1,
    },
  ])('counts $what', ({ state, used }) => {
    expect(slotsUsed(state)).toBe(used);
  });
});

describe('decideRequest: the eviction path keeps the cap', () => {
  it('marks the victim stopping, promises its slot and reserves the newcomer, in one state', () => {
    const state = pool({ ceo: { idle: 100 }, cto: { idle: 300 }, cfo: { idle: 200 } });
    const decision = decideRequest(state, { agent: 'qa', requestedBy: 'ceo' }, NOW, rules(), catalogue());
    expect(decision).toMatchObject({ kind: 'evict', victim: 'cto' });
    if (decision.kind !== 'evict') return;
    expect(statuses(decision.state)).toEqual({ ceo: 'running', cto: 'stopping', cfo: 'running', qa: 'starting' });
    expect(decision.state.agents.get('cto')?.slotFor).toBe('qa');
    expect(slotsUsed(decision.state)).toBe(3);
  });

  it('answers pool_full rather than exceed the cap when starting and stopping agents fill it', () => {
    const state = pool({ ceo: { status: 'starting' }, cto: { status: 'stopping' }, cfo: { idle: 5 } });
    expect(decideRequest(state, { agent: 'qa', requestedBy: 'x' }, NOW, rules(), catalogue()).kind).toBe('pool_full');
  });

  it('never lets a second eviction take a slot already promised', () => {
    let state = pool({ ceo: { idle: 100 }, cto: { idle: 300 }, cfo: { idle: 200 } });
    const kinds: string[] = [];
    for (const agent of ['qa', 'designer', 'software-engineer', 'ceo']) {
      const d = decideRequest(state, { agent, requestedBy: 'x' }, NOW, rules({ evictGraceMs: 0 }), catalogue());
      kinds.push(d.kind);
      if ('state' in d) state = d.state;
      expect(slotsUsed(state)).toBeLessThanOrEqual(3);
    }
    // Three evictions use up the three running agents; the fourth request finds only in-flight agents.
    expect(kinds).toEqual(['evict', 'evict', 'evict', 'await_stop']);
  });
});

import { describe, expect, it } from 'vitest';
import { decideRequest, evictionFailed, expectedMemory, latestUsage, memoryInUse, recordUsage, slotsUsed, statusView, stopConfirmed, updateAgent } from '../../src/core/index.js';
import { MiB, NOW, catalogue, pool, rules, statuses, withPeaks } from '../support/builders.js';

const request = (agent: string, requestedBy = 'ceo') => ({ agent, requestedBy });
/** A budget of 1000 MiB, 330 MiB for an agent never measured, and a count cap that does not get in the way unless a case says so. */
const budget = (overrides: { maxAgents?: number; pinned?: string[]; budget?: number } = {}) =>
  rules({ maxAgents: overrides.maxAgents ?? 10, pinned: overrides.pinned ?? [], memory: { budgetBytes: (overrides.budget ?? 1000) * MiB, defaultBytes: 330 * MiB } });
const limits = (mib: Record<string, number>) => ({ ...catalogue(), memoryLimits: new Map(Object.entries(mib).map(([name, m]) => [name, m * MiB])) });
/** A usage sample, in MiB by agent. */
const sample = (mib: Record<string, number>) => new Map(Object.entries(mib).map(([name, m]) => [name, m * MiB]));
const three = pool({ ceo: { idle: 300 }, cto: { idle: 400 }, qa: { idle: 200 } });

describe('decideRequest under a memory budget (issue 17)', () => {
  it.each([
    { rule: 'starts when the newcomer fits beside everyone', state: pool({ ceo: {}, cto: {} }), agent: 'cfo', victims: [] },
    { rule: 'evicts exactly one when one frees enough', state: three, agent: 'cfo', victims: ['cto'] },
    { rule: 'evicts several, least recently active first, for a big newcomer', state: three, agent: 'designer', cat: limits({ designer: 600 }), victims: ['cto', 'ceo'] },
    { rule: 'evicts nobody for a newcomer whose measured peak fits, whatever its compose limit', state: withPeaks(pool({ ceo: {}, cto: {} }), { designer: [20] }), agent: 'designer', cat: limits({ designer: 600 }), victims: [] },
    {
      rule: 'frees by what the victims are expected to use: one measured big victim is enough',
      state: withPeaks(three, { ceo: [20], cto: [700], qa: [20] }),
      agent: 'designer',
      cat: limits({ designer: 600 }),
      victims: ['cto'],
    },
    { rule: 'passes over a pinned agent, however idle', state: pool({ ceo: { idle: 9000 }, cto: { idle: 400 }, qa: { idle: 200 } }), agent: 'designer', cat: limits({ designer: 600 }), pinned: ['ceo'], victims: ['cto', 'qa'] },
    { rule: 'passes over a busy hold', state: pool({ ceo: { idle: 300 }, cto: { idle: 400, busy: 600 }, qa: { idle: 200 } }), agent: 'designer', cat: limits({ designer: 600 }), victims: ['ceo', 'qa'] },
    { rule: 'passes over an agent in its grace period', state: pool({ ceo: { idle: 30 }, cto: { idle: 400 }, qa: { idle: 200 } }), agent: 'designer', cat: limits({ designer: 600 }), victims: ['cto', 'qa'] },
    { rule: 'never takes an infrastructure service found in the state', state: pool({ gateway: { idle: 9000 }, cto: { idle: 400 }, qa: { idle: 200 } }), agent: 'designer', cat: limits({ designer: 600 }), victims: ['cto', 'qa'] },
    { rule: 'still evicts one for the count when memory is plenty', state: three, agent: 'cfo', maxAgents: 3, budgetMiB: 10_000, victims: ['cto'] },
  ])('$rule', ({ state, agent, cat, pinned, maxAgents, budgetMiB, victims }) => {
    const d = decideRequest(state, request(agent), NOW, budget({ pinned, maxAgents, budget: budgetMiB }), cat ?? catalogue());
    if (victims.length === 0) expect(d.kind).toBe('start');
    else expect(d).toMatchObject({ kind: 'evict', victim: victims[0], victims });
  });

  it('holds every victim as stopping and the newcomer as starting, in one step', () => {
    const d = decideRequest(three, request('designer'), NOW, budget(), limits({ designer: 600 }));
    expect(statuses(d.kind === 'evict' ? d.state : three)).toEqual({ ceo: 'stopping', cto: 'stopping', qa: 'running', designer: 'starting' });
  });

  it('promises no slot when the count had room: victims evicted for memory hold theirs until they are down', () => {
    const d = decideRequest(three, request('designer'), NOW, budget(), limits({ designer: 600 }));
    if (d.kind !== 'evict') throw new Error(d.kind);
    expect([...d.state.agents.values()].filter((r) => r.slotFor !== undefined)).toEqual([]);
    expect(slotsUsed(d.state)).toBe(4);
  });

  it('promises the first victim’s slot when the count was full too', () => {
    const d = decideRequest(three, request('designer'), NOW, budget({ maxAgents: 3 }), limits({ designer: 600 }));
    if (d.kind !== 'evict') throw new Error(d.kind);
    expect(d.state.agents.get('cto')?.slotFor).toBe('designer');
    expect(d.state.agents.get('ceo')?.slotFor).toBeUndefined();
    expect(slotsUsed(d.state)).toBe(3);
  });

  it('keeps counting each victim’s memory until its stop is confirmed, so nobody else takes it meanwhile', () => {
    const d = decideRequest(three, request('designer'), NOW, budget(), limits({ designer: 600 }));
    if (d.kind !== 'evict') throw new Error(d.kind);
    const rulesNow = budget().memory!;
    expect(memoryInUse(d.state, rulesNow, limits({ designer: 600 }).memoryLimits)).toBe((330 * 3 + 600) * MiB);
    const oneDown = stopConfirmed(d.state, 'cto');
    expect(decideRequest(oneDown, request('cfo'), NOW, budget(), limits({ designer: 600 }))).toEqual({ kind: 'pool_full', reason: 'memory', needsBytes: 330 * MiB });
  });

  it('gives up the newcomer’s reservation when a victim will not stop, the others staying counted until they are down', () => {
    const d = decideRequest(three, request('designer'), NOW, budget({ maxAgents: 3 }), limits({ designer: 600 }));
    if (d.kind !== 'evict') throw new Error(d.kind);
    const after = evictionFailed(stopConfirmed(d.state, 'ceo'), d.victim, 'designer');
    expect(statuses(after)).toEqual({ cto: 'stopping', qa: 'running' });
    expect(after.agents.get('cto')?.slotFor).toBeUndefined();
  });

  it.each([
    { rule: 'answers pool_full for memory, evicting nobody, when even every unprotected agent would not free enough', state: pool({ ceo: { idle: 300 }, cto: { idle: 10 }, qa: { idle: 20 } }), reason: 'memory' },
    { rule: 'answers pool_full for memory when a stopping agent still holds what is needed', state: pool({ ceo: { idle: 300 }, cto: { status: 'stopping' }, qa: { idle: 20 } }), reason: 'memory' },
    { rule: 'answers the count’s pool_full, without a reason, when nobody can go for a slot', state: pool({ ceo: { idle: 10 }, cto: { idle: 20 }, qa: { idle: 30 } }), maxAgents: 3, reason: undefined },
  ])('$rule', ({ state, maxAgents, reason }) => {
    const d = decideRequest(state, request('designer'), NOW, budget({ maxAgents }), limits({ designer: 600 }));
    expect(d).toEqual({ kind: 'pool_full', ...(reason !== undefined && { reason }), needsBytes: 600 * MiB });
  });

  it('refuses for memory without evicting when autostart asks', () => {
    expect(decideRequest(three, request('cfo', 'autostart'), NOW, budget(), catalogue(), { allowEvict: false })).toEqual({ kind: 'pool_full', reason: 'memory', needsBytes: 330 * MiB });
  });

  it('answers too_large with both sizes for an agent that needs more than the whole budget, even in an empty pool', () => {
    expect(decideRequest(pool({}), request('designer'), NOW, budget(), limits({ designer: 1200 }))).toEqual({ kind: 'too_large', needsBytes: 1200 * MiB, budgetBytes: 1000 * MiB });
  });

  it('judges an agent too large by its measured peak, which outweighs its compose limit', () => {
    expect(decideRequest(withPeaks(pool({}), { designer: [1100] }), request('designer'), NOW, budget(), limits({ designer: 500 })).kind).toBe('too_large');
  });

  it('decides exactly as without a budget when none is set', () => {
    expect(decideRequest(three, request('designer'), NOW, rules({ maxAgents: 10 }), limits({ designer: 6000 })).kind).toBe('start');
  });
});

describe('expected memory of an agent', () => {
  const memory = budget().memory!;
  it.each([
    { rule: 'is its highest peak over the runs remembered', state: withPeaks(pool({}), { cfo: [200, 500, 300] }), cat: limits({ cfo: 900 }), mib: 500 },
    { rule: 'is its compose limit when it was never measured', state: pool({}), cat: limits({ cfo: 900 }), mib: 900 },
    { rule: 'is AGENT_MEMORY_DEFAULT without either', state: pool({}), cat: limits({}), mib: 330 },
  ])('$rule', ({ state, cat, mib }) => {
    expect(expectedMemory('cfo', state, memory, cat.memoryLimits)).toBe(mib * MiB);
  });
});

describe('recordUsage: peaks from each reconcile’s sample', () => {
  const peaksOf = (state: ReturnType<typeof recordUsage>, agent: string) => state.memory?.get(agent)?.peaks.map((b) => b / MiB);

  it('raises the peak of the run in progress, never lowers it', () => {
    const state = withPeaks(pool({ cfo: {} }), { cfo: [300, 800] });
    expect(peaksOf(recordUsage(state, sample({ cfo: 350 })), 'cfo')).toEqual([350, 800]);
    expect(recordUsage(state, sample({ cfo: 100 }))).toBe(state);
  });

  it('opens a new peak for a new run and forgets runs past the last three, so one spike does not last', () => {
    let state = withPeaks(pool({}), { cfo: [300, 1200, 250] });
    state = recordUsage({ ...state, agents: pool({ cfo: { startedAgo: 5 } }).agents }, sample({ cfo: 320 }));
    expect(peaksOf(state, 'cfo')).toEqual([320, 300, 1200]);
    state = recordUsage({ ...state, agents: pool({ cfo: { startedAgo: 1 } }).agents }, sample({ cfo: 310 }));
    expect(peaksOf(state, 'cfo')).toEqual([310, 320, 300]);
  });

  it('ignores containers the pool does not hold', () => {
    const state = pool({ cfo: {} });
    expect(recordUsage(state, sample({ gateway: 900 }))).toBe(state);
  });
});

describe('status under a memory budget', () => {
  it('shows each agent’s peak in this run and expected memory, and the budget and what is counted against it', () => {
    const state = withPeaks(pool({ ceo: { startedAgo: 20 }, cto: { startedAgo: 10 } }), { ceo: [400], cfo: [900] });
    const status = statusView(state, NOW, budget(), undefined, limits({ cto: 200 }).memoryLimits);
    expect(status.running.map((a) => [a.id, a.memory_peak_bytes, a.memory_expected_bytes])).toEqual([['ceo', 400 * MiB, 400 * MiB], ['cto', undefined, 200 * MiB]]);
    expect(status).toMatchObject({ memory_budget_bytes: 1000 * MiB, memory_used_bytes: 600 * MiB, memory_free_bytes: 400 * MiB });
  });

  it('shows each agent’s memory at the last sample, only for the run that sample measured', () => {
    const sampled = pool({ ceo: { startedAgo: 20 }, cto: { startedAgo: 10 } });
    const usage = latestUsage(sampled, sample({ ceo: 250, cto: 120 }));
    // cto was restarted after the sample: the figure is its last run's, not this one's.
    const restarted = updateAgent(sampled, 'cto', (r) => ({ ...r, started: NOW }));
    const status = statusView(restarted, NOW, budget(), undefined, undefined, usage);
    expect(status.running.map((a) => [a.id, a.memory_bytes])).toEqual([['ceo', 250 * MiB], ['cto', undefined]]);
  });

  it.each([
    { what: 'what is left of the budget', peaks: { ceo: [300], cto: [200] }, free: 500 },
    { what: 'nothing, not less, when the pool is over its budget (adopted containers)', peaks: { ceo: [700], cto: [600] }, free: 0 },
  ])('shows as free $what', ({ peaks, free }) => {
    expect(statusView(withPeaks(pool({ ceo: {}, cto: {} }), peaks), NOW, budget()).memory_free_bytes).toBe(free * MiB);
  });

  it('computes the reply again for a new sample, and not for the same one', () => {
    const state = pool({ ceo: {} });
    const rulesNow = budget();
    const first = latestUsage(state, sample({ ceo: 100 }));
    const reply = statusView(state, NOW, rulesNow, undefined, undefined, first);
    expect(statusView(state, NOW + 1, rulesNow, undefined, undefined, first)).toBe(reply);
    expect(statusView(state, NOW + 1, rulesNow, undefined, undefined, latestUsage(state, sample({ ceo: 110 }))).running[0]?.memory_bytes).toBe(110 * MiB);
  });

  it('shows no memory figures without a budget', () => {
    const status = statusView(withPeaks(pool({ ceo: {} }), { ceo: [400] }), NOW, rules());
    expect(status).not.toHaveProperty('memory_budget_bytes');
    expect(status.running[0]).not.toHaveProperty('memory_expected_bytes');
    expect(statusView(pool({ ceo: {} }), NOW, rules(), undefined, undefined, latestUsage(pool({ ceo: {} }), sample({ ceo: 100 }))).running[0]).not.toHaveProperty('memory_bytes');
  });
});

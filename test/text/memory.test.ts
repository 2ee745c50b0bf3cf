import { describe, expect, it } from 'vitest';
import type { AgentView, StatusReply } from '../../src/contract/index.js';
import { agentMemory, budgetSummary } from '../../src/text/memory.js';
import { protectionText, roomNeeded, shortText } from '../../src/text/refusal.js';

const MiB = 1024 ** 2;
const NOW = Date.parse('2026-02-28T05:17:04Z');
const at = (seconds: number) => new Date(NOW + seconds * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');

/** An agent last active `idle` seconds ago, expected at `mib` MiB when given. */
const agent = (id: string, idle: number, overrides: Partial<AgentView> & { mib?: number } = {}): AgentView => {
  const { mib, ...rest } = overrides;
  return {
    id,
    started: at(-3600),
    last_active: at(-idle),
    requested_by: 'ceo',
    state: 'running',
    protection: 'grace',
    protected_until: at(60 - idle),
    ...(mib !== undefined && { memory_expected_bytes: mib * MiB }),
    ...rest,
  };
};
const status = (running: AgentView[], slots: { total: number; free: number }, budgetMiB?: number): StatusReply => {
  const used = running.reduce((sum, a) => sum + (a.memory_expected_bytes ?? 0), 0);
  return {
    running,
    slots_total: slots.total,
    slots_free: slots.free,
    queue: [],
    ...(budgetMiB !== undefined && { memory_budget_bytes: budgetMiB * MiB, memory_used_bytes: used, memory_free_bytes: Math.max(0, budgetMiB * MiB - used) }),
  };
};

const ids = (room: ReturnType<typeof roomNeeded>) => room?.agents.map((a) => a.id);

describe('roomNeeded: what would have to go for a refused start, from the status', () => {
  it.each([
    {
      rule: 'a slot: the least recently active agent alone, whatever protects it',
      status: status([agent('ceo', 10), agent('cto', 50, { protection: 'pinned' }), agent('qa', 30)], { total: 3, free: 0 }),
      needs: undefined,
      agents: ['cto'],
      short: 0,
    },
    {
      rule: 'memory: agents in LRU order until what they are expected at covers what is short',
      status: status([agent('ceo', 10, { mib: 60 }), agent('cto', 50, { mib: 40 }), agent('qa', 30, { mib: 40 })], { total: 5, free: 2 }, 150),
      needs: 60,
      agents: ['cto', 'qa'],
      short: 50,
    },
    {
      rule: 'a slot and memory: the first to go counts for both',
      status: status([agent('ceo', 10, { mib: 60 }), agent('cto', 50, { mib: 70 })], { total: 2, free: 0 }, 150),
      needs: 80,
      agents: ['cto'],
      short: 60,
    },
    {
      rule: 'agents already stopping are on their way, not listed',
      status: status([agent('ceo', 10, { mib: 60 }), agent('cto', 50, { mib: 70, state: 'stopping', protection: 'stopping' })], { total: 5, free: 3 }, 150),
      needs: 80,
      agents: ['ceo'],
      short: 60,
    },
    {
      rule: 'an unresponsive agent comes first, as eviction takes it first',
      status: status([agent('ceo', 10), agent('cto', 50), agent('qa', 5, { state: 'unresponsive', protection: null })], { total: 3, free: 0 }),
      needs: undefined,
      agents: ['qa'],
      short: 0,
    },
    {
      rule: 'ties in last activity go to the earlier start, as eviction breaks them',
      status: status([agent('qa', 50, { started: at(-60) }), agent('ceo', 50)], { total: 2, free: 0 }),
      needs: undefined,
      agents: ['ceo'],
      short: 0,
    },
  ])('$rule', ({ status: s, needs, agents, short }) => {
    const room = roomNeeded(s, needs === undefined ? undefined : needs * MiB);
    expect(ids(room)).toEqual(agents);
    expect(room?.shortBytes).toBe(short * MiB);
  });

  it.each([
    { what: 'a free slot and no budget (the refusal was for the host’s memory)', status: status([agent('ceo', 10)], { total: 3, free: 2 }), needs: undefined },
    { what: 'a free slot and memory enough (room came free since)', status: status([agent('ceo', 10, { mib: 60 })], { total: 3, free: 2 }, 150), needs: 50 },
  ])('says nothing with $what', ({ status: s, needs }) => {
    expect(roomNeeded(s, needs === undefined ? undefined : needs * MiB)).toBeUndefined();
  });
});

describe('what the refusal says', () => {
  it('names what is short: the slot, and the memory with what the newcomer needs and what is free', () => {
    const s = status([agent('ceo', 10, { mib: 60 }), agent('cto', 50, { mib: 70 })], { total: 2, free: 0 }, 150);
    const room = roomNeeded(s, 80 * MiB)!;
    expect(shortText('cfo', room, s, 80 * MiB)).toBe('a slot (2 of 2 taken) and 60 MiB of memory (cfo is expected to need 80 MiB; 20 MiB of the 150 MiB budget is free)');
  });

  it.each<[string, Partial<AgentView>, string]>([
    ['in its grace period, with the time left', { protection: 'grace', protected_until: at(40) }, 'grace, 40s left'],
    ['pinned, for good', { protection: 'pinned', protected_until: undefined }, 'pinned'],
    ['on a busy hold', { protection: 'busy', protected_until: at(720) }, 'busy, 12m left'],
    ['unprotected (memory refusals list them too)', { protection: null, protected_until: undefined }, 'may be evicted'],
  ])('says what keeps an agent %s', (_what, overrides, text) => {
    expect(protectionText(agent('cto', 20, overrides), NOW)).toBe(text);
  });
});

describe('memory figures as poolctl status and the page show them', () => {
  it.each([
    { what: 'all three figures', overrides: { memory_bytes: 61 * MiB, memory_peak_bytes: 62 * MiB, mib: 64 }, text: '61 MiB / 62 MiB / 64 MiB' },
    { what: 'a dash for what is not measured yet', overrides: { mib: 330 }, text: '- / - / 330 MiB' },
  ])('an agent’s now / peak / expected: $what', ({ overrides, text }) => {
    expect(agentMemory(agent('ceo', 10, overrides))).toBe(text);
  });

  it('the budget line, only with a budget', () => {
    expect(budgetSummary(status([agent('ceo', 10, { mib: 100 })], { total: 3, free: 2 }, 150))).toBe('memory: 100 MiB of the 150 MiB budget used, 50 MiB free');
    expect(budgetSummary(status([agent('ceo', 10)], { total: 3, free: 2 }))).toBeUndefined();
  });
});

import { describe, expect, it } from 'vitest';
import type { AgentView, StatusReply } from '../../src/contract/index.js';
import { agentMemory, budgetSummary } from '../../src/text/memory.js';

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

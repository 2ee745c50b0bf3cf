import type { AgentView, StatusReply } from '../contract/api.js';
import { formatBytes } from '../contract/bytes.js';

/** `61 MiB / 62 MiB / 64 MiB`: an agent's memory now, its peak in this run and what the budget counts it at; `-` for what is not measured yet. */
export function agentMemory(agent: AgentView): string {
  return [agent.memory_bytes, agent.memory_peak_bytes, agent.memory_expected_bytes].map((bytes) => (bytes === undefined ? '-' : formatBytes(bytes))).join(' / ');
}

/** `memory: 122 MiB of the 150 MiB budget used, 28 MiB free`; undefined without a budget. */
export function budgetSummary(status: StatusReply): string | undefined {
  const { memory_budget_bytes: budget, memory_used_bytes: used, memory_free_bytes: free } = status;
  if (budget === undefined || used === undefined || free === undefined) return undefined;
  return `memory: ${formatBytes(used)} of the ${formatBytes(budget)} budget used, ${formatBytes(free)} free`;
}

/** Whether the status carries memory figures (a MEMORY_BUDGET is set): only then do they earn a column. */
export function showsMemory(status: StatusReply): boolean {
  return status.memory_budget_bytes !== undefined;
}

import { Command } from 'clipanion';
import type { AgentView, StatusReply } from '../../src/contract/api.js';
import { EXIT, PoolCommand } from '../base.js';
import { agentMemory, budgetSummary, showsMemory } from '../../src/text/memory.js';
import { protectionText } from '../../src/text/refusal.js';
import { ago, lastActiveAgo, left } from '../../src/text/relative-time.js';
import { table } from '../format.js';

/** `yes`, or why not and until when: `no (busy, 12m left)`, `no (pinned)`. */
function evictable(agent: AgentView, now: number): string {
  return agent.protection === null ? 'yes' : `no (${protectionText(agent, now)})`;
}

/** The status table, shared with `watch`. */
export function renderStatus(status: StatusReply, now: number): string {
  const used = status.slots_total - status.slots_free;
  const summary = `${status.slots_total} slots: ${used} used, ${status.slots_free} free`;
  const waiting = status.queue.map(
    (q, i) =>
      `waiting ${i + 1}. ${q.agent} (by ${q.requested_by}${q.waiters > 1 ? `, ${q.waiters} requests` : ''}; since ${ago(q.since, now)}, gives up in ${left(q.deadline, now)})`,
  );
  const budget = budgetSummary(status);
  const tail = [summary, ...(budget === undefined ? [] : [budget]), ...waiting].join('\n');
  if (status.running.length === 0) return `no agents running\n${tail}`;
  // Only a pool that spans several hosts (swarm) says where its agents run.
  const nodes = status.running.some((a) => a.node !== undefined);
  const memory = showsMemory(status);
  const rows = status.running.map((a) => [
    a.id,
    a.state,
    ...(nodes ? [a.node ?? '-'] : []),
    ...(memory ? [agentMemory(a)] : []),
    ago(a.started, now),
    lastActiveAgo(a.last_active, a.active_reason, now),
    a.requested_by,
    evictable(a, now),
  ]);
  const header = ['AGENT', 'STATE', ...(nodes ? ['NODE'] : []), ...(memory ? ['MEMORY NOW / PEAK / EXPECTED'] : []), 'STARTED', 'LAST ACTIVE', 'REQUESTED BY', 'EVICTABLE'];
  return `${table(header, rows)}\n${tail}`;
}

export class StatusCommand extends PoolCommand {
  static override paths = [['status']];
  static override usage = Command.Usage({
    description: 'Show the pooled agents and the free slots',
    details: 'STATE is starting, running or stopping, paused (docker pause) or, with ACTIVITY_MODE=work, unresponsive (no heartbeat for three HEARTBEAT_INTERVALs: it goes first when room is needed). EVICTABLE says whether the agent could be stopped to make room right now, or why not and for how long: grace (active within EVICT_GRACE_SECONDS), busy (a heartbeat asked for a hold with busy_seconds), pinned (PINNED_AGENTS), starting, stopping. With MEMORY_BUDGET, MEMORY gives each agent’s memory at the last sample, the peak of its current run, and what the budget counts it at (its peak over its last runs, else its compose limit, else AGENT_MEMORY_DEFAULT), and the line under the table what of the budget is used and free. Requests waiting for a slot are listed under the table. With POOL_DRIVER=swarm, NODE says which host of the swarm each agent runs on.',
    examples: [
      ['Show the pool', '$0 status'],
      ['The same as JSON (the bridge’s /status shape)', '$0 status --json'],
    ],
  });

  protected async run(): Promise<number> {
    const status = await this.client.status();
    if (this.json) this.printJson(status);
    else this.print(renderStatus(status, Date.now()));
    return EXIT.ok;
  }
}

import { Command } from 'clipanion';
import type { StatusReply } from '../../src/contract/api.js';
import { EXIT, PoolCommand } from '../base.js';
import { ago } from '../../src/core/time-text.js';
import { table } from '../format.js';

/** The status table, shared with `watch`. */
export function renderStatus(status: StatusReply, now: number): string {
  const used = status.slots_total - status.slots_free;
  const summary = `${status.slots_total} slots: ${used} used, ${status.slots_free} free`;
  if (status.running.length === 0) return `no agents running\n${summary}`;
  const rows = status.running.map((a) => [
    a.id,
    a.state,
    ago(a.started, now),
    ago(a.last_active, now),
    a.requested_by,
    a.protection === null ? 'yes' : `no (${a.protection})`,
  ]);
  return `${table(['AGENT', 'STATE', 'STARTED', 'LAST ACTIVE', 'REQUESTED BY', 'EVICTABLE'], rows)}\n${summary}`;
}

export class StatusCommand extends PoolCommand {
  static override paths = [['status']];
  static override usage = Command.Usage({
    description: 'Show the pooled agents and the free slots',
    details: 'EVICTABLE says whether the agent could be stopped to make room right now, or why not (grace period, pinned, starting, stopping).',
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

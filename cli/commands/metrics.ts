import { Command } from 'clipanion';
import { EXIT, PoolCommand } from '../base.js';

export class MetricsCommand extends PoolCommand {
  static override paths = [['metrics']];
  static override usage = Command.Usage({
    description: "Print the daemon's Prometheus metrics",
    details: 'The same metrics as the bridge serves on GET /metrics (README: Metrics), read over the socket. With --json, the metric families as objects.',
    examples: [
      ['Print them in the Prometheus text format', '$0 metrics'],
      ['Requests by outcome, with jq', "$0 metrics --json | jq '.[] | select(.name == \"openclaw_pool_requests_total\").values'"],
    ],
  });

  protected async run(): Promise<number> {
    const reply = await this.client.metrics({ format: this.json ? 'json' : 'text' });
    if (reply.format === 'json') this.printJson(reply.families);
    else this.context.stdout.write(reply.text.endsWith('\n') ? reply.text : `${reply.text}\n`);
    return EXIT.ok;
  }
}

import { Command } from 'clipanion';
import { EXIT, PoolCommand } from '../base.js';

export class WhoCommand extends PoolCommand {
  static override paths = [['who']];
  static override usage = Command.Usage({
    description: 'List the running agents, one per line',
    examples: [['Who is up?', '$0 who']],
  });

  protected async run(): Promise<number> {
    const reply = await this.client.available();
    if (this.json) this.printJson(reply);
    else if (reply.agents.length > 0) this.print(reply.agents.join('\n'));
    return EXIT.ok;
  }
}

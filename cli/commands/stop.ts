import { Command, Option } from 'clipanion';
import { EXIT, PoolCommand } from '../base.js';

export class StopCommand extends PoolCommand {
  static override paths = [['stop']];
  static override usage = Command.Usage({
    description: 'Stop (release) an agent and free its slot',
    details: 'Exit codes: 0 stopped or not running; 1 refused (unknown agent, infrastructure service, Docker error); 2 usage error; 3 daemon unreachable.',
    examples: [['Stop the CFO agent', '$0 stop cfo']],
  });

  agent = Option.String({ name: 'agent' });

  protected async run(): Promise<number> {
    if (!this.checkName(this.agent)) return EXIT.usage;
    const reply = await this.client.release(this.agent, { requestedBy: 'poolctl' });
    if (this.json) this.printJson(reply);
    else this.print(reply.status === 'stopped' ? `${this.agent} stopped` : `${this.agent} was not running`);
    return EXIT.ok;
  }
}

import { Command, Option } from 'clipanion';
import { EXIT, PoolCommand } from '../base.js';

export class ShutdownCommand extends PoolCommand {
  static override paths = [['shutdown']];
  static override usage = Command.Usage({
    description: 'Stop the daemon (agents keep running unless --stop-agents)',
    details: 'The systemd unit runs `poolctl shutdown --stop-agents` on `systemctl stop` only; a restart or a crash leaves the agents running for the next start to reconcile.',
    examples: [
      ['Stop the daemon, keep the agents', '$0 shutdown'],
      ['Stop every pooled agent, then the daemon', '$0 shutdown --stop-agents'],
    ],
  });

  stopAgents = Option.Boolean('--stop-agents', false, { description: 'Stop every pooled agent first' });

  protected async run(): Promise<number> {
    const reply = await this.client.shutdown({ stopAgents: this.stopAgents });
    if (this.json) this.printJson(reply);
    else this.print(this.stopAgents ? 'agents stopped; daemon shutting down' : 'daemon shutting down; agents keep running');
    return EXIT.ok;
  }
}

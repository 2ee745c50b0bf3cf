import { Command } from 'clipanion';
import { EXIT, PoolCommand } from '../base.js';

export class HealthCommand extends PoolCommand {
  static override paths = [['health']];
  static override usage = Command.Usage({
    description: 'Check the daemon and its view of Docker',
    details: 'Exit codes: 0 ok; 1 degraded (e.g. Docker unreachable; the reason is printed); 3 daemon unreachable.',
    examples: [['Check health', '$0 health']],
  });

  protected async run(): Promise<number> {
    const health = await this.client.health();
    if (this.json) this.printJson(health);
    else this.print(health.status === 'ok' ? `ok: docker ${health.docker}, up ${health.uptime_seconds}s, version ${health.version}` : `degraded: ${health.reason}`);
    return health.status === 'ok' ? EXIT.ok : EXIT.refused;
  }
}

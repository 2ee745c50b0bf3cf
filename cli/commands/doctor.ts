import { Command, Option } from 'clipanion';
import type { DoctorReport } from '../../src/contract/ops.js';
import { EXIT, PoolCommand } from '../base.js';

/** One line per check, `PASS  docker   engine 20.10.24`, then a count: readable without colour. */
export function renderDoctor(report: DoctorReport): string {
  const width = Math.max(...report.checks.map((c) => c.check.length));
  // What Docker says may run over several lines; a check stays on one.
  const lines = report.checks.map((c) => `${c.verdict.toUpperCase().padEnd(4)}  ${c.check.padEnd(width)}  ${c.detail.replace(/\s*\n\s*/g, ' / ')}`);
  const count = (verdict: string) => report.checks.filter((c) => c.verdict === verdict).length;
  const [warned, failed] = [count('warn'), count('fail')];
  const summary = failed > 0 ? `${failed} failed, ${warned} warning${warned === 1 ? '' : 's'}` : warned > 0 ? `ok, ${warned} warning${warned === 1 ? '' : 's'}` : 'ok';
  return `${lines.join('\n')}\n${summary}`;
}

export class DoctorCommand extends PoolCommand {
  static override paths = [['doctor']];
  static override usage = Command.Usage({
    description: 'Check Docker, Compose, the project, the socket, the bridge and pool.env, and suggest MEMORY_BUDGET',
    details: `
      Checks, one line each (PASS, WARN, FAIL, or SKIP where a check does not apply): pool.env (each invalid variable named), the Docker engine and compose v2 with their versions, the compose project's services and INFRA_SERVICES (present, running), the daemon's socket (mode, group) and health, the bridge's addresses (from the daemon, or from pool.env when it is not running), POOL_DIR, with a MEMORY_BUDGET the daemon's memory figures (the budget used and free, each agent's now / peak / expected), and a MEMORY_BUDGET suggestion: MemTotal less MEMORY_RESERVE (what MEMORY_BUDGET=auto computes), with how many agents it fits at their measured size (the daemon's peaks, else \`docker stats\` on the running agents, else AGENT_MEMORY_DEFAULT) (README: Memory budget).

      Under POOL_DRIVER=process the Docker checks are skipped. The socket defaults to POOL_SOCKET from pool.env.

      Exit codes: 0 every check passed or warned; 1 a check failed; 2 usage error.
    `,
    examples: [
      ['Check this host with the pool.env the daemon reads', '$0 doctor'],
      ['Check another pool.env, as JSON', '$0 doctor --config /srv/openclaw/pool.env --json'],
    ],
  });

  config = Option.String('--config', { description: 'The pool.env to check (default: $POOL_ENV, ./pool.env, /etc/openclaw-pool/pool.env)' });

  protected async run(): Promise<number> {
    // Loaded here only: zod, the config reader and the drivers would add to every other command's start-up.
    const { diagnose } = await import('../../src/doctor/diagnose.js');
    const report = await diagnose({
      ...(this.config !== undefined && { configPath: this.config }),
      ...(this.socket !== undefined && { socketPath: this.socket }),
    });
    if (this.json) this.printJson(report);
    else this.print(renderDoctor(report));
    return report.ok ? EXIT.ok : EXIT.refused;
  }
}

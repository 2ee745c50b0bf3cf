import { Command, Option } from 'clipanion';
import type { PoolEvent } from '../../src/contract/api.js';
import { MAX_WAIT_SECONDS } from '../../src/contract/constants.js';
import { parseDuration } from '../../src/contract/time.js';
import { formatBytes } from '../../src/contract/bytes.js';
import { protectionText, roomNeeded, shortText } from '../../src/text/refusal.js';
import { PoolFullError } from '../../sdk/errors.js';
import { EXIT, PoolCommand } from '../base.js';
import { table } from '../format.js';

const now = () => Date.now();
const SPINNER = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

export class StartCommand extends PoolCommand {
  static override paths = [['start']];
  static override usage = Command.Usage({
    description: 'Start an agent, evicting the least recently active one if the pool is full',
    details: `
      Asks the daemon for the agent. On a terminal it shows what happens meanwhile (which agent is being stopped to make room, then the start); piped, it prints plain lines.

      Refused for a full pool, it says what is short (a slot, memory under MEMORY_BUDGET) and which agents would have to go for it, least recently active first, each with its expected memory and what keeps it (grace and the time left, pinned, busy, starting).

      With \`--wait\`, a full pool where nobody can be evicted does not refuse at once: the request waits in line (first come, first served) until a slot comes free or the time is up.

      Exit codes: 0 started or already running; 1 refused (pool full, unknown agent, Docker error); 2 usage error; 3 daemon unreachable.
    `,
    examples: [
      ['Start the CFO agent', '$0 start cfo'],
      ['Start it on behalf of the CEO agent, as JSON', '$0 start cfo --by ceo --json'],
      ['Wait up to 5 minutes for a slot when the pool is full', '$0 start cfo --wait 5m'],
    ],
  });

  agent = Option.String({ name: 'agent' });
  by = Option.String('--by', 'poolctl', { description: 'Who asks (shown in status and the event log)' });
  wait = Option.String('--wait', { description: 'When the pool is full, wait this long for a slot (30s, 5m, 1h; at most 1h)' });

  protected async run(): Promise<number> {
    if (!this.checkName(this.agent)) return EXIT.usage;
    const waitMs = this.wait === undefined ? undefined : parseDuration(this.wait);
    if (waitMs === undefined ? this.wait !== undefined : waitMs > MAX_WAIT_SECONDS * 1000) {
      this.warn(`poolctl: --wait ${JSON.stringify(this.wait)}: expected a duration like 30s, 5m or 1h, at most ${MAX_WAIT_SECONDS / 3600}h`);
      return EXIT.usage;
    }
    this.waitSeconds = waitMs === undefined ? undefined : waitMs / 1000;
    if (this.json) {
      this.printJson(await this.request());
      return EXIT.ok;
    }
    const progress = this.progress();
    const abort = new AbortController();
    let connected!: () => void;
    const ready = new Promise<void>((resolve) => (connected = resolve));
    const following = (async () => {
      for await (const event of this.client.events({ signal: abort.signal, onConnected: connected })) progress.show(event);
    })().catch(() => connected());
    await ready;
    try {
      const reply = await this.request();
      const waited = reply.waited_seconds === undefined ? '' : ` after waiting ${reply.waited_seconds} s`;
      progress.done(
        reply.status === 'already_running'
          ? `${this.agent} is already running${waited}`
          : `${this.agent} started${waited}${'evicted' in reply && reply.evicted ? ` (evicted ${reply.evicted})` : ''}`,
      );
      return EXIT.ok;
    } catch (error) {
      progress.done();
      const code = this.fail(error, this.agent);
      if (error instanceof PoolFullError) await this.explainRefusal(error);
      return code;
    } finally {
      abort.abort();
      await following;
    }
  }

  private waitSeconds: number | undefined;

  /**
   * What would have to go for the agent to start, from the status as the refusal left it: the
   * bridge's reply keeps the SPEC's shape, and the status already says who is protected and why.
   */
  private async explainRefusal(error: PoolFullError): Promise<void> {
    const { needsBytes } = error.details;
    const status = await this.client.status().catch(() => undefined);
    const room = status === undefined ? undefined : roomNeeded(status, needsBytes);
    if (status === undefined || room === undefined) return;
    this.warn(`short of ${shortText(this.agent, room, status, needsBytes)}`);
    if (room.agents.length === 0) return this.warn('nothing else could go: every agent is already stopping');
    const budget = status.memory_budget_bytes !== undefined;
    const rows = room.agents.map((a) => [a.id, ...(budget ? [formatBytes(a.memory_expected_bytes ?? 0)] : []), protectionText(a, now())]);
    this.warn('what would have to go, least recently active first:');
    this.warn(table(['AGENT', ...(budget ? ['EXPECTED'] : []), 'KEPT BY'], rows).replace(/^/gm, '  '));
  }

  private request() {
    return this.client.request(this.agent, { requestedBy: this.by, ...(this.waitSeconds !== undefined && { waitSeconds: this.waitSeconds }) });
  }

  /** A spinner line on a terminal; one plain line per step when piped. */
  private progress() {
    const tty = Boolean((this.context.stderr as NodeJS.WriteStream).isTTY);
    const err = this.context.stderr;
    let text = `requesting ${this.agent}`;
    let frame = 0;
    const timer = tty ? setInterval(() => err.write(`\r\x1b[2K${SPINNER[frame++ % SPINNER.length]} ${text}…`), 80) : undefined;
    const relevant = (e: PoolEvent) => e.agent === this.agent || e.for === this.agent;
    return {
      show: (event: PoolEvent) => {
        if (!relevant(event)) return;
        const line =
          event.type === 'waiting' ? `pool full: waiting for a slot (${event.reason})`
          : event.type === 'stopping' ? `stopping ${event.agent}${event.for ? ` to make room for ${event.for}` : ''}`
          : event.type === 'evicted' ? `stopped ${event.agent}`
          : event.type === 'starting' ? `starting ${event.agent}`
          : undefined;
        if (line === undefined) return;
        if (tty) text = line;
        else this.warn(line);
      },
      done: (final?: string) => {
        if (timer !== undefined) {
          clearInterval(timer);
          err.write('\r\x1b[2K');
        }
        if (final !== undefined) this.print(tty ? `✔ ${final}` : final);
      },
    };
  }
}

import { Command } from 'clipanion';
import { EXIT, PoolCommand } from '../base.js';
import { describeEvent } from '../format.js';
import { renderStatus } from './status.js';

const RECENT_EVENTS = 10;

export class WatchCommand extends PoolCommand {
  static override paths = [['watch']];
  static override usage = Command.Usage({
    description: 'Follow the pool live',
    details: 'On a terminal it redraws the status table and the latest events on every change. Piped, it prints one line per event (JSON lines with --json). Ctrl-C ends it.',
    examples: [
      ['Watch the pool', '$0 watch'],
      ['Log every event as JSON', '$0 watch --json >> pool-events.jsonl'],
    ],
  });

  protected async run(): Promise<number> {
    const tty = Boolean((this.context.stdout as NodeJS.WriteStream).isTTY) && !this.json;
    const abort = new AbortController();
    const stop = () => abort.abort();
    const signalsHandled = this.abortOnSignals(abort);
    const recent: string[] = [];
    let redraw: NodeJS.Timeout | undefined;
    const draw = async () => {
      const status = await this.client.status();
      this.context.stdout.write(`\x1b[H\x1b[2J${renderStatus(status, Date.now())}\n\nrecent events:\n${recent.join('\n') || '(none yet)'}\n`);
    };
    try {
      if (tty) {
        // The log's latest decisions first, so a fresh watch already answers "what just happened?".
        const { events } = await this.client.history({ limit: RECENT_EVENTS });
        recent.push(...events.map(describeEvent));
        await draw();
        redraw = setInterval(() => void draw().catch(stop), 1000);
      }
      for await (const event of this.client.events({ signal: abort.signal })) {
        if (this.json) this.printJson(event);
        else if (tty) {
          recent.push(describeEvent(event));
          if (recent.length > RECENT_EVENTS) recent.shift();
          await draw();
        } else this.print(describeEvent(event));
      }
      return EXIT.ok;
    } finally {
      clearInterval(redraw);
      signalsHandled();
    }
  }
}

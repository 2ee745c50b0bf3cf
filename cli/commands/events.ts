import { Command, Option } from 'clipanion';
import type { PoolEvent } from '../../src/contract/api.js';
import { MAX_EVENTS_LIMIT, TRANSITIONAL_EVENT_TYPES } from '../../src/contract/constants.js';
import { formatWireTime, parseDuration, parseWireTime } from '../../src/contract/time.js';
import { notIn } from '../../src/text/event.js';
import { EXIT, PoolCommand } from '../base.js';
import { describeEvent } from '../format.js';

export class EventsCommand extends PoolCommand {
  static override paths = [['events']];
  static override usage = Command.Usage({
    description: 'Show the event log: who was started, evicted (and for whom), released, lost, adopted, refused',
    details: `
      Reads the daemon's event log (POOL_DIR/events.jsonl and its rotated files), oldest first. \`--since\` takes a duration back from now (\`90s\`, \`30m\`, \`1h\`, \`2d\`) or an ISO 8601 time. \`--agent\` keeps the events about that agent, including evictions made to make room for it. \`--follow\` then keeps printing new events as they happen, until Ctrl-C.
    `,
    examples: [
      ['Why was my agent stopped?', '$0 events --agent cfo --since 1h'],
      ['The last 20 decisions, as JSON lines', '$0 events --limit 20 --json'],
      ['Everything from now on', '$0 events --since 0s --follow'],
    ],
  });

  agent = Option.String('--agent', { description: 'Only events about this agent' });
  since = Option.String('--since', { description: 'A duration back from now (1h, 30m) or an ISO 8601 time' });
  limit = Option.String('--limit', '100', { description: `At most this many, the newest (1-${MAX_EVENTS_LIMIT})` });
  follow = Option.Boolean('--follow,-f', false, { description: 'Keep printing new events as they happen' });

  protected async run(): Promise<number> {
    if (this.agent !== undefined && !this.checkName(this.agent)) return EXIT.usage;
    const since = this.sinceTime();
    const limit = Number(this.limit);
    if (typeof since === 'string' || !/^\d+$/.test(this.limit) || limit < 1 || limit > MAX_EVENTS_LIMIT) {
      this.warn(typeof since === 'string' ? `poolctl: ${since}` : `poolctl: --limit ${JSON.stringify(this.limit)}: expected a whole number from 1 to ${MAX_EVENTS_LIMIT}`);
      return EXIT.usage;
    }
    const abort = new AbortController();
    // Live events are held back until the history is out, then printed unless the history had them.
    const held: PoolEvent[] = [];
    let deliver: (event: PoolEvent) => void = (event) => held.push(event);
    let connected!: () => void;
    const subscribed = new Promise<void>((resolve) => (connected = resolve));
    // Subscribed before the history is read, so nothing that happens in between is missed.
    const following = this.follow ? this.followLive(abort.signal, connected, (event) => deliver(event)) : undefined;
    if (following !== undefined) await Promise.race([subscribed, following]);
    try {
      const reply = await this.client.history({ ...(this.agent && { agent: this.agent }), ...(since !== undefined && { since: formatWireTime(since) }), limit });
      if (reply.skipped > 0) this.warn(`poolctl: ${reply.skipped} unreadable line(s) in the event log were skipped`);
      for (const event of reply.events) this.show(event);
      if (following === undefined) {
        if (!this.json && reply.events.length === 0) this.warn('no events');
        return EXIT.ok;
      }
      const isNew = notIn(reply.events);
      for (const event of held) if (isNew(event)) this.show(event);
      deliver = (event) => this.show(event);
      const signalsHandled = this.abortOnSignals(abort);
      try {
        await following;
      } finally {
        signalsHandled();
      }
      return EXIT.ok;
    } finally {
      abort.abort();
      await following?.catch(() => {});
    }
  }

  /** The time --since names; undefined without --since; a sentence when it names none. */
  private sinceTime(): number | undefined | string {
    if (this.since === undefined) return undefined;
    const option = `--since ${JSON.stringify(this.since)}`;
    const back = parseDuration(this.since);
    if (back === undefined) return parseWireTime(this.since) ?? `${option}: expected a duration like 30m, 1h, 2d or an ISO 8601 time with a zone`;
    // Further back than 1970 there are no events, and a few hundred thousand years back there is
    // no date to send: the daemon takes only four-digit years, and Date none past ±8.64e15 ms.
    const now = Date.now();
    return back <= now ? now - back : `${option}: reaches back before 1970; give a shorter duration or an ISO 8601 time`;
  }

  private async followLive(signal: AbortSignal, onConnected: () => void, deliver: (event: PoolEvent) => void): Promise<void> {
    for await (const event of this.client.events({ signal, onConnected })) {
      if (TRANSITIONAL_EVENT_TYPES.has(event.type)) continue;
      if (this.agent !== undefined && event.agent !== this.agent && event.for !== this.agent) continue;
      deliver(event);
    }
  }

  private show(event: PoolEvent): void {
    if (this.json) this.printJson(event);
    else this.print(describeEvent(event));
  }
}

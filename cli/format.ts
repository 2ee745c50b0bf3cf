import type { PoolEvent } from '../src/contract/api.js';
import { formatEvent } from '../src/text/event.js';

/** Left-aligned columns separated by two spaces, a header row first. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ');
  return [line(header), ...rows.map(line)].join('\n');
}

/** An event with its time, one line: `2026-11-25T13:01:02Z evicted cto for cfo (by ceo; least recently active)`. */
export function describeEvent(event: PoolEvent): string {
  return `${event.time} ${formatEvent(event)}`;
}

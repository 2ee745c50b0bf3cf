import type { PoolEvent } from '../src/contract/api.js';
import { formatEvent } from '../src/core/event-text.js';

/** 42 → "42s", 200 → "3m", 7300 → "2h", 200000 → "2d": whole units, rounded down. */
function compact(seconds: number): string {
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)}h`;
  return `${Math.floor(seconds / 86400)}d`;
}

/** "just now", "42s ago", "3m ago", "2h ago", "5d ago" */
export function ago(iso: string, now: number): string {
  const seconds = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  return seconds < 5 ? 'just now' : `${compact(seconds)} ago`;
}

/** "45s", "12m", "3h": how long until `iso`, never negative. */
export function left(iso: string, now: number): string {
  return compact(Math.max(0, Math.floor((Date.parse(iso) - now) / 1000)));
}

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

import type { PoolEvent } from '../contract/api.js';

/** One pool event as a line for people: `evicted software-engineer for cfo (by ceo; least recently active)`. */
export function formatEvent(event: PoolEvent): string {
  const detail = [`by ${event.by}`, event.reason].filter(Boolean).join('; ');
  return `${event.type} ${event.agent}${event.for === undefined ? '' : ` for ${event.for}`} (${detail})`;
}

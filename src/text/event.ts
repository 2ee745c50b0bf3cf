import type { PoolEvent } from '../contract/api.js';

// src/text/: the words people read for the contract's shapes, shared by poolctl, the status page
// and the daemon's log. It imports nothing of ours but the contract's types, so that poolctl's
// cold start and the page's browser bundle can take it without the pool's core.

/** One pool event as a line for people: `evicted software-engineer for cfo (by ceo via peer; least recently active)`. */
export function formatEvent(event: PoolEvent): string {
  const detail = [`by ${event.by}${event.via === undefined ? '' : ` via ${event.via}`}`, event.reason].filter(Boolean).join('; ');
  return `${event.type} ${event.agent}${event.for === undefined ? '' : ` for ${event.for}`} (${detail})`;
}

/**
 * Which live events a follower (a status page stream, `poolctl events --follow`) still has to show
 * after the history it opened with. Events that happened while the log was read are queued and
 * may be in the history too; the log is appended in order, so those come first in the queue, and
 * the first event not in the history ends the overlap (an identical event later is a new one).
 */
export function notIn(history: readonly PoolEvent[]): (event: PoolEvent) => boolean {
  const overlap = new Set(history.map((event) => JSON.stringify(event)));
  return (event) => {
    if (overlap.delete(JSON.stringify(event))) return false;
    overlap.clear();
    return true;
  };
}

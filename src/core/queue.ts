import { type QueueEntryView, formatWireTime } from '../contract/index.js';
import { type Catalogue, decideRequest } from './decide.js';
import { protectionEndsAt } from './evict.js';
import type { PoolRules, PoolState } from './state.js';

/** One client waiting for a slot (`wait_seconds`). */
export interface Waiter {
  readonly id: number;
  readonly since: number;
  readonly deadline: number;
}

/** A waiter in line, with whom it asked for. */
export interface QueuedWaiter extends Waiter {
  readonly requestedBy: string;
}

/** The waiters for one agent: they share one place in line and, once admitted, one start. */
export interface WaitEntry {
  readonly agent: string;
  /**
   * The first waiter's requester; the start is made on its behalf. When it leaves, the next one's:
   * a start is never recorded under a requester who no longer waits for it (who may release an
   * agent depends on who requested it).
   */
  readonly requestedBy: string;
  readonly waiters: readonly QueuedWaiter[];
}

/** Requests waiting for a slot, first come first served. */
export type WaitQueue = readonly WaitEntry[];

export const emptyQueue: WaitQueue = Object.freeze([]);

export type EnqueueOutcome = 'queued' | 'joined' | 'full';

/**
 * Puts a waiter in line: behind the others waiting for the same agent (sharing their place), or
 * at the end in a new place. At most `max` places: a waiter for an agent not yet in line is
 * turned away when they are all taken.
 */
export function enqueue(queue: WaitQueue, agent: string, requestedBy: string, waiter: Waiter, max: number): { queue: WaitQueue; outcome: EnqueueOutcome } {
  const at = queue.findIndex((entry) => entry.agent === agent);
  if (at !== -1) {
    const entry = queue[at] as WaitEntry;
    return { queue: queue.map((e, i) => (i === at ? { ...entry, waiters: [...entry.waiters, { ...waiter, requestedBy }] } : e)), outcome: 'joined' };
  }
  if (queue.length >= max) return { queue, outcome: 'full' };
  return { queue: [...queue, { agent, requestedBy, waiters: [{ ...waiter, requestedBy }] }], outcome: 'queued' };
}

/** Takes waiters out of line (deadline passed, client gone); a place left with nobody is given up. */
export function withoutWaiters(queue: WaitQueue, ids: ReadonlySet<number>): WaitQueue {
  if (ids.size === 0) return queue;
  const next: WaitEntry[] = [];
  for (const entry of queue) {
    const waiters = entry.waiters.filter((w) => !ids.has(w.id));
    if (waiters.length === entry.waiters.length) next.push(entry);
    else if (waiters.length > 0) next.push({ ...entry, requestedBy: waiters[0]!.requestedBy, waiters });
  }
  return next;
}

/** Waiters whose deadline has come. */
export function expiredWaiters(queue: WaitQueue, now: number): Set<number> {
  const ids = new Set<number>();
  for (const entry of queue) for (const w of entry.waiters) if (w.deadline <= now) ids.add(w.id);
  return ids;
}

/**
 * Whether the first place in line can be served now: the request it stands for would get
 * anything but `pool_full` (a slot, an eviction, or an answer such as unknown_agent). Only the
 * head is ever considered, so nobody overtakes: FIFO.
 */
export function headAdmissible(queue: WaitQueue, state: PoolState, now: number, rules: PoolRules, catalogue: Catalogue): boolean {
  const head = queue[0];
  if (head === undefined) return false;
  return decideRequest(state, { agent: head.agent, requestedBy: head.requestedBy }, now, rules, catalogue).kind !== 'pool_full';
}

/**
 * When the queue must be looked at again by time alone: the earliest deadline, or the first
 * moment an agent's protection (grace period, busy hold) ends and it may become a victim.
 * Slots freed by stops and failures are events the caller acts on directly. Undefined: never.
 */
export function nextQueueWake(queue: WaitQueue, state: PoolState, now: number, rules: PoolRules): number | undefined {
  if (queue.length === 0) return undefined;
  let wake = Infinity;
  for (const entry of queue) for (const w of entry.waiters) wake = Math.min(wake, w.deadline);
  for (const record of state.agents.values()) wake = Math.min(wake, protectionEndsAt(record, now, rules));
  return wake === Infinity ? undefined : wake;
}

/** The queue as `status` shows it: one line per place, the earliest arrival and the latest deadline. */
export function queueView(queue: WaitQueue): QueueEntryView[] {
  return queue.map((entry) => ({
    agent: entry.agent,
    requested_by: entry.requestedBy,
    since: formatWireTime(Math.min(...entry.waiters.map((w) => w.since))),
    deadline: formatWireTime(Math.max(...entry.waiters.map((w) => w.deadline))),
    waiters: entry.waiters.length,
  }));
}

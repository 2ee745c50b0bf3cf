import type { AgentState, PoolEvent, StatusReply } from '../contract/index.js';
import { PoolFullError, outcomeOfError } from '../contract/index.js';
import { IDLE_STOPPER } from './activity.js';
import { PRESSURE_STOPPER } from './pressure.js';

/**
 * What an operation's end says: its outcome label, the status of its reply, or for an error the
 * label of its kind (contract/errors.ts `outcomeOfError`), so that both faces count alike; and how
 * long it waited for a slot, when it queued.
 */
export function settledFigures(
  settled: { readonly reply: { readonly status: string; readonly waited_seconds?: number } } | { readonly error: unknown },
): { readonly outcome: string; readonly waitedSeconds: number | undefined } {
  if ('reply' in settled) return { outcome: settled.reply.status, waitedSeconds: settled.reply.waited_seconds };
  const { error } = settled;
  return { outcome: outcomeOfError(error), waitedSeconds: error instanceof PoolFullError ? error.details.waitedSeconds : undefined };
}

export type EvictionCause = 'request' | 'reconcile' | typeof PRESSURE_STOPPER | typeof IDLE_STOPPER;

/**
 * Why an agent was evicted: to make room for a request (the event names whom the slot is `for`),
 * to bring a pool found over its cap back under it (reconcile, after adoption or a lowered cap),
 * because the host is short of memory (the pressure guard), or for being idle (IDLE_STOP_SECONDS).
 */
export function evictionCause(event: PoolEvent): EvictionCause | undefined {
  if (event.type === 'idle') return IDLE_STOPPER;
  if (event.type !== 'evicted') return undefined;
  if (event.for !== undefined) return 'request';
  return event.by === PRESSURE_STOPPER ? PRESSURE_STOPPER : 'reconcile';
}

/** The states the agents gauge has a series for. */
type GaugedState = Exclude<AgentState, 'unresponsive'>;

export interface PoolGauges {
  readonly agents: Readonly<Record<GaugedState, number>>;
  readonly slotsTotal: number;
  readonly slotsFree: number;
  /** Agents queued for a slot (each needs one). */
  readonly queueLength: number;
  /** Requests waiting in that queue (several may wait for one agent). */
  readonly queueWaiters: number;
}

/** The pool's gauges, read from the status view at scrape time. */
export function poolGauges(status: StatusReply): PoolGauges {
  const agents: Record<GaugedState, number> = { starting: 0, running: 0, stopping: 0, paused: 0 };
  // A silent agent's container runs and holds its slot: the gauge counts slots, and the
  // `unresponsive` events (events_total) count the silences.
  for (const agent of status.running) agents[agent.state === 'unresponsive' ? 'running' : agent.state] += 1;
  return {
    agents,
    slotsTotal: status.slots_total,
    slotsFree: status.slots_free,
    queueLength: status.queue.length,
    queueWaiters: status.queue.reduce((sum, entry) => sum + entry.waiters, 0),
  };
}

/** One memory figure of the pool (`budget`, `used`, `free`) or of an agent (`now`, `peak`, `expected`), in bytes. */
export interface MemorySeries<Kind extends string> {
  readonly kind: Kind;
  readonly bytes: number;
}

export interface MemoryGauges {
  readonly pool: readonly MemorySeries<'budget' | 'used' | 'free'>[];
  readonly agents: readonly (MemorySeries<'now' | 'peak' | 'expected'> & { readonly agent: string })[];
}

/**
 * The memory gauges, read from the status view at scrape time: none without a budget, and per
 * agent only the figures known (no `now` or `peak` before a first sample), so that an agent that
 * left the pool leaves no series behind.
 */
export function memoryGauges(status: StatusReply): MemoryGauges {
  const { memory_budget_bytes: budget, memory_used_bytes: used, memory_free_bytes: free } = status;
  if (budget === undefined || used === undefined || free === undefined) return { pool: [], agents: [] };
  const agents = status.running.flatMap(({ id: agent, memory_bytes: now, memory_peak_bytes: peak, memory_expected_bytes: expected }) =>
    (
      [
        ['now', now],
        ['peak', peak],
        ['expected', expected],
      ] as const
    ).flatMap(([kind, bytes]) => (bytes === undefined ? [] : [{ agent, kind, bytes }])),
  );
  return {
    pool: [
      { kind: 'budget', bytes: budget },
      { kind: 'used', bytes: used },
      { kind: 'free', bytes: free },
    ],
    agents,
  };
}

/**
 * Seconds since the last reconcile that reached Docker; before the first one, since `since` (the
 * daemon's start). It grows without bound while reconciles fail, which is what an alert wants.
 */
export function reconcileLagSeconds(lastSuccessAt: number | undefined, since: number, now: number): number {
  return Math.max(0, now - (lastSuccessAt ?? since)) / 1000;
}

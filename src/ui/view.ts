import type { AgentView, PoolEvent, QueueEntryView, StatusReply } from '../contract/api.js';
import { formatEvent } from '../text/event.js';
import { agentMemory } from '../text/memory.js';
import { ago, lastActiveAgo, left } from '../text/relative-time.js';

/**
 * What the status page shows, decided here as plain data (no DOM, no clock of its own) so it is
 * table-tested; src/ui/client.ts only puts these strings into elements.
 */

export type SlotKind = 'running' | 'starting' | 'stopping' | 'free';
export interface SlotSegment {
  readonly kind: SlotKind;
  readonly count: number;
}

const SLOT_ORDER: readonly SlotKind[] = ['running', 'starting', 'stopping', 'free'];

/** The slot bar, left to right; empty kinds are left out so no zero-width segment is drawn. */
export function slotSegments(status: StatusReply): SlotSegment[] {
  const counts: Record<SlotKind, number> = { running: 0, starting: 0, stopping: 0, free: status.slots_free };
  // A paused or unresponsive agent holds its slot like a running one; its row says which it is.
  for (const agent of status.running) counts[agent.state === 'paused' || agent.state === 'unresponsive' ? 'running' : agent.state] += 1;
  return SLOT_ORDER.map((kind) => ({ kind, count: counts[kind] })).filter((segment) => segment.count > 0);
}

/** "4 slots: 2 running, 1 starting, 0 stopping, 1 free": the bar in words, for readers who do not see it. */
export function slotSummary(status: StatusReply): string {
  const counts = new Map(slotSegments(status).map((s) => [s.kind, s.count]));
  return `${status.slots_total} slots: ${SLOT_ORDER.map((kind) => `${counts.get(kind) ?? 0} ${kind}`).join(', ')}`;
}

/** `12:03:40` in the viewer's time zone (or `timeZone`, for tests). */
export function timeOfDay(iso: string, timeZone?: string): string {
  return new Intl.DateTimeFormat('en-GB', { hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23', timeZone }).format(Date.parse(iso));
}

const PROTECTION_TEXT: Record<NonNullable<AgentView['protection']>, string> = {
  requested: 'being requested',
  pinned: 'pinned',
  busy: 'busy hold',
  grace: 'grace',
  starting: 'starting',
  stopping: 'stopping',
};

/** "evictable now", or "protected: grace until 12:03:40": whether the pool could stop this agent for another, and why not. */
export function evictability(agent: AgentView, timeZone?: string): string {
  if (agent.protection === null) return 'evictable now';
  const until = agent.protected_until;
  return `protected: ${PROTECTION_TEXT[agent.protection]}${until === undefined ? '' : ` until ${timeOfDay(until, timeZone)}`}`;
}

export interface AgentRow {
  readonly id: string;
  readonly state: string;
  readonly node: string;
  readonly started: string;
  readonly lastActive: string;
  /** Exact times, for a tooltip and `<time datetime>`. */
  readonly startedAt: string;
  readonly lastActiveAt: string;
  readonly requestedBy: string;
  readonly evictable: string;
  readonly protected: boolean;
  /** Now / peak / expected, with a memory budget (see showsMemory). */
  readonly memory: string;
}

export function agentRows(status: StatusReply, now: number, timeZone?: string): AgentRow[] {
  return status.running.map((agent) => ({
    id: agent.id,
    state: agent.state,
    node: agent.node ?? '',
    started: ago(agent.started, now),
    lastActive: lastActiveAgo(agent.last_active, agent.active_reason, now),
    startedAt: agent.started,
    lastActiveAt: agent.last_active,
    requestedBy: agent.requested_by,
    evictable: evictability(agent, timeZone),
    protected: agent.protection !== null,
    memory: agentMemory(agent),
  }));
}

/** The node column only earns its width when a driver spans several hosts. */
export function showsNodes(status: StatusReply): boolean {
  return status.running.some((agent) => agent.node !== undefined);
}

export interface QueueRow {
  readonly agent: string;
  readonly requestedBy: string;
  readonly waiting: string;
  readonly deadline: string;
  readonly waiters: string;
}

/** The wait queue in FIFO order (first served first). */
export function queueRows(queue: readonly QueueEntryView[], now: number): QueueRow[] {
  return queue.map((entry) => ({
    agent: entry.agent,
    requestedBy: entry.requested_by,
    waiting: `since ${ago(entry.since, now)}`,
    deadline: `gives up in ${left(entry.deadline, now)}`,
    waiters: String(entry.waiters),
  }));
}

/** The timeline covers the last hour, at most this many events. */
export const TIMELINE_WINDOW_MS = 3_600_000;
export const TIMELINE_MAX_EVENTS = 100;

export interface TimelineItem {
  readonly at: string;
  readonly time: string;
  readonly type: PoolEvent['type'];
  readonly text: string;
}

/** Events of the last hour, newest first, each as the daemon's own log line says it. */
export function timelineItems(events: readonly PoolEvent[], now: number, timeZone?: string): TimelineItem[] {
  return recentEvents(events, now)
    .reverse()
    .map((event) => ({ at: event.time, time: timeOfDay(event.time, timeZone), type: event.type, text: formatEvent(event) }));
}

/** Keeps the events of the last hour, oldest first, at most TIMELINE_MAX_EVENTS (the newest). */
export function recentEvents(events: readonly PoolEvent[], now: number): PoolEvent[] {
  return events.filter((event) => now - Date.parse(event.time) <= TIMELINE_WINDOW_MS).slice(-TIMELINE_MAX_EVENTS);
}

/** How the page gets its data: the daemon's stream, polling `/status` when the stream is down, or nothing. */
export type Connection = 'connecting' | 'live' | 'polling' | 'offline';

export function connectionText(connection: Connection): string {
  switch (connection) {
    case 'connecting':
      return 'Connecting to the pool…';
    case 'live':
      return 'Live: updates as they happen';
    case 'polling':
      return 'Live stream unavailable: polling every second';
    case 'offline':
      return 'Daemon unreachable: retrying every second';
  }
}

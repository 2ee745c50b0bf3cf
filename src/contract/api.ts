import * as z from 'zod';
import { AgentName, AgentStatus, RequesterName } from './names.js';
import { parseWireTime } from './time.js';

import { MAX_BUSY_SECONDS, MAX_EVENTS_LIMIT, MAX_WAIT_SECONDS, TRANSITIONAL_EVENT_TYPES } from './constants.js';

export { MAX_BUSY_SECONDS, MAX_EVENTS_LIMIT, MAX_WAIT_SECONDS };

// ---- inputs (HTTP bodies and tRPC procedure inputs are the same objects) ----

/** An optional number of seconds from 0 to `max`, with messages naming the field. */
const secondsField = (name: string, max: number) =>
  z
    .number({ error: `${name} must be a number` })
    .min(0, { error: `${name} must be at least 0` })
    .max(max, { error: `${name} must be at most ${max}` })
    .optional();

export const RequestInput = z.object({
  agent: AgentName,
  requested_by: RequesterName.default('api'),
  wait_seconds: secondsField('wait_seconds', MAX_WAIT_SECONDS),
});
export type RequestInput = z.input<typeof RequestInput>;
export type RequestCommand = z.output<typeof RequestInput>;

/** `requested_by` is not in the bash manager's release body; when given, the event log says who released. */
export const ReleaseInput = z.object({ agent: AgentName, requested_by: RequesterName.default('api') });
export type ReleaseInput = z.input<typeof ReleaseInput>;

export const HeartbeatInput = z.object({
  agent: AgentName,
  /** The agent is mid-task: protect it from eviction this long from now (capped by BUSY_MAX_SECONDS). */
  busy_seconds: secondsField('busy_seconds', MAX_BUSY_SECONDS),
  /** The agent is working (`heartbeat --active`): with ACTIVITY_MODE=work only such a heartbeat is activity. */
  active: z.boolean({ error: 'active must be true or false' }).optional(),
});
export type HeartbeatInput = z.input<typeof HeartbeatInput>;
export type HeartbeatCommand = z.output<typeof HeartbeatInput>;

// ---- replies (SPEC §2; all answered with HTTP 200) ----

const agentField = { agent: z.string() };
/** Present when the request queued for a slot (`wait_seconds`): how long it waited, in seconds. */
const waitedField = { waited_seconds: z.number().optional() };

export const StartedReply = z.object({
  status: z.literal('started'),
  ...agentField,
  /** The agent stopped to make room, the first when there were several. */
  evicted: z.string().optional(),
  /** Every agent stopped to make room, least recently active first, when there were several (a memory budget). */
  evicted_all: z.array(z.string()).optional(),
  ...waitedField,
});
export const AlreadyRunningReply = z.object({ status: z.literal('already_running'), ...agentField, ...waitedField });
/**
 * What was short when it was not a slot: `memory` (the budget, even with every agent that may be
 * evicted gone), `too_large` (the agent alone needs more than the whole budget), `memory_pressure`
 * (the host's MemAvailable is below MEMORY_PRESSURE_MIN).
 */
export const PoolFullReason = z.enum(['memory', 'too_large', 'memory_pressure']);
export type PoolFullReason = z.infer<typeof PoolFullReason>;

export const PoolFullReply = z.object({
  status: z.literal('pool_full'),
  error: z.string(),
  reason: PoolFullReason.optional(),
  ...waitedField,
  /** The wait queue was at QUEUE_MAX: the request was answered at once instead of queued. */
  queue_full: z.boolean().optional(),
});
export const UnknownAgentReply = z.object({
  status: z.literal('unknown_agent'),
  ...agentField,
  error: z.string(),
  known: z.array(z.string()),
});
export const ForbiddenReply = z.object({ status: z.literal('forbidden'), ...agentField, error: z.string() });
/** An internal failure the caller cannot fix (Docker's, or the project's, or the pool shutting down): SPEC §2's `status: "error"`. */
export const InternalErrorReply = z.object({ status: z.literal('error'), ...agentField, error: z.string() });
export type StartedReply = z.infer<typeof StartedReply>;
export type AlreadyRunningReply = z.infer<typeof AlreadyRunningReply>;
export type PoolFullReply = z.infer<typeof PoolFullReply>;
export type UnknownAgentReply = z.infer<typeof UnknownAgentReply>;
export type ForbiddenReply = z.infer<typeof ForbiddenReply>;
export type InternalErrorReply = z.infer<typeof InternalErrorReply>;

export const RequestReply = z.discriminatedUnion('status', [
  StartedReply,
  AlreadyRunningReply,
  PoolFullReply,
  UnknownAgentReply,
  ForbiddenReply,
  InternalErrorReply,
]);
export type RequestReply = z.infer<typeof RequestReply>;

export const ReleaseReply = z.discriminatedUnion('status', [
  z.object({ status: z.literal('stopped'), ...agentField }),
  z.object({ status: z.literal('not_running'), ...agentField }),
  UnknownAgentReply,
  ForbiddenReply,
  InternalErrorReply,
]);
export type ReleaseReply = z.infer<typeof ReleaseReply>;

export const HeartbeatReply = z.object({ status: z.literal('ok') });
export type HeartbeatReply = z.infer<typeof HeartbeatReply>;

/** Why an agent may not be evicted right now (null: it may). */
export const Protection = z.enum(['requested', 'pinned', 'busy', 'grace', 'starting', 'stopping']);
export type Protection = z.infer<typeof Protection>;

/**
 * With ACTIVITY_MODE=work, what last moved an agent's `last_active`: a request naming it or made
 * by it, a busy hold, `heartbeat --active`, a touch of its activity file (`mark`), or the CPU or
 * network use measured between two samples (`work`).
 */
export const ActiveReason = z.enum(['request', 'busy', 'heartbeat', 'mark', 'work']);
export type ActiveReason = z.infer<typeof ActiveReason>;

/**
 * An agent's state as the wire shows it: its status, or for a running agent `paused` when Docker
 * has paused its container, `unresponsive` (ACTIVITY_MODE=work) when it had been sending heartbeats
 * and has sent none for three HEARTBEAT_INTERVALs.
 */
export const AgentState = z.enum([...AgentStatus.options, 'paused', 'unresponsive']);
export type AgentState = z.infer<typeof AgentState>;

/** One pooled agent as the wire shows it; times per `formatWireTime`. */
export const AgentView = z.object({
  id: z.string(),
  started: z.string(),
  last_active: z.string(),
  requested_by: z.string(),
  state: AgentState,
  protection: Protection.nullable(),
  /** When a time-bound protection (grace, busy) ends; absent when none applies or it never ends. */
  protected_until: z.string().optional(),
  /** The end of a busy hold a heartbeat asked for, while it lasts. */
  busy_until: z.string().optional(),
  /** The host the agent runs on, for drivers that span several (swarm). */
  node: z.string().optional(),
  /** With a memory budget: its memory at the last sample (one per reconcile), in bytes (absent until measured). */
  memory_bytes: z.number().optional(),
  /** With a memory budget: the highest memory measured in its current run, in bytes (absent until measured). */
  memory_peak_bytes: z.number().optional(),
  /** With a memory budget: what the pool counts it at (see the README's memory budget), in bytes. */
  memory_expected_bytes: z.number().optional(),
  /** With ACTIVITY_MODE=work: what last counted as its activity (absent until something did). */
  active_reason: ActiveReason.optional(),
});
export type AgentView = z.infer<typeof AgentView>;

/** A request queued for a slot, in FIFO order. */
export const QueueEntryView = z.object({
  agent: z.string(),
  requested_by: z.string(),
  since: z.string(),
  deadline: z.string(),
  /** Requests for the same agent share one entry (and one start). */
  waiters: z.number().int(),
});
export type QueueEntryView = z.infer<typeof QueueEntryView>;

export const StatusReply = z.object({
  running: z.array(AgentView),
  slots_total: z.number().int(),
  slots_free: z.number().int(),
  queue: z.array(QueueEntryView),
  /** With a memory budget: the budget, the expected memory of every agent counted against it, and what is left (never below 0), in bytes. */
  memory_budget_bytes: z.number().optional(),
  memory_used_bytes: z.number().optional(),
  memory_free_bytes: z.number().optional(),
});
export type StatusReply = z.infer<typeof StatusReply>;

export const AvailableReply = z.object({ agents: z.array(z.string()) });
export type AvailableReply = z.infer<typeof AvailableReply>;

export const HealthReply = z.object({
  status: z.enum(['ok', 'degraded']),
  reason: z.string().optional(),
  docker: z.enum(['ok', 'unreachable', 'unknown']),
  uptime_seconds: z.number(),
  version: z.string(),
});
export type HealthReply = z.infer<typeof HealthReply>;

/** Protocol errors of the bridge (400, 401, 404, 405, 413). */
export const ErrorReply = z.object({ error: z.string() });
export type ErrorReply = z.infer<typeof ErrorReply>;

// ---- the event log and live stream (SPEC §7 events.jsonl) ----

export const PoolEventType = z.enum([
  'started',
  'evicted',
  'released',
  'stopped',
  'lost',
  'adopted',
  'failed',
  'pool_full',
  'waiting',
  'waited',
  'starting',
  'stopping',
  /** Stopped for being idle IDLE_STOP_SECONDS, the pool full or not. */
  'idle',
  /** Its heartbeats stopped for three intervals (ACTIVITY_MODE=work): it goes first when room is needed. Once per silence. */
  'unresponsive',
]);
export type PoolEventType = z.infer<typeof PoolEventType>;

export const TRANSITIONAL_EVENTS = TRANSITIONAL_EVENT_TYPES as ReadonlySet<PoolEventType>;

/**
 * How the bridge established who called (CALLER_POLICY=agents): `peer`, a container of the project
 * by its address; `token`, a token of POOL_TOKENS_FILE; `host`, loopback or the host's own address
 * (whose `requested_by` is a claim the host may make).
 */
export const CallerVia = z.enum(['peer', 'token', 'host']);
export type CallerVia = z.infer<typeof CallerVia>;

export const PoolEvent = z.object({
  time: z.string(),
  type: PoolEventType,
  agent: z.string(),
  /** Who asked: a requester name, `autostart`, `adopted`, `reconcile`. */
  by: z.string(),
  /** How `by` was established, for what a bridge call asked (absent: the socket, or the daemon itself). */
  via: CallerVia.optional(),
  /** For `evicted`: the agent the slot was freed for. */
  for: z.string().optional(),
  reason: z.string().optional(),
});
export type PoolEvent = z.infer<typeof PoolEvent>;

/**
 * A query string's text as the number it writes in decimal (`20`, `1.5`, `-1`), NaN for any other
 * text; what is not text is left as it is. Not `Number()` (nor `z.coerce`), which also reads
 * `0x10`, `0b10000`, `1e1` and ` 16` as numbers.
 */
const decimalNumber = (value: unknown): unknown => (typeof value === 'string' ? (/^-?(\d+(\.\d*)?|\.\d+)$/.test(value) ? Number(value) : Number.NaN) : value);

/** A query of the event log (`poolctl events`, `GET /events`). */
export const EventsInput = z.object({
  /** ISO 8601 time with a zone: only events at or after it. */
  since: z
    .string()
    .refine((text) => parseWireTime(text) !== undefined, { error: 'since must be an ISO 8601 time with a zone, like 2026-02-28T05:17:04Z' })
    .optional(),
  agent: AgentName.optional(),
  limit: z
    .preprocess(
      decimalNumber,
      z
        .number({ error: 'limit must be a number in decimal digits, like 20' })
        .int({ error: 'limit must be a whole number' })
        .min(1, { error: 'limit must be at least 1' })
        .max(MAX_EVENTS_LIMIT, { error: `limit must be at most ${MAX_EVENTS_LIMIT}` }),
    )
    .default(100),
});
export type EventsInput = z.input<typeof EventsInput>;
export type EventsQuery = z.output<typeof EventsInput>;

export const EventsReply = z.object({
  /** Oldest first. */
  events: z.array(PoolEvent),
  /** Lines of the log that were not readable events (a torn line after a crash), skipped. */
  skipped: z.number().int(),
});
export type EventsReply = z.infer<typeof EventsReply>;

import type { DiagnosticsReply, EventsQuery, EventsReply, HealthReply, MetricsInput, MetricsReply, PoolEvent } from '../contract/index.js';
import type { PoolOperations } from '../core/index.js';

/** Where the operations report their outcomes, and how the metrics are read. */
export interface OperationMetrics {
  /** Counts the outcome of a request or release (and its wait, when it queued); passes the reply or the error on. */
  settle<T extends { readonly status: string; readonly waited_seconds?: number }>(operation: 'request' | 'release', reply: Promise<T>): Promise<T>;
  /** Counts one heartbeat: the bridge's hot path, so nothing more than an increment. */
  heartbeat(): void;
  render(format: NonNullable<MetricsInput['format']>): Promise<MetricsReply>;
}

/** What the procedures need, injected: the socket's router and the HTTP bridge both run on it. */
export interface RpcDeps {
  readonly pool: PoolOperations;
  readonly health: () => HealthReply;
  readonly metrics: OperationMetrics;
  /** What the running daemon says about itself (where the bridge listens). */
  readonly diagnostics: () => DiagnosticsReply;
  /** Live pool events; the iterator ends when `signal` aborts. */
  readonly subscribe: (signal: AbortSignal) => AsyncIterable<PoolEvent>;
  /** Past events from the event log (events.jsonl and its rotated files), oldest first. */
  readonly events: (query: EventsQuery) => Promise<EventsReply>;
  /** The configuration as the daemon runs it, secrets redacted. */
  readonly configView: () => Record<string, unknown>;
  /** Asks the process to shut down once the current reply is out (agents are left as they are; `agentsStopped`: they were stopped already). */
  readonly requestShutdown: (reason: string, options?: { readonly agentsStopped?: boolean }) => void;
}

export type Context = RpcDeps;

export function createContext(deps: RpcDeps): Context {
  return deps;
}

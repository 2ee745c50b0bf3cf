import type { EventsQuery, EventsReply, HealthReply, PoolEvent } from '../contract/index.js';
import type { Pool } from '../daemon/pool.js';

/** What the procedures need, injected: the socket's router and the HTTP bridge both run on it. */
export interface RpcDeps {
  readonly pool: Pool;
  readonly health: () => HealthReply;
  /** Live pool events; the iterator ends when `signal` aborts. */
  readonly subscribe: (signal: AbortSignal) => AsyncIterable<PoolEvent>;
  /** Past events from the event log (events.jsonl and its rotated files), oldest first. */
  readonly events: (query: EventsQuery) => Promise<EventsReply>;
  /** The configuration as the daemon runs it, secrets redacted. */
  readonly configView: () => Record<string, unknown>;
  /** Asks the process to shut down once the current reply is out (agents are left as they are). */
  readonly requestShutdown: (reason: string) => void;
}

export type Context = RpcDeps;

export function createContext(deps: RpcDeps): Context {
  return deps;
}

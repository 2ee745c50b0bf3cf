import type { ObservedAgent } from './reconcile.js';

/** What a running container uses now. */
export interface AgentUsage {
  /** Usage less the inactive file cache (what the kernel reclaims first), as `docker stats` counts it, in bytes. */
  readonly memoryBytes: number;
  /** CPU time used since it started, in nanoseconds. */
  readonly cpuNanos?: number;
  /** Bytes received and sent on all its interfaces; absent where there are no per-container counters (the host's network). */
  readonly networkBytes?: number;
}

/**
 * How agents are started and stopped. The core owns this interface; drivers implement it
 * (`satisfies AgentDriver`) and the core never imports a driver. Every method throws
 * `DriverError` (argv, exit code, stderr) when the backend fails or cannot be reached.
 */
export interface AgentDriver {
  /** Every service the backend knows, infrastructure included. */
  services(): Promise<string[]>;
  /** Starts the agent's container and resolves once it runs. Idempotent: a running agent is left as is. */
  start(agent: string): Promise<void>;
  /**
   * Stops the agent's container: gracefully within `timeoutMs`, then by kill. Resolves only once
   * the backend confirms the container is down. Idempotent: a stopped agent resolves at once.
   */
  stop(agent: string, timeoutMs: number): Promise<void>;
  /**
   * Resumes the agent's paused container and resolves once it runs again. Only for backends whose
   * listing reports `paused` (compose); the others have no such state.
   */
  unpause?(agent: string): Promise<void>;
  /**
   * Why no start can succeed now as far as the project's definition goes (compose's message for a
   * compose file that does not load), or undefined. Cheap while the definition is unchanged (a stat
   * of its files, no process); only after a change does it load the project again, once.
   */
  definitionProblem?(): Promise<string | undefined>;
  /**
   * What each running agent of `listed` uses now, by agent, where the backend measures it (compose:
   * the Engine API's one-shot stats, one call per running container). `listed` is a `list()` the
   * caller has just taken, so no second listing is made; containers gone since are left out.
   */
  usage?(listed: readonly ObservedAgent[]): Promise<ReadonlyMap<string, AgentUsage>>;
  /**
   * The memory limit of each service that has one in the project's definition, in bytes, as of its
   * last load (no backend call). The same map until the definition is loaded again.
   */
  memoryLimits?(): ReadonlyMap<string, number>;
  /** One listing of all the project's containers, whatever the pool size: never one call per agent. */
  list(): Promise<ObservedAgent[]>;
  /** Changes worth a reconcile, where the backend reports them; the iterator ends when the stream drops. */
  events?(signal: AbortSignal): AsyncIterable<{ readonly agent: string; readonly action: string }>;
}

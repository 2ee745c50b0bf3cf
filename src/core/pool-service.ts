import type { AlreadyRunningReply, CallerVia, ReleaseReply, StartedReply, StatusReply } from '../contract/index.js';
import type { AutostartPlan } from './autostart.js';
import type { PoolRules } from './state.js';

export type StartReply = StartedReply | AlreadyRunningReply;

export interface RequestOptions {
  /** Reconcile-time starts (autostart) must not evict anybody. */
  readonly allowEvict?: boolean;
  /** When the pool is full and nobody can be evicted, wait in line this long for a slot. */
  readonly waitSeconds?: number;
  /** The client went away: leave the line. */
  readonly signal?: AbortSignal;
  /** How the bridge established who asked (its events say so). */
  readonly via?: CallerVia;
}

/**
 * What the two faces (the socket's router and the HTTP bridge) may ask of the pool. Like
 * AgentDriver, a port the core owns: the rpc layer depends on it, the daemon's pool service
 * implements it. Requests and releases reject with the core's errors (PoolFullError,
 * UnknownAgentError, ForbiddenAgentError, DriverError, ...), which one mapping turns into replies.
 */
export interface PoolOperations {
  /** SPEC §1 request: resolves once the agent runs (or was running), after its eviction or its wait if any. */
  request(agent: string, requestedBy: string, options?: RequestOptions): Promise<StartReply>;
  /** SPEC §1 release: resolves once its container is confirmed down. */
  release(agent: string, by: string, via?: CallerVia): Promise<ReleaseReply>;
  /** Records activity (and a busy hold when `busySeconds` is given; `active`: `heartbeat --active`, see `recordHeartbeat`); saved at the next flush. */
  heartbeat(agent: string, busySeconds?: number, active?: boolean): void;
  status(): StatusReply;
  /** Agents that could be requested now without evicting anybody. */
  available(): string[];
  /** Every agent name the pool knows, sorted. */
  known(): string[];
  /** Stops every pooled agent (the systemd stop path). */
  stopAll(by: string): Promise<void>;
}

export interface PoolSettings {
  readonly rules: PoolRules;
  readonly stopTimeoutMs: number;
  /** Most distinct agents waiting for a slot at once (QUEUE_MAX). */
  readonly queueMax: number;
  /** SYNC_INTERVAL: the pressure guard reads MemAvailable (and stops an agent) at most this often. */
  readonly syncIntervalMs?: number;
}

export interface PoolHealth {
  readonly ok: boolean;
  readonly docker: boolean;
  readonly projectValid: boolean;
  readonly reason: string | undefined;
}

/** The pool service as the daemon drives it: the operations, plus its lifecycle. */
export interface PoolService extends PoolOperations {
  /** Runs a reconcile now, or once more right after the one in progress; concurrent callers share it. Rejects when Docker cannot be listed. */
  reconcile(): Promise<void>;
  health(): PoolHealth;
  /** Which agents of an autostart list to start now, judged on the pool's own state, rules and services. */
  planAutostart(list: readonly string[]): AutostartPlan;
  /** Applies re-read configuration; the next reconcile enforces a lowered cap. */
  configure(next: PoolSettings, names?: readonly string[]): void;
  /**
   * The pool's clock moved to a stepped wall clock (PoolClock.resync): every time kept moves the
   * same way, so no grace period, busy hold, wait or throttle is lengthened or cut short.
   */
  clockStepped(deltaMs: number): void;
  /** Answers every waiting request with an error (the daemon is stopping) and empties the line. */
  dismissWaiters(): void;
  /** Stops the flush timer after a last flush; waits for operations in flight. */
  close(): Promise<void>;
}

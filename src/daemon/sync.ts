import { setTimeout as sleep } from 'node:timers/promises';
import type { PoolService } from '../core/index.js';
import type { PoolClock } from './clock.js';
import type { Logger } from './log.js';

/** Docker events arrive in bursts (create, start, attach, ...): one reconcile per burst. */
const EVENT_DEBOUNCE_MS = 250;
const EVENTS_BACKOFF_MIN_MS = 1000;
const EVENTS_BACKOFF_MAX_MS = 60_000;
/** How often the wall clock is compared with the monotonic one: the longest a step goes unnoticed. */
const CLOCK_CHECK_MS = 1000;

export interface SyncDeps {
  readonly pool: PoolService;
  readonly clock: PoolClock;
  readonly log: Logger;
  readonly onError: (what: string, error: unknown) => void;
  readonly syncIntervalMs: () => number;
  /** The backend's change stream, where it has one. */
  readonly events: ((signal: AbortSignal) => AsyncIterable<unknown>) | undefined;
  /** After every reconcile, whatever its outcome (metrics, systemd's status line, the bridge's addresses). */
  readonly reconciled: (outcome: { ok: true } | { ok: false; error: unknown }) => Promise<void>;
  /** Runs a promise the daemon waits for when it stops. */
  readonly runInBackground: (work: Promise<unknown>) => void;
  /** Aborted when the daemon stops. */
  readonly signal: AbortSignal;
}

/**
 * What keeps the pool in line with Docker and with time: reconciles every SYNC_INTERVAL and after
 * each burst of Docker events, and the clock watch. All its timers stop with `stop`.
 */
export interface Sync {
  /** One reconcile now; a failure is reported (and retried by the timer), never thrown. */
  reconcileNow(): Promise<void>;
  /** (Re)arms the SYNC_INTERVAL timer, after a reload say. */
  armTimer(): void;
  /** Starts watching the clock for steps. */
  watchClock(): void;
  /** Starts the timer and, where the backend has one, the Docker events stream. */
  begin(): void;
  stop(): void;
}

export function createSync(deps: SyncDeps): Sync {
  const { pool, clock, log } = deps;
  let syncTimer: NodeJS.Timeout | undefined;
  let clockTimer: NodeJS.Timeout | undefined;
  let debounceTimer: NodeJS.Timeout | undefined;

  async function reconcileNow(): Promise<void> {
    try {
      await pool.reconcile();
    } catch (error) {
      deps.onError('reconciling with Docker (will retry)', error);
      await deps.reconciled({ ok: false, error });
      return;
    }
    await deps.reconciled({ ok: true });
  }

  function schedule(): void {
    if (debounceTimer !== undefined) return;
    debounceTimer = setTimeout(() => {
      debounceTimer = undefined;
      deps.runInBackground(reconcileNow());
    }, EVENT_DEBOUNCE_MS);
  }

  function armTimer(): void {
    clearTimeout(syncTimer);
    syncTimer = setTimeout(() => {
      void reconcileNow().finally(() => {
        if (!deps.signal.aborted) armTimer();
      });
    }, deps.syncIntervalMs());
  }

  /**
   * Notices wall-clock steps: the pool moves to the new wall time with every time it keeps shifted
   * alike (PoolClock.resync), so what it shows is the host's time and what it measures is unchanged.
   */
  function watchClock(): void {
    clockTimer = setInterval(() => {
      const step = clock.resync();
      if (step === undefined) return;
      pool.clockStepped(step);
      log.info(`clock: the wall clock stepped ${step > 0 ? 'forward' : 'back'} ${(Math.abs(step) / 1000).toFixed(1)} s; grace periods, busy holds and waits are measured on the monotonic clock and keep their length`);
    }, CLOCK_CHECK_MS);
    clockTimer.unref();
  }

  /** Follows the events for the project while the stream is up; restarts it with backoff when it drops. */
  async function followEvents(events: (signal: AbortSignal) => AsyncIterable<unknown>): Promise<void> {
    const { signal } = deps;
    let backoff = EVENTS_BACKOFF_MIN_MS;
    while (!signal.aborted) {
      const since = clock.monotonic();
      // Whatever changed before this stream attached (a compose command left by a killed daemon,
      // say) sends no event to it: look once more, just after it attaches.
      schedule();
      try {
        for await (const _event of events(signal)) schedule();
      } catch (error) {
        if (signal.aborted) return;
        deps.onError('following docker events', error);
      }
      if (signal.aborted) return;
      if (clock.monotonic() - since > EVENTS_BACKOFF_MAX_MS) backoff = EVENTS_BACKOFF_MIN_MS;
      log.info(`docker events stream ended; reconnecting in ${backoff / 1000} s`);
      await sleep(backoff, undefined, { signal }).catch(() => {});
      backoff = Math.min(backoff * 2, EVENTS_BACKOFF_MAX_MS);
    }
  }

  return {
    reconcileNow,
    armTimer,
    watchClock,
    begin() {
      armTimer();
      if (deps.events !== undefined) deps.runInBackground(followEvents(deps.events));
    },
    stop() {
      clearTimeout(syncTimer);
      clearTimeout(debounceTimer);
      clearInterval(clockTimer);
    },
  };
}

import type { PoolState } from '../../core/index.js';

/** How often in-memory activity (heartbeats) is flushed to state.json: at most one fsync per interval. */
const ACTIVITY_FLUSH_MS = 1000;

export interface StateCellDeps {
  /** Durable save of the state (state.json); rejects when it cannot be written. */
  readonly save: (state: PoolState) => Promise<void>;
  /** Best-effort publication of what the state shows (roster.json); never rejects. */
  readonly publish: (state: PoolState) => Promise<void>;
  readonly onError: (what: string, error: unknown) => void;
}

/**
 * The pool's state and its persistence. Transitions replace the state synchronously (decide and
 * reserve in one step); whether a change must reach state.json at once (`persist`) or may wait for
 * the flush timer (`touched`: activity, which heartbeats change thousands of times a second) is the
 * caller's to say. A failed save is reported, kept as the store's problem and retried by the timer.
 */
export interface StateCell {
  get(): PoolState;
  set(next: PoolState): void;
  /** The state changed in a way the next flush may save (activity, a re-read configuration). */
  touched(): void;
  /** Makes the current state durable now. Never throws. */
  persist(): Promise<void>;
  /** Why the state cannot be saved, while it cannot. */
  problem(): string | undefined;
  /** Stops the flush timer; `persist` once more for a last save. */
  stopFlushing(): void;
}

export function createStateCell(deps: StateCellDeps, initial: PoolState): StateCell {
  let state = initial;
  // The first flush writes both files even when nothing changes: a new POOL_DIR has no roster.json
  // for the agents until then, and reconciles that find nothing to change write nothing.
  let dirty = true;
  let problem: string | undefined;

  async function persist(): Promise<void> {
    dirty = false;
    const snapshot = state;
    try {
      await deps.save(snapshot);
      problem = undefined;
    } catch (error) {
      dirty = true;
      problem = `cannot write state: ${(error as Error).message}`;
      deps.onError('saving state.json', error);
    }
    await deps.publish(snapshot);
  }

  const flushTimer = setInterval(() => {
    if (dirty) void persist();
  }, ACTIVITY_FLUSH_MS);
  flushTimer.unref();

  return {
    get: () => state,
    set(next) {
      state = next;
    },
    touched() {
      dirty = true;
    },
    persist,
    problem: () => problem,
    stopFlushing() {
      clearInterval(flushTimer);
    },
  };
}

import type { StatusReply } from '../../src/contract/index.js';
import type { PoolState } from '../../src/core/index.js';
import { parseState, serializeState } from '../../src/store/index.js';

/**
 * The store port in memory (a double, like the scripted driver): state.json as the text the real
 * store would write, so that a restart reads back exactly what survives a write, and the last
 * roster published.
 */
export class MemoryStore {
  stateText: string | undefined;
  roster: StatusReply | undefined;
  saves = 0;

  readonly save = async (state: PoolState): Promise<void> => {
    this.saves++;
    this.stateText = serializeState(state);
  };

  readonly publish = async (status: StatusReply): Promise<void> => {
    this.roster = status;
  };

  /** What a daemon starting now would load. */
  load(): PoolState {
    return this.stateText === undefined ? { agents: new Map() } : parseState(this.stateText).state;
  }
}

import type { StartedReply } from '../../contract/index.js';

/**
 * Starts and stops in flight, one per agent, shared by every caller that overlaps it: Docker is
 * asked once and everybody gets its outcome (STYLE rule 11). Each settled operation takes the
 * next sequence number, so a reconcile can tell which agents changed under its listing.
 */
export interface InFlight {
  start(agent: string): Promise<StartedReply> | undefined;
  stop(agent: string): Promise<void> | undefined;
  trackStart(agent: string, operation: Promise<StartedReply>): Promise<StartedReply>;
  trackStop(agent: string, operation: Promise<void>): Promise<void>;
  /** The sequence number now: `busySince` of it names the agents touched from here on. */
  mark(): number;
  /** Agents with an operation in flight, or one settled after `mark`. */
  busySince(mark: number): Set<string>;
  /** Resolves once every operation in flight has settled, whatever its outcome. */
  settledAll(): Promise<void>;
}

export function createInFlight(): InFlight {
  const starts = new Map<string, Promise<StartedReply>>();
  const stops = new Map<string, Promise<void>>();
  /** Sequence number of each agent's last settled operation. */
  const settled = new Map<string, number>();
  let sequence = 0;

  function track<T>(map: Map<string, Promise<T>>, agent: string, operation: Promise<T>): Promise<T> {
    map.set(agent, operation);
    const settle = () => {
      if (map.get(agent) === operation) map.delete(agent);
      settled.set(agent, ++sequence);
    };
    operation.then(settle, settle);
    return operation;
  }

  return {
    start: (agent) => starts.get(agent),
    stop: (agent) => stops.get(agent),
    trackStart: (agent, operation) => track(starts, agent, operation),
    trackStop: (agent, operation) => track(stops, agent, operation),
    mark: () => sequence,
    busySince(mark) {
      const busy = new Set([...starts.keys(), ...stops.keys()]);
      for (const [agent, at] of settled) if (at > mark) busy.add(agent);
      return busy;
    },
    async settledAll() {
      await Promise.allSettled([...starts.values(), ...stops.values()]);
    },
  };
}

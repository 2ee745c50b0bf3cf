import { setTimeout as sleep } from 'node:timers/promises';
import type { SwarmStack } from './swarm-stack.js';

/**
 * Swarm reports no event when a task comes up or goes down, only when a service changes. After
 * such a change its replicas are compared this often, so that the reconcile that follows sees the
 * outcome; a task that cannot be placed never converges, hence the bound.
 */
const CONVERGE_POLL_MS = 500;
const CONVERGE_WAIT_MS = 60_000;
const TICK = Symbol('tick');

/**
 * Service changes of the stack (a scale behind the pool's back, an update, a removal), each
 * followed by `converged` once its replicas have, since tasks coming up or down on a node send
 * the manager no event of their own. `operating`: whether a start or stop of the agent is in
 * flight, whose service is not settled yet whatever its replicas say.
 */
export async function* serviceEvents(
  stack: SwarmStack,
  operating: (agent: string) => boolean,
  signal: AbortSignal,
): AsyncGenerator<{ readonly agent: string; readonly action: string }> {
  const done = new AbortController();
  const stream = AbortSignal.any([signal, done.signal]);
  const changes = stack.serviceChanges(stream);
  /** Agents whose service changed, with when to stop waiting for it to converge. */
  const settling = new Map<string, number>();
  let next = changes.next();
  try {
    // Once aborted, the poll below no longer waits (its sleep and an API read reject at once) and
    // would spin until the changes' wait bound ran out, starving the stream of the end it waits for.
    while (!stream.aborted) {
      const got = settling.size === 0 ? await next : await Promise.race([next, sleep(CONVERGE_POLL_MS, TICK, { signal: stream }).catch(() => TICK)]);
      if (typeof got === 'symbol') {
        // An engine that stops answering ends the events stream too; until then, keep waiting.
        const pending = await stack.unconverged(stream).catch(() => undefined);
        const now = performance.now();
        for (const [agent, until] of settling) {
          if (now <= until && (pending === undefined || pending.has(agent) || operating(agent))) continue;
          settling.delete(agent);
          yield { agent, action: 'converged' };
        }
        continue;
      }
      if (got.done === true) return;
      next = changes.next();
      const { service, action } = got.value;
      const agent = stack.agentOf(service);
      if (agent === undefined || !action) continue;
      settling.set(agent, performance.now() + CONVERGE_WAIT_MS);
      yield { agent, action };
    }
  } finally {
    done.abort();
    await changes.return(undefined);
  }
}

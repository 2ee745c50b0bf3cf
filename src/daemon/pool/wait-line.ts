import { type CallerVia, ClientGoneError, type PoolEventType, PoolFullError } from '../../contract/index.js';
import {
  type Catalogue,
  type PoolRules,
  type PoolState,
  type StartReply,
  type WaitQueue,
  emptyQueue,
  enqueue,
  expiredWaiters,
  headAdmissible,
  nextQueueWake,
  shiftQueue,
  withoutWaiters,
} from '../../core/index.js';
import { viaOf } from './agent-work.js';

/** A waiting client's way to get its answer. */
interface WaitingClient {
  readonly agent: string;
  readonly by: string;
  readonly via: CallerVia | undefined;
  readonly since: number;
  readonly settle: (outcome: { reply: StartReply } | { error: unknown }) => void;
}

export interface WaitLineDeps {
  readonly clock: () => number;
  /** What the head of the line is judged on, read afresh at every serving. */
  readonly view: () => { readonly state: PoolState; readonly rules: PoolRules; readonly catalogue: Catalogue; readonly queueMax: number };
  /** Decides and reserves synchronously, then carries the start out: the next head is judged on the updated state. */
  readonly admit: (agent: string, by: string, via: CallerVia | undefined) => Promise<StartReply>;
  readonly emit: (type: PoolEventType, agent: string, by: string, extra: { reason: string; via?: CallerVia }) => void;
}

/**
 * Requests waiting for a slot (`wait_seconds`), first come first served, with the one timer that
 * wakes the line when a deadline comes or an agent's protection ends. Slots freed by stops and
 * failures are events the pool acts on by calling `serve`.
 */
export interface WaitLine {
  /** Puts the request in line; settles with the start's reply, or PoolFullError at its deadline, or ClientGoneError. */
  wait(agent: string, by: string, waitSeconds: number, signal: AbortSignal | undefined, via?: CallerVia): Promise<StartReply>;
  /** Answers waiters whose deadline came, then serves the head of the line for as long as it can be served. */
  serve(): void;
  queue(): WaitQueue;
  /** Answers every waiter with `error(agent)` and empties the line. */
  dismiss(error: (agent: string) => Error): void;
  /** The pool's clock stepped (see PoolService.clockStepped). */
  shift(deltaMs: number): void;
}

// One closure, past the usual length: the line, its waiting clients and its timer change together,
// in one synchronous step each time, which is what keeps the line first come first served.
export function createWaitLine(deps: WaitLineDeps): WaitLine {
  let queue: WaitQueue = emptyQueue;
  const waiting = new Map<number, WaitingClient>();
  let waiterIds = 0;
  let wakeTimer: NodeJS.Timeout | undefined;
  const secondsSince = (since: number) => Math.round((deps.clock() - since) / 100) / 10;

  function armWake(): void {
    clearTimeout(wakeTimer);
    const { state, rules } = deps.view();
    const wake = nextQueueWake(queue, state, deps.clock(), rules);
    if (wake === undefined) return;
    wakeTimer = setTimeout(serve, Math.max(0, wake - deps.clock()));
  }

  function answerExpired(now: number): void {
    const expired = expiredWaiters(queue, now);
    queue = withoutWaiters(queue, expired);
    for (const id of expired) {
      const client = waiting.get(id);
      if (client === undefined) continue;
      waiting.delete(id);
      const waited = secondsSince(client.since);
      deps.emit('pool_full', client.agent, client.by, { reason: `waited ${waited} s, no slot came free`, ...viaOf(client.via) });
      client.settle({ error: new PoolFullError(client.agent, { waitedSeconds: waited }) });
    }
  }

  function serve(): void {
    if (queue.length === 0) return;
    const now = deps.clock();
    answerExpired(now);
    for (;;) {
      const { state, rules, catalogue } = deps.view();
      if (!headAdmissible(queue, state, now, rules, catalogue)) break;
      const [head, ...rest] = queue as [WaitQueue[number], ...WaitQueue];
      queue = rest;
      const clients = head.waiters.map((w) => waiting.get(w.id)).filter((c) => c !== undefined);
      for (const w of head.waiters) waiting.delete(w.id);
      // The line's requester is its first waiter's: so is how it was established.
      const via = clients[0]?.via;
      deps.emit('waited', head.agent, head.requestedBy, {
        reason: `${clients.length === 1 ? 'waited' : `${clients.length} requests waited up to`} ${secondsSince(Math.min(...clients.map((c) => c.since)))} s for a slot`,
        ...viaOf(via),
      });
      deps.admit(head.agent, head.requestedBy, via).then(
        (reply) => {
          for (const c of clients) c.settle({ reply: { ...reply, waited_seconds: secondsSince(c.since) } });
        },
        (error: unknown) => {
          for (const c of clients) c.settle({ error });
        },
      );
    }
    armWake();
  }

  function wait(agent: string, by: string, waitSeconds: number, signal: AbortSignal | undefined, via?: CallerVia): Promise<StartReply> {
    const now = deps.clock();
    const waiter = { id: ++waiterIds, since: now, deadline: now + waitSeconds * 1000 };
    const { queueMax } = deps.view();
    const entered = enqueue(queue, agent, by, waiter, queueMax);
    if (entered.outcome === 'full') {
      deps.emit('pool_full', agent, by, { reason: `wait queue full (QUEUE_MAX=${queueMax})`, ...viaOf(via) });
      return Promise.reject(new PoolFullError(agent, { queueFull: true }));
    }
    queue = entered.queue;
    deps.emit('waiting', agent, by, { reason: `up to ${waitSeconds} s, place ${queue.findIndex((e) => e.agent === agent) + 1} of ${queue.length} in line`, ...viaOf(via) });
    return new Promise<StartReply>((resolve, reject) => {
      const leave = () => {
        if (!waiting.delete(waiter.id)) return;
        queue = withoutWaiters(queue, new Set([waiter.id]));
        reject(new ClientGoneError(agent));
        // The place behind may be servable now (the model test's seed 1349569631): serve, not only re-arm.
        serve();
      };
      waiting.set(waiter.id, {
        agent,
        by,
        via,
        since: now,
        settle: (outcome) => {
          signal?.removeEventListener('abort', leave);
          if ('reply' in outcome) resolve(outcome.reply);
          else reject(outcome.error);
        },
      });
      if (signal?.aborted) return leave();
      signal?.addEventListener('abort', leave, { once: true });
      // The slot may have come free since the request was refused: between that decision and this
      // place, the stop that freed it could settle and serve a line without it (the model test's
      // seed 120740761: its own release and the eviction it waited for ended together).
      serve();
    });
  }

  return {
    wait,
    serve,
    queue: () => queue,
    dismiss(error) {
      clearTimeout(wakeTimer);
      for (const [id, client] of waiting) {
        waiting.delete(id);
        client.settle({ error: error(client.agent) });
      }
      queue = emptyQueue;
    },
    shift(deltaMs) {
      queue = shiftQueue(queue, deltaMs);
      for (const [id, client] of waiting) waiting.set(id, { ...client, since: client.since + deltaMs });
      armWake();
    },
  };
}

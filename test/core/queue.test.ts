import { describe, expect, it } from 'vitest';
import {
  type WaitQueue,
  emptyQueue,
  enqueue,
  expiredWaiters,
  headAdmissible,
  nextQueueWake,
  queueView,
  withoutWaiters,
} from '../../src/core/index.js';
import { NOW, catalogue, pool, rules } from '../support/builders.js';

const waiter = (id: number, waitSeconds = 30, sinceAgo = 0) => ({ id, since: NOW - sinceAgo * 1000, deadline: NOW - sinceAgo * 1000 + waitSeconds * 1000 });

/** A queue built by enqueueing `[agent, requestedBy, waiterId]` in order. */
function line(...arrivals: [string, string, number][]): WaitQueue {
  let queue = emptyQueue;
  for (const [agent, by, id] of arrivals) queue = enqueue(queue, agent, by, waiter(id), 10).queue;
  return queue;
}

describe('enqueue: first come, first served, one place per agent', () => {
  it.each([
    { what: 'the first waiter takes the first place', queue: emptyQueue, agent: 'cfo', outcome: 'queued', order: ['cfo'] },
    { what: 'a waiter for another agent goes to the back', queue: line(['cfo', 'ceo', 1]), agent: 'qa', outcome: 'queued', order: ['cfo', 'qa'] },
    { what: 'a waiter for an agent already in line shares its place', queue: line(['cfo', 'ceo', 1], ['qa', 'ceo', 2]), agent: 'cfo', outcome: 'joined', order: ['cfo', 'qa'] },
    { what: 'a new agent is turned away when every place is taken', queue: line(['cfo', 'ceo', 1], ['qa', 'ceo', 2]), agent: 'legal', max: 2, outcome: 'full', order: ['cfo', 'qa'] },
    { what: 'a full line still lets a waiter join an agent in it', queue: line(['cfo', 'ceo', 1], ['qa', 'ceo', 2]), agent: 'qa', max: 2, outcome: 'joined', order: ['cfo', 'qa'] },
    { what: 'QUEUE_MAX 0 turns every waiter away', queue: emptyQueue, agent: 'cfo', max: 0, outcome: 'full', order: [] },
  ])('$what', ({ queue, agent, max, outcome, order }) => {
    const result = enqueue(queue, agent, 'marketing', waiter(99), max ?? 10);
    expect(result.outcome).toBe(outcome);
    expect(result.queue.map((e) => e.agent)).toEqual(order);
  });

  it('keeps the first requester of a place and counts the others, each with its own requester', () => {
    const queue = line(['cfo', 'ceo', 1], ['cfo', 'cto', 2]);
    expect(queue).toEqual([{ agent: 'cfo', requestedBy: 'ceo', waiters: [{ ...waiter(1), requestedBy: 'ceo' }, { ...waiter(2), requestedBy: 'cto' }] }]);
  });
});

describe('leaving the line', () => {
  it.each([
    { what: 'one of two waiters for an agent leaves: the place stays', ids: [2], left: [['cfo', [1]], ['qa', [3]]] },
    { what: 'the only waiter of a place leaves: the place is given up', ids: [3], left: [['cfo', [1, 2]]] },
    { what: 'everybody leaves', ids: [1, 2, 3], left: [] },
    { what: 'an unknown waiter changes nothing', ids: [42], left: [['cfo', [1, 2]], ['qa', [3]]] },
  ])('$what', ({ ids, left }) => {
    const queue = withoutWaiters(line(['cfo', 'ceo', 1], ['cfo', 'cto', 2], ['qa', 'ceo', 3]), new Set(ids));
    expect(queue.map((e) => [e.agent, e.waiters.map((w) => w.id)])).toEqual(left);
  });

  it('finds the waiters whose deadline has come, the deadline itself included', () => {
    let queue = enqueue(emptyQueue, 'cfo', 'ceo', waiter(1, 10, 10), 10).queue;
    queue = enqueue(queue, 'cfo', 'ceo', waiter(2, 10, 9.999), 10).queue;
    queue = enqueue(queue, 'qa', 'ceo', waiter(3, 10, 11), 10).queue;
    expect(expiredWaiters(queue, NOW)).toEqual(new Set([1, 3]));
  });
});

describe('headAdmissible: only the head of the line is served, and only when it would not be pool_full', () => {
  const queue = line(['qa', 'ceo', 1], ['legal', 'ceo', 2]);
  it.each([
    { what: 'a free slot', state: pool({ ceo: { idle: 1 }, cto: { idle: 1 } }), admissible: true },
    { what: 'a full pool with an idle agent to evict', state: pool({ ceo: { idle: 1 }, cto: { idle: 1 }, cfo: { idle: 300 } }), admissible: true },
    { what: 'a full pool, everybody within grace', state: pool({ ceo: { idle: 1 }, cto: { idle: 1 }, cfo: { idle: 59 } }), admissible: false },
    { what: 'a full pool, the idle agent busy', state: pool({ ceo: { idle: 1 }, cto: { idle: 1 }, cfo: { idle: 300, busy: 60 } }), admissible: false },
    { what: 'the head already running (someone else started it)', state: pool({ ceo: { idle: 1 }, cto: { idle: 1 }, qa: { idle: 1 } }), admissible: true },
    { what: 'the head started meanwhile and still starting', state: pool({ ceo: { idle: 1 }, cto: { idle: 1 }, qa: { status: 'starting' } }), admissible: true },
  ])('$what → $admissible', ({ state, admissible }) => {
    expect(headAdmissible(queue, state, NOW, rules(), catalogue('qa', 'legal', 'ceo', 'cto', 'cfo'))).toBe(admissible);
  });

  it('answers the head when its agent left the project (unknown_agent is an answer, not a wait)', () => {
    expect(headAdmissible(queue, pool({ ceo: { idle: 1 }, cto: { idle: 1 }, cfo: { idle: 1 } }), NOW, rules(), catalogue('ceo'))).toBe(true);
  });

  it('never serves an empty line', () => {
    expect(headAdmissible(emptyQueue, pool({}), NOW, rules(), catalogue())).toBe(false);
  });
});

describe('nextQueueWake: when time alone may change what the line gets', () => {
  it.each([
    { what: 'an empty line never needs waking', queue: emptyQueue, state: pool({ ceo: { idle: 1 } }), wake: undefined },
    { what: 'the earliest deadline, when no protection ends sooner', queue: line(['qa', 'ceo', 1]), state: pool({ ceo: { idle: 300 } }), wake: NOW + 30_000 },
    { what: 'just after a grace period ends', queue: line(['qa', 'ceo', 1]), state: pool({ ceo: { idle: 50 } }), wake: NOW + 10_001 },
    { what: 'just after a busy hold ends', queue: line(['qa', 'ceo', 1]), state: pool({ ceo: { idle: 300, busy: 5 } }), wake: NOW + 5_001 },
  ])('$what', ({ queue, state, wake }) => {
    expect(nextQueueWake(queue, state, NOW, rules())).toBe(wake);
  });
});

describe('queueView', () => {
  it('shows one line per place: the first requester, the earliest arrival, the latest deadline, how many wait', () => {
    let queue = enqueue(emptyQueue, 'cfo', 'ceo', waiter(1, 30, 20), 10).queue;
    queue = enqueue(queue, 'cfo', 'cto', waiter(2, 60, 5), 10).queue;
    expect(queueView(queue)).toEqual([
      { agent: 'cfo', requested_by: 'ceo', since: '2026-02-28T05:16:44Z', deadline: '2026-02-28T05:17:59Z', waiters: 2 },
    ]);
    // The first requester gone (its deadline, or it hung up), the place is the next one's.
    expect(queueView(withoutWaiters(queue, new Set([1])))).toEqual([
      { agent: 'cfo', requested_by: 'cto', since: '2026-02-28T05:16:59Z', deadline: '2026-02-28T05:17:59Z', waiters: 1 },
    ]);
  });
});

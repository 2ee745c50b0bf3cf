import { describe, expect, it } from 'vitest';
import { type ObservedAgent, reconcile } from '../../src/core/index.js';
import { NOW, pool, rules, secondsAgo, statuses } from '../support/builders.js';

const up = (...agents: string[]): ObservedAgent[] => agents.map((agent) => ({ agent, running: true }));

describe('reconcile against what Docker observes', () => {
  it.each([
    {
      rule: 'drops a running agent whose container is gone',
      state: pool({ ceo: {}, cto: {} }),
      observed: up('ceo'),
      expected: { ceo: 'running' },
      lost: ['cto'],
    },
    {
      rule: 'drops an agent whose container exists but is not running',
      state: pool({ ceo: {} }),
      observed: [{ agent: 'ceo', running: false }],
      expected: {},
      lost: ['ceo'],
    },
    {
      rule: 'adopts a running container the state does not know',
      state: pool({ ceo: {} }),
      observed: up('ceo', 'cfo'),
      expected: { ceo: 'running', cfo: 'running' },
      adopted: ['cfo'],
    },
    {
      rule: 'never adopts an infrastructure service',
      state: pool({}),
      observed: up('gateway', 'litellm', 'ollama'),
      expected: {},
    },
    {
      rule: 'drops an infrastructure service found in the state (the configuration changed)',
      state: pool({ ollama: {} }),
      observed: up('ollama'),
      expected: {},
      lost: ['ollama'],
    },
    {
      rule: 'completes a start left behind by a restart when its container came up',
      state: pool({ cfo: { status: 'starting' } }),
      observed: up('cfo'),
      expected: { cfo: 'running' },
    },
    {
      rule: 'drops a start left behind by a restart when its container never came up',
      state: pool({ cfo: { status: 'starting' } }),
      observed: [],
      expected: {},
      lost: ['cfo'],
    },
    {
      rule: 'finishes a stop left behind by a restart',
      state: pool({ cfo: { status: 'stopping' } }),
      observed: up('cfo'),
      expected: { cfo: 'stopping' },
      stop: ['cfo'],
    },
    {
      rule: 'counts a stop left behind as done when the container is down',
      state: pool({ cfo: { status: 'stopping' } }),
      observed: [],
      expected: {},
      stopped: ['cfo'],
    },
    {
      rule: 'leaves agents with an operation in flight alone',
      state: pool({ cfo: { status: 'starting' }, cto: { status: 'stopping' } }),
      observed: up('cto'),
      busy: ['cfo', 'cto'],
      expected: { cfo: 'starting', cto: 'stopping' },
    },
    {
      rule: 'does not adopt a container the pool stopped after the listing was taken',
      state: pool({ ceo: {} }),
      observed: up('ceo', 'cto'),
      busy: ['cto'],
      expected: { ceo: 'running' },
    },
    {
      rule: 'stops the least recently active unprotected agents when adoption overfills the pool',
      state: pool({ ceo: { idle: 500 }, cto: { idle: 100 } }),
      observed: up('ceo', 'cto', 'cfo', 'qa'),
      expected: { ceo: 'stopping', cto: 'running', cfo: 'running', qa: 'running' },
      adopted: ['cfo', 'qa'],
      stop: ['ceo'],
    },
    {
      rule: 'holds the cap even when every agent is inside its grace period, stopping pinned agents last',
      state: pool({ ceo: { idle: 5 }, cto: { idle: 1 }, cfo: { idle: 2 }, qa: { idle: 3 }, designer: { idle: 9999 } }),
      observed: up('ceo', 'cto', 'cfo', 'qa', 'designer'),
      pinned: ['designer'],
      expected: { ceo: 'stopping', cto: 'running', cfo: 'running', qa: 'stopping', designer: 'running' },
      stop: ['ceo', 'qa'],
    },
  ])('$rule', ({ state, observed, busy, pinned, expected, lost = [], adopted = [], stop = [], stopped = [] }) => {
    const result = reconcile(state, observed, NOW, rules({ pinned }), new Set(busy));
    expect(statuses(result.state)).toEqual(expected);
    expect(result.lost.map((l) => l.agent)).toEqual(lost);
    expect(result.adopted).toEqual(adopted);
    expect(result.stop).toEqual(stop);
    expect(result.stopped).toEqual(stopped);
  });

  it('when adoption overfills the pool, stops an unresponsive agent first (work mode), even one in its grace period', () => {
    const state = pool({ ceo: { idle: 500, beat: 5 }, cto: { idle: 5, beat: 100 }, cfo: { idle: 300, beat: 5 } });
    const result = reconcile(state, up('ceo', 'cto', 'cfo', 'qa'), NOW, rules({ work: { cpuPercent: 5, netBytes: 65_536 }, unresponsiveMs: 90_000 }), new Set());
    expect(result.stop).toEqual(['cto']);
  });

  it('gives an adopted agent requested_by "adopted" and its container start as start and last activity', () => {
    const result = reconcile(pool({}), [{ agent: 'cfo', running: true, startedAt: secondsAgo(30) }], NOW, rules());
    expect(result.state.agents.get('cfo')).toEqual({ status: 'running', started: secondsAgo(30), lastActive: secondsAgo(30), requestedBy: 'adopted' });
  });

  it('voids a slot promise whose newcomer is gone after a restart, so the victim counts again', () => {
    const state = pool({ cto: { status: 'stopping', slotFor: 'cfo' }, cfo: { status: 'starting' } });
    const result = reconcile(state, up('cto'), NOW, rules());
    expect(statuses(result.state)).toEqual({ cto: 'stopping' });
    expect(result.state.agents.get('cto')?.slotFor).toBeUndefined();
    expect(result.stop).toEqual(['cto']);
  });

  it('treats an agent with several containers as running if any of them runs', () => {
    const result = reconcile(pool({ ceo: {} }), [{ agent: 'ceo', running: false }, { agent: 'ceo', running: true }], NOW, rules());
    expect(statuses(result.state)).toEqual({ ceo: 'running' });
  });

  it('is a no-op when state and Docker agree', () => {
    const state = pool({ ceo: {}, cto: {} });
    const result = reconcile(state, up('ceo', 'cto', 'gateway'), NOW, rules());
    // The very same state, not an equal copy: a new one is saved to state.json and roster.json.
    expect(result.state).toBe(state);
    expect([result.lost, result.adopted, result.stop, result.stopped].flat()).toEqual([]);
  });

  it('gives a new state when only an observation changed (a container paused)', () => {
    const state = pool({ ceo: {} });
    const result = reconcile(state, [{ agent: 'ceo', running: true, paused: true }], NOW, rules());
    expect(result.state).not.toBe(state);
    expect(result.state.agents.get('ceo')?.paused).toBe(true);
  });

  describe('paused containers (docker pause): still there, still holding their memory and slot', () => {
    const frozen = (agent: string): ObservedAgent => ({ agent, running: true, paused: true });
    const pausedOf = (state: ReturnType<typeof reconcile>['state']) => [...state.agents].filter(([, r]) => r.paused).map(([n]) => n);
    it.each([
      { rule: 'keeps a running agent whose container was paused, and marks it paused', state: pool({ ceo: {} }), observed: [frozen('ceo')], expected: { ceo: 'running' }, paused: ['ceo'] },
      { rule: 'clears the mark once the container is unpaused', state: pool({ ceo: { paused: true } }), observed: up('ceo'), expected: { ceo: 'running' }, paused: [] },
      { rule: 'adopts a paused container the state does not know, as paused', state: pool({}), observed: [frozen('cfo')], expected: { cfo: 'running' }, adopted: ['cfo'], paused: ['cfo'] },
      { rule: 'completes a start left by a restart whose container is now paused', state: pool({ cfo: { status: 'starting' } }), observed: [frozen('cfo')], expected: { cfo: 'running' }, paused: ['cfo'] },
      { rule: 'finishes a stop left by a restart whose container is paused', state: pool({ cfo: { status: 'stopping' } }), observed: [frozen('cfo')], expected: { cfo: 'stopping' }, stop: ['cfo'], paused: ['cfo'] },
      { rule: 'leaves the mark of an agent with an operation in flight to a later listing', state: pool({ cfo: { status: 'starting', paused: true } }), observed: up('cfo'), busy: ['cfo'], expected: { cfo: 'starting' }, paused: ['cfo'] },
      {
        rule: 'counts a paused container against the cap, so adopting beside it stops the least recently active',
        state: pool({ ceo: { idle: 500, paused: true }, cto: { idle: 400 }, cfo: { idle: 300 } }),
        observed: [frozen('ceo'), ...up('cto', 'cfo', 'qa')],
        expected: { ceo: 'stopping', cto: 'running', cfo: 'running', qa: 'running' },
        adopted: ['qa'],
        stop: ['ceo'],
        paused: ['ceo'],
      },
    ])('$rule', ({ state, observed, busy, expected, adopted = [], stop = [], paused }) => {
      const result = reconcile(state, observed, NOW, rules(), new Set(busy));
      expect(statuses(result.state)).toEqual(expected);
      expect(result.lost).toEqual([]);
      expect(result.adopted).toEqual(adopted);
      expect(result.stop).toEqual(stop);
      expect(pausedOf(result.state)).toEqual(paused);
    });
  });

  describe('the node each agent runs on (backends that span several hosts)', () => {
    const on = (agent: string, node?: string): ObservedAgent => ({ agent, running: true, ...(node !== undefined && { node }) });
    it.each([
      { rule: 'records the node an adopted agent was found on', state: pool({}), observed: [on('cfo', 'n1')], expected: { cfo: 'n1' } },
      { rule: 'records the node of a known agent once a listing says it', state: pool({ ceo: {} }), observed: [on('ceo', 'n1')], expected: { ceo: 'n1' } },
      { rule: 'follows an agent that the scheduler moved to another node', state: pool({ ceo: { node: 'n1' } }), observed: [on('ceo', 'n2')], expected: { ceo: 'n2' } },
      { rule: 'keeps the node when the listing does not say one', state: pool({ ceo: { node: 'n1' } }), observed: [on('ceo')], expected: { ceo: 'n1' } },
      { rule: 'leaves the node of an agent with an operation in flight to a later listing', state: pool({ ceo: { status: 'starting', node: 'n1' } }), observed: [on('ceo', 'n2')], busy: ['ceo'], expected: { ceo: 'n1' } },
      { rule: 'says nothing of nodes for a backend on one host', state: pool({ ceo: {} }), observed: [on('ceo')], expected: { ceo: undefined } },
    ])('$rule', ({ state, observed, busy, expected }) => {
      const result = reconcile(state, observed, NOW, rules(), new Set(busy));
      expect(Object.fromEntries([...result.state.agents].map(([name, r]) => [name, r.node]))).toEqual(expected);
    });
  });
});

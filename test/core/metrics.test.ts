import { describe, expect, it } from 'vitest';
import {
  type AgentView,
  ChangingStateError,
  DriverError,
  ForbiddenAgentError,
  type PoolEvent,
  PoolFullError,
  ProjectInvalidError,
  ShuttingDownError,
  type StatusReply,
  UnknownAgentError,
} from '../../src/contract/index.js';
import { evictionCause, memoryGauges, poolGauges, reconcileLagSeconds, settledFigures } from '../../src/core/index.js';
import { NOW } from '../support/builders.js';

describe('settledFigures: the outcome label of an operation, and its wait', () => {
  it.each([
    { what: 'a started reply', settled: { reply: { status: 'started' } }, outcome: 'started', waited: undefined },
    { what: 'a release that stopped the agent', settled: { reply: { status: 'stopped' } }, outcome: 'stopped', waited: undefined },
    { what: 'a start after a wait for a slot', settled: { reply: { status: 'started', waited_seconds: 12.5 } }, outcome: 'started', waited: 12.5 },
    { what: 'a thrown PoolFullError', settled: { error: new PoolFullError('qa') }, outcome: 'pool_full', waited: undefined },
    { what: 'a PoolFullError at the end of a wait', settled: { error: new PoolFullError('qa', { waitedSeconds: 30 }) }, outcome: 'pool_full', waited: 30 },
    { what: 'a PoolFullError with the queue full (no wait)', settled: { error: new PoolFullError('qa', { queueFull: true }) }, outcome: 'pool_full', waited: undefined },
    { what: 'a thrown UnknownAgentError', settled: { error: new UnknownAgentError('x', ['ceo']) }, outcome: 'unknown_agent', waited: undefined },
    { what: 'a thrown ForbiddenAgentError', settled: { error: new ForbiddenAgentError('gateway') }, outcome: 'forbidden', waited: undefined },
    { what: 'a thrown DriverError (the bridge answers status "error")', settled: { error: new DriverError('no such image', [], 1, '') }, outcome: 'error', waited: undefined },
    { what: 'a project that does not load (answered status "error", not Docker\'s failure)', settled: { error: new ProjectInvalidError('qa', 'yaml: line 3') }, outcome: 'project_invalid', waited: undefined },
    { what: 'an agent that kept changing state', settled: { error: new ChangingStateError('qa') }, outcome: 'changing_state', waited: undefined },
    { what: 'a wait cut short by the daemon stopping', settled: { error: new ShuttingDownError('qa') }, outcome: 'shutting_down', waited: undefined },
    { what: 'anything else thrown (a bug)', settled: { error: new TypeError('boom') }, outcome: 'internal_error', waited: undefined },
  ])('$what → $outcome', ({ settled, outcome, waited }) => {
    expect(settledFigures(settled)).toEqual({ outcome, waitedSeconds: waited });
  });
});

describe('evictionCause: why an agent was evicted', () => {
  const event = (type: PoolEvent['type'], extra: Partial<PoolEvent> = {}): PoolEvent => ({ time: '2026-02-28T05:17:04Z', type, agent: 'cto', by: 'ceo', ...extra });
  it.each([
    { what: 'an eviction to make room for a request', event: event('evicted', { for: 'qa' }), cause: 'request' },
    { what: 'an eviction for a request from a requester named "reconcile"', event: event('evicted', { for: 'qa', by: 'reconcile' }), cause: 'request' },
    { what: 'an eviction after a reconcile found the pool over its cap', event: event('evicted', { by: 'reconcile' }), cause: 'reconcile' },
    { what: 'a stop by the pressure guard', event: event('evicted', { by: 'memory_pressure' }), cause: 'memory_pressure' },
    { what: 'an idle stop (IDLE_STOP_SECONDS)', event: event('idle', { by: 'idle' }), cause: 'idle' },
    { what: 'a release', event: event('released'), cause: undefined },
    { what: 'a start', event: event('started'), cause: undefined },
  ])('$what → $cause', ({ event: e, cause }) => {
    expect(evictionCause(e)).toBe(cause);
  });
});

describe('poolGauges: the gauges read from the status at scrape time', () => {
  const agent = (id: string, state: 'starting' | 'running' | 'stopping' | 'unresponsive') => ({
    id,
    started: '2026-02-28T05:00:00Z',
    last_active: '2026-02-28T05:00:00Z',
    requested_by: 'test',
    state,
    protection: null,
  });
  const entry = (agent: string, waiters: number) => ({ agent, requested_by: 'ceo', since: '2026-02-28T05:17:00Z', deadline: '2026-02-28T05:18:00Z', waiters });
  it.each([
    {
      what: 'an empty pool',
      status: { running: [], slots_total: 3, slots_free: 3, queue: [] },
      gauges: { agents: { starting: 0, running: 0, stopping: 0, paused: 0 }, slotsTotal: 3, slotsFree: 3, queueLength: 0, queueWaiters: 0 },
    },
    {
      what: 'agents in every state, all counted',
      status: { running: [agent('ceo', 'running'), agent('cto', 'stopping'), agent('qa', 'starting'), agent('cfo', 'running')], slots_total: 4, slots_free: 0, queue: [] },
      gauges: { agents: { starting: 1, running: 2, stopping: 1, paused: 0 }, slotsTotal: 4, slotsFree: 0, queueLength: 0, queueWaiters: 0 },
    },
    {
      what: 'an unresponsive agent as running: its container runs and holds its slot',
      status: { running: [agent('ceo', 'unresponsive'), agent('cfo', 'running')], slots_total: 3, slots_free: 1, queue: [] },
      gauges: { agents: { starting: 0, running: 2, stopping: 0, paused: 0 }, slotsTotal: 3, slotsFree: 1, queueLength: 0, queueWaiters: 0 },
    },
    {
      what: 'a queue: one entry per agent, its waiters summed',
      status: { running: [agent('ceo', 'running')], slots_total: 1, slots_free: 0, queue: [entry('qa', 3), entry('cfo', 1)] },
      gauges: { agents: { starting: 0, running: 1, stopping: 0, paused: 0 }, slotsTotal: 1, slotsFree: 0, queueLength: 2, queueWaiters: 4 },
    },
  ])('$what', ({ status, gauges }) => {
    expect(poolGauges(status as StatusReply)).toEqual(gauges);
  });
});

describe('memoryGauges: the memory series read from the status at scrape time', () => {
  const agent = (id: string, memory: Partial<Pick<AgentView, 'memory_bytes' | 'memory_peak_bytes' | 'memory_expected_bytes'>>): AgentView => ({
    id,
    started: '2026-02-28T05:00:00Z',
    last_active: '2026-02-28T05:00:00Z',
    requested_by: 'test',
    state: 'running',
    protection: null,
    ...memory,
  });
  const budget = { memory_budget_bytes: 1000, memory_used_bytes: 700, memory_free_bytes: 300 };
  it.each([
    { what: 'no budget: no series, whatever the agents say', status: { running: [agent('ceo', {})] }, gauges: { pool: [], agents: [] } },
    {
      what: 'a budget: its three figures, and each agent’s known figures (none before a first sample)',
      status: { ...budget, running: [agent('ceo', { memory_bytes: 250, memory_peak_bytes: 400, memory_expected_bytes: 400 }), agent('cto', { memory_expected_bytes: 300 })] },
      gauges: {
        pool: [
          { kind: 'budget', bytes: 1000 },
          { kind: 'used', bytes: 700 },
          { kind: 'free', bytes: 300 },
        ],
        agents: [
          { agent: 'ceo', kind: 'now', bytes: 250 },
          { agent: 'ceo', kind: 'peak', bytes: 400 },
          { agent: 'ceo', kind: 'expected', bytes: 400 },
          { agent: 'cto', kind: 'expected', bytes: 300 },
        ],
      },
    },
  ])('$what', ({ status, gauges }) => {
    expect(memoryGauges({ slots_total: 3, slots_free: 1, queue: [], ...status })).toEqual(gauges);
  });
});

describe('reconcileLagSeconds: seconds since the last reconcile that reached Docker', () => {
  it.each([
    { what: 'just reconciled', last: NOW, since: NOW - 60_000, now: NOW, lag: 0 },
    { what: 'reconciled 15 s ago', last: NOW - 15_000, since: NOW - 60_000, now: NOW, lag: 15 },
    { what: 'never reconciled: counted from start-up', last: undefined, since: NOW - 42_500, now: NOW, lag: 42.5 },
    { what: 'a clock that stepped back: never negative', last: NOW + 5_000, since: NOW - 60_000, now: NOW, lag: 0 },
  ])('$what → $lag', ({ last, since, now, lag }) => {
    expect(reconcileLagSeconds(last, since, now)).toBe(lag);
  });
});

import { describe, expect, it } from 'vitest';
import {
  ChangingStateError,
  DriverError,
  ForbiddenAgentError,
  type PoolError,
  PoolFullError,
  ProjectInvalidError,
  ShuttingDownError,
  UnknownAgentError,
  poolErrorData,
  poolErrorFromData,
  replyForError,
  rpcCodeOf,
} from '../../src/contract/index.js';

/** Every kind of pool error, with what each face makes of it (contract/errors.ts, the one mapping). */
const KINDS: { error: PoolError; reply: Record<string, unknown>; rpc: string }[] = [
  {
    error: new PoolFullError('qa', { waitedSeconds: 30 }),
    reply: { status: 'pool_full', error: 'no slot came free within 30 s: all agents recently active, try again later', waited_seconds: 30 },
    rpc: 'CONFLICT',
  },
  {
    error: new PoolFullError('qa', { queueFull: true }),
    reply: { status: 'pool_full', error: 'all agents recently active and the wait queue is full, try again later', queue_full: true },
    rpc: 'CONFLICT',
  },
  {
    error: new PoolFullError('qa', { reason: 'memory' }),
    reply: { status: 'pool_full', error: 'not enough memory for qa within MEMORY_BUDGET, and evicting the agents that may be evicted would not free enough; try again later', reason: 'memory' },
    rpc: 'CONFLICT',
  },
  {
    error: new PoolFullError('qa', { reason: 'too_large', needsBytes: 1200 * 1024 ** 2, budgetBytes: 1024 ** 3 }),
    reply: { status: 'pool_full', error: 'qa is expected to need 1.2 GiB, more than the whole MEMORY_BUDGET of 1 GiB: it cannot start under this budget', reason: 'too_large' },
    rpc: 'CONFLICT',
  },
  {
    error: new UnknownAgentError('qq', ['ceo', 'qa']),
    reply: { status: 'unknown_agent', agent: 'qa', error: 'unknown agent "qq"; known agents: ceo, qa', known: ['ceo', 'qa'] },
    rpc: 'NOT_FOUND',
  },
  {
    error: new UnknownAgentError('qq', ['ceo'], '/etc/openclaw-pool/agents.json'),
    reply: { status: 'unknown_agent', agent: 'qa', error: 'unknown agent "qq" (not in /etc/openclaw-pool/agents.json); known agents: ceo', known: ['ceo'] },
    rpc: 'NOT_FOUND',
  },
  { error: new ForbiddenAgentError('gateway'), reply: { status: 'forbidden', agent: 'qa', error: 'infrastructure service' }, rpc: 'FORBIDDEN' },
  { error: new DriverError('qa: no such image', ['docker', 'compose', 'up'], 1, 'no such image'), reply: { status: 'error', agent: 'qa', error: 'qa: no such image' }, rpc: 'BAD_GATEWAY' },
  { error: new ProjectInvalidError('qa', 'yaml: line 3: mapping values'), reply: { status: 'error', agent: 'qa', error: 'yaml: line 3: mapping values' }, rpc: 'PRECONDITION_FAILED' },
  { error: new ChangingStateError('qa'), reply: { status: 'error', agent: 'qa', error: 'qa kept changing state; try again' }, rpc: 'CONFLICT' },
  { error: new ShuttingDownError('qa'), reply: { status: 'error', agent: 'qa', error: 'qa: the pool manager is shutting down' }, rpc: 'SERVICE_UNAVAILABLE' },
];

describe('pool errors: one mapping to every face', () => {
  it.each(KINDS)('$error.name ($error.code): the bridge replies $reply.status, tRPC says $rpc', ({ error, reply, rpc }) => {
    expect(replyForError(error, 'qa')).toEqual(reply);
    expect(rpcCodeOf(error)).toBe(rpc);
  });

  it.each(KINDS)('$error.name ($error.code) comes back from the socket\'s data as the same typed error', ({ error }) => {
    const data = JSON.parse(JSON.stringify(poolErrorData(error)));
    const rebuilt = poolErrorFromData(data, error.message);
    expect(rebuilt).toBeInstanceOf(error.constructor);
    expect(rebuilt).toEqual(error);
    expect(rebuilt?.message).toBe(error.message);
  });

  it('anything that is not a pool error has no reply, no data, and no rebuild', () => {
    expect(replyForError(new TypeError('boom'), 'qa')).toBeUndefined();
    expect(poolErrorData(new TypeError('boom'))).toBeNull();
    expect(poolErrorFromData({ code: 'toString' }, 'x')).toBeUndefined();
    expect(poolErrorFromData(null, 'x')).toBeUndefined();
  });
});

import { describe, expect, it } from 'vitest';
import { AgentName, EventsInput, HeartbeatInput, RequestInput, RequestReply, formatWireTime, parseDuration, parseWireTime } from '../../src/contract/index.js';

describe('the agent name rule', () => {
  it.each(['ceo', 'software-engineer', 'a', 'A1.b_c-d', '9lives', 'x'.repeat(255)])('accepts %j', (name) => {
    expect(AgentName.safeParse(name).success).toBe(true);
  });
  it.each(['', '-ceo', '.hidden', '_x', 'has space', 'semi;colon', 'slash/x', 'x'.repeat(256), 'ünïcode', 'ceo\n'])('rejects %j', (name) => {
    expect(AgentName.safeParse(name).success).toBe(false);
  });
});

describe('request bodies', () => {
  it('defaults requested_by to "api"', () => {
    expect(RequestInput.parse({ agent: 'cfo' })).toEqual({ agent: 'cfo', requested_by: 'api' });
  });
  it.each([
    { body: {}, message: 'agent field required' },
    { body: { agent: 7 }, message: 'agent must be a string' },
    { body: { agent: 'bad name' }, message: 'invalid agent name "bad name"' },
    { body: { agent: 'cfo', requested_by: 'a b' }, message: 'invalid requested_by' },
    { body: { agent: 'cfo', wait_seconds: '5' }, message: 'wait_seconds must be a number' },
    { body: { agent: 'cfo', wait_seconds: -1 }, message: 'wait_seconds must be at least 0' },
  ])('explains what is wrong with $body', ({ body, message }) => {
    const result = RequestInput.safeParse(body);
    expect(result.success).toBe(false);
    expect(result.error?.issues[0]?.message).toContain(message);
  });
  it('applies the same name rule to heartbeats', () => {
    expect(HeartbeatInput.safeParse({ agent: '../etc' }).success).toBe(false);
  });
});

describe('replies', () => {
  it.each([
    { status: 'started', agent: 'cfo' },
    { status: 'started', agent: 'cfo', evicted: 'software-engineer' },
    { status: 'already_running', agent: 'cfo' },
    { status: 'pool_full', error: 'all agents recently active, try again later' },
    { status: 'unknown_agent', agent: 'x', error: 'unknown agent', known: ['ceo'] },
    { status: 'forbidden', agent: 'gateway', error: 'infrastructure service' },
    { status: 'error', agent: 'cfo', error: 'no such image' },
  ])('accepts the SPEC example %j', (reply) => {
    expect(RequestReply.parse(reply)).toEqual(reply);
  });
});

describe('wire times', () => {
  it('formats ISO 8601 UTC with a Z at second precision', () => {
    expect(formatWireTime(Date.UTC(2026, 1, 28, 5, 17, 4, 999))).toBe('2026-02-28T05:17:04Z');
  });
  it.each([
    ['2026-02-28T05:17:04Z', Date.UTC(2026, 1, 28, 5, 17, 4)],
    ['2026-02-28T05:17:04.250Z', Date.UTC(2026, 1, 28, 5, 17, 4, 250)],
    ['2026-02-28T06:17:04+01:00', Date.UTC(2026, 1, 28, 5, 17, 4)],
    ['2026-02-28 05:17:04', undefined],
    ['yesterday', undefined],
    ['2026-02-30T05:17:04Z', undefined],
    ['2026-02-28T24:00:00Z', undefined],
  ])('parses %j', (text, expected) => {
    expect(parseWireTime(text)).toBe(expected);
  });
});

describe('durations', () => {
  it.each([
    ['30s', 30_000],
    ['5m', 300_000],
    ['1h30m', 5_400_000],
    ['2d', 172_800_000],
    ['250ms', 250],
    ['1.5h', 5_400_000],
    ['45', 45_000],
    [' 10m ', 600_000],
    ['0s', 0],
    ['', undefined],
    ['-5m', undefined],
    ['5 minutes', undefined],
    ['1w', undefined],
    ['m', undefined],
    ['1h 30m', undefined],
  ])('parses %j', (text, expected) => {
    expect(parseDuration(text)).toBe(expected);
  });
});

describe('event log queries', () => {
  it('take strings from a query string, with a default limit', () => {
    expect(EventsInput.parse({ agent: 'cfo', limit: '20', since: '2026-02-28T05:17:04Z' })).toEqual({ agent: 'cfo', limit: 20, since: '2026-02-28T05:17:04Z' });
    expect(EventsInput.parse({})).toEqual({ limit: 100 });
  });
  it.each([
    [{ since: 'yesterday' }, 'since must be an ISO 8601 time'],
    [{ limit: '0' }, 'limit must be at least 1'],
    [{ limit: 'all' }, 'limit must be a number'],
    [{ limit: '1.5' }, 'limit must be a whole number'],
    [{ agent: '../etc' }, 'agent'],
  ])('refuse %j', (input, message) => {
    const result = EventsInput.safeParse(input);
    expect(result.success).toBe(false);
    expect(result.error?.issues.map((i) => i.message).join(' ')).toContain(message);
  });
});

describe('heartbeats', () => {
  it('may carry a busy hold, within bounds', () => {
    expect(HeartbeatInput.parse({ agent: 'cfo', busy_seconds: 600 })).toEqual({ agent: 'cfo', busy_seconds: 600 });
    expect(HeartbeatInput.safeParse({ agent: 'cfo', busy_seconds: -1 }).success).toBe(false);
    expect(HeartbeatInput.safeParse({ agent: 'cfo', busy_seconds: 86_401 }).success).toBe(false);
    expect(HeartbeatInput.safeParse({ agent: 'cfo', busy_seconds: '600' }).success).toBe(false);
  });
  it('may say the agent is working (heartbeat --active), and the SPEC shape without it stays valid', () => {
    expect(HeartbeatInput.parse({ agent: 'cfo', active: true })).toEqual({ agent: 'cfo', active: true });
    expect(HeartbeatInput.parse({ agent: 'cfo' })).toEqual({ agent: 'cfo' });
    expect(HeartbeatInput.safeParse({ agent: 'cfo', active: 'yes' }).error?.issues[0]?.message).toBe('active must be true or false');
  });
});

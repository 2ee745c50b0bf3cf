import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { AgentView, PoolEvent, StatusReply } from '../../src/contract/index.js';
import { sseFrame } from '../../src/bridge/live.js';
import { notIn } from '../../src/text/event.js';
import { contentSecurityPolicy, loadStatusPage, pageUnavailableReply } from '../../src/bridge/page.js';
import { ago, left } from '../../src/text/relative-time.js';
import {
  agentRows,
  connectionText,
  evictability,
  queueRows,
  showsNodes,
  slotSegments,
  slotSummary,
  timelineItems,
  timeOfDay,
} from '../../src/ui/view.js';
import { NOW } from '../support/builders.js';
import { useTempDir } from '../support/tmp.js';

const at = (secondsFromNow: number) => new Date(NOW + secondsFromNow * 1000).toISOString().replace(/\.\d+Z$/, 'Z');

function agent(overrides: Partial<AgentView> = {}): AgentView {
  return { id: 'cfo', started: at(-600), last_active: at(-30), requested_by: 'ceo', state: 'running', protection: null, ...overrides };
}

function status(running: AgentView[], slots_total = 4, queue: StatusReply['queue'] = []): StatusReply {
  const used = running.length;
  return { running, slots_total, slots_free: Math.max(0, slots_total - used), queue };
}

const event = (secondsFromNow: number, type: PoolEvent['type'], extra: Partial<PoolEvent> = {}): PoolEvent => ({
  time: at(secondsFromNow),
  type,
  agent: 'cto',
  by: 'ceo',
  ...extra,
});

describe('ago: how long ago, as poolctl and the page say it', () => {
  it.each([
    [0, 'just now'],
    [4, 'just now'],
    [5, '5s ago'],
    [59, '59s ago'],
    [60, '1m ago'],
    [3599, '59m ago'],
    [3600, '1h ago'],
    [86_399, '23h ago'],
    [86_400, '1d ago'],
    [-30, 'just now'],
  ])('%i s before now reads %s', (seconds, text) => {
    expect(ago(at(-seconds), NOW)).toBe(text);
  });
});

describe('the slot bar', () => {
  it.each([
    { what: 'an empty pool', running: [], total: 3, segments: [{ kind: 'free', count: 3 }], summary: '3 slots: 0 running, 0 starting, 0 stopping, 3 free' },
    {
      what: 'every state',
      running: [agent({ id: 'a' }), agent({ id: 'b' }), agent({ id: 'c', state: 'starting' }), agent({ id: 'd', state: 'stopping' })],
      total: 5,
      segments: [
        { kind: 'running', count: 2 },
        { kind: 'starting', count: 1 },
        { kind: 'stopping', count: 1 },
        { kind: 'free', count: 1 },
      ],
      summary: '5 slots: 2 running, 1 starting, 1 stopping, 1 free',
    },
    {
      what: 'an unresponsive agent, which holds its slot like a running one',
      running: [agent({ id: 'a' }), agent({ id: 'b', state: 'unresponsive' })],
      total: 3,
      segments: [
        { kind: 'running', count: 2 },
        { kind: 'free', count: 1 },
      ],
      summary: '3 slots: 2 running, 0 starting, 0 stopping, 1 free',
    },
    {
      what: 'a full pool (no free segment drawn)',
      running: [agent({ id: 'a' }), agent({ id: 'b', state: 'starting' })],
      total: 2,
      segments: [
        { kind: 'running', count: 1 },
        { kind: 'starting', count: 1 },
      ],
      summary: '2 slots: 1 running, 1 starting, 0 stopping, 0 free',
    },
  ])('$what', ({ running, total, segments, summary }) => {
    const s = status(running as AgentView[], total);
    expect(slotSegments(s)).toEqual(segments);
    expect(slotSummary(s)).toBe(summary);
  });
});

describe('evictability: whether the pool may stop an agent for another, and why not', () => {
  it.each<[string, Partial<AgentView>, string]>([
    ['unprotected', { protection: null }, 'evictable now'],
    ['in its grace period', { protection: 'grace', protected_until: at(30) }, 'protected: grace until 05:17:34'],
    ['in grace, the end not given', { protection: 'grace' }, 'protected: grace'],
    ['pinned', { protection: 'pinned' }, 'protected: pinned'],
    ['on a busy hold, until the later of its hold and its grace', { protection: 'busy', busy_until: at(600), protected_until: at(600) }, 'protected: busy hold until 05:27:04'],
    ['being started', { protection: 'starting', state: 'starting' }, 'protected: starting'],
    ['being stopped', { protection: 'stopping', state: 'stopping' }, 'protected: stopping'],
    ['the agent a request is for', { protection: 'requested' }, 'protected: being requested'],
  ])('%s', (_what, overrides, text) => {
    expect(evictability(agent(overrides), 'UTC')).toBe(text);
  });

  it('gives times of day in the viewer’s zone', () => {
    expect(timeOfDay(at(0), 'UTC')).toBe('05:17:04');
    expect(timeOfDay(at(0), 'Asia/Kolkata')).toBe('10:47:04');
  });
});

describe('agent rows', () => {
  it('say each agent’s memory now, its peak and what the budget counts it at', () => {
    const [row] = agentRows(status([agent({ memory_bytes: 61 * 1024 ** 2, memory_peak_bytes: 62 * 1024 ** 2, memory_expected_bytes: 62 * 1024 ** 2 })]), NOW, 'UTC');
    expect(row?.memory).toBe('61 MiB / 62 MiB / 62 MiB');
  });

  it('say state, node, relative times with exact ones beside them, who asked, and evictability', () => {
    const rows = agentRows(status([agent({ protection: 'grace', protected_until: at(30), node: 'vps-2' })]), NOW, 'UTC');
    expect(rows).toEqual([
      {
        id: 'cfo',
        state: 'running',
        node: 'vps-2',
        started: '10m ago',
        lastActive: '30s ago',
        startedAt: at(-600),
        lastActiveAt: at(-30),
        requestedBy: 'ceo',
        evictable: 'protected: grace until 05:17:34',
        protected: true,
        memory: '- / - / -',
      },
    ]);
  });

  it.each([
    { what: 'no agent has a node', running: [agent(), agent({ id: 'cto' })], shows: false },
    { what: 'one agent has a node', running: [agent(), agent({ id: 'cto', node: 'vps-2' })], shows: true },
    { what: 'nobody runs', running: [], shows: false },
  ])('show the node column only when it says something: $what → $shows', ({ running, shows }) => {
    expect(showsNodes(status(running))).toBe(shows);
  });
});

describe('the wait queue', () => {
  it.each([
    [45, '45s'],
    [60, '1m'],
    [7200, '2h'],
    [0, '0s'],
    [-5, '0s'],
  ])('a deadline %i s away is %s left', (seconds, text) => {
    expect(left(at(seconds), NOW)).toBe(text);
  });

  it('lists requests first served first, with how long they waited and when they give up', () => {
    const queue = [
      { agent: 'qa', requested_by: 'ceo', since: at(-12), deadline: at(48), waiters: 1 },
      { agent: 'legal', requested_by: 'cfo', since: at(-3), deadline: at(297), waiters: 2 },
    ];
    expect(queueRows(queue, NOW)).toEqual([
      { agent: 'qa', requestedBy: 'ceo', waiting: 'since 12s ago', deadline: 'gives up in 48s', waiters: '1' },
      { agent: 'legal', requestedBy: 'cfo', waiting: 'since just now', deadline: 'gives up in 4m', waiters: '2' },
    ]);
  });
});

describe('the timeline', () => {
  it('shows the last hour newest first, each event as the daemon logs it', () => {
    const events = [
      event(-3700, 'started', { agent: 'old' }),
      event(-120, 'started', { agent: 'cfo' }),
      event(-60, 'evicted', { agent: 'cto', for: 'designer', reason: 'least recently active' }),
      event(-10, 'lost', { agent: 'qa', by: 'reconcile', reason: 'container gone' }),
    ];
    expect(timelineItems(events, NOW, 'UTC')).toEqual([
      { at: at(-10), time: '05:16:54', type: 'lost', text: 'lost qa (by reconcile; container gone)' },
      { at: at(-60), time: '05:16:04', type: 'evicted', text: 'evicted cto for designer (by ceo; least recently active)' },
      { at: at(-120), time: '05:15:04', type: 'started', text: 'started cfo (by ceo)' },
    ]);
  });

  it('keeps at most the newest 100', () => {
    const events = Array.from({ length: 150 }, (_, i) => event(-150 + i, 'started', { agent: `a${i}` }));
    const items = timelineItems(events, NOW, 'UTC');
    expect(items).toHaveLength(100);
    expect(items[0]?.text).toBe('started a149 (by ceo)');
    expect(items.at(-1)?.text).toBe('started a50 (by ceo)');
  });
});

describe('the connection line', () => {
  it.each([
    ['connecting', 'Connecting to the pool…'],
    ['live', 'Live: updates as they happen'],
    ['polling', 'Live stream unavailable: polling every second'],
    ['offline', 'Daemon unreachable: retrying every second'],
  ] as const)('%s reads %s', (connection, text) => {
    expect(connectionText(connection)).toBe(text);
  });
});

describe('server-sent event frames', () => {
  it.each([
    ['status', '{"a":1}', 'event: status\ndata: {"a":1}\n\n'],
    ['note', 'two\nlines', 'event: note\ndata: two\ndata: lines\n\n'],
    ['note', 'cr\r\nlf\rcr', 'event: note\ndata: cr\ndata: lf\ndata: cr\n\n'],
    ['empty', '', 'event: empty\ndata: \n\n'],
  ])('%s %j', (name, data, frame) => {
    expect(sseFrame(name, data)).toBe(frame);
  });
});

describe('notIn: live events a new stream still has to send after its history', () => {
  const a = event(-3, 'started', { agent: 'a' });
  const b = event(-2, 'started', { agent: 'b' });
  const c = event(-1, 'released', { agent: 'a' });
  it.each([
    { what: 'nothing overlaps', history: [a], live: [b, c], sent: [b, c] },
    { what: 'the queue starts with the end of the history', history: [a, b], live: [b, c], sent: [c] },
    { what: 'the whole queue is in the history', history: [a, b, c], live: [b, c], sent: [] },
    { what: 'an identical event after the overlap is new', history: [a], live: [a, b, a], sent: [b, a] },
    { what: 'an empty history', history: [], live: [a, a], sent: [a, a] },
  ])('$what', ({ history, live, sent }) => {
    const isNew = notIn(history);
    expect(live.filter(isNew)).toEqual(sent);
  });
});

describe('the status page reply', () => {
  const tempDir = useTempDir();
  const hash = (text: string) => `'sha256-${createHash('sha256').update(text).digest('base64')}'`;

  it.each([
    {
      what: 'one script and one style',
      html: '<style>b{}</style><script>go()</script>',
      script: hash('go()'),
      style: hash('b{}'),
    },
    { what: 'two scripts', html: '<script>a()</script><p></p><script>b()</script>', script: `${hash('a()')} ${hash('b()')}`, style: "'none'" },
    { what: 'nothing inline', html: '<p>hi</p>', script: "'none'", style: "'none'" },
  ])('allows exactly the inline code of the page by hash: $what', ({ html, script, style }) => {
    expect(contentSecurityPolicy(html)).toBe(
      `default-src 'none'; script-src ${script}; style-src ${style}; connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`,
    );
  });

  it('loads a built page with its length and policy', async () => {
    const file = join(await tempDir(), 'page.html');
    await writeFile(file, '<!doctype html><p>é</p><script>x()</script>');
    const reply = await loadStatusPage(file);
    expect(reply.status).toBe(200);
    expect(reply.headers['Content-Length']).toBe(String(Buffer.byteLength('<!doctype html><p>é</p><script>x()</script>')));
    expect(reply.headers['Content-Security-Policy']).toContain(`script-src ${hash('x()')}`);
  });

  it('says how to fix a page that was not built', async () => {
    const file = join(await tempDir(), 'missing.html');
    await expect(loadStatusPage(file)).rejects.toThrow(`${file} is missing (run npm run build)`);
    const reply = pageUnavailableReply('it is missing');
    expect(reply.status).toBe(503);
    expect(JSON.parse(reply.body.toString())).toEqual({ error: 'status page unavailable: it is missing' });
  });
});

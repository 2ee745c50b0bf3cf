import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type PoolEvent, StatusReply } from '../../src/contract/index.js';
import { LIVE_LIMITS } from '../../src/bridge/live.js';
import { requireDocker } from '../support/docker.js';
import { type TestDaemon, eventually, startTestDaemon } from '../support/daemon.js';
import { type SseConnection, type SseFrame, openSse } from '../support/sse.js';

const docker = await requireDocker();
const TOKEN = 'page-must-not-show-this';
const auth = { Authorization: `Bearer ${TOKEN}` };

const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('base64');
const statusOf = (frame: SseFrame) => StatusReply.parse(JSON.parse(frame.data ?? ''));
const isStatusWith = (agent: string, state: string) => (frame: SseFrame) =>
  frame.event === 'status' && statusOf(frame).running.some((a) => a.id === agent && a.state === state);
const isPoolEvent = (type: string, agent: string) => (frame: SseFrame) => {
  if (frame.event !== 'pool') return false;
  const event = JSON.parse(frame.data ?? '') as PoolEvent;
  return event.type === type && event.agent === agent;
};

// POOL_TOKEN is set for the whole file: the page and its stream must stay readable without it.
describe.skipIf(!docker)('the status page and its live stream on the bridge', () => {
  let p: TestDaemon;
  const streams: SseConnection[] = [];
  const stream = async () => {
    const s = await openSse(`${p.url}/events/stream`);
    streams.push(s);
    return s;
  };
  beforeAll(async () => {
    p = await startTestDaemon({ env: { POOL_TOKEN: TOKEN } });
    expect(await p.http('POST', '/request', { agent: 'ceo', requested_by: 'ops' }, auth)).toMatchObject({ body: { status: 'started' } });
  });
  afterAll(async () => {
    for (const s of streams) s.close();
    await p?.stop();
  });

  it.each(['/', '/ui', '/ui/', '/?from=bookmark'])('GET %s serves the built page: self-contained HTML under a strict CSP, without the token', async (path) => {
    const reply = await p.http('GET', path);
    expect(reply.status).toBe(200);
    expect(reply.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(reply.headers.get('x-content-type-options')).toBe('nosniff');
    expect(reply.text).toMatch(/^<!doctype html>/);
    expect(reply.text).toContain('<table id="agents">');
    expect(reply.text).not.toContain(TOKEN);
    // Nothing is fetched from elsewhere: no src attribute, no absolute URL in an href.
    expect(reply.text).not.toMatch(/\ssrc=|href="(?!data:)/);
    const script = /<script>([\s\S]*?)<\/script>/.exec(reply.text)?.[1];
    const style = /<style>([\s\S]*?)<\/style>/.exec(reply.text)?.[1];
    expect(script).toContain('/events/stream');
    const policy = reply.headers.get('content-security-policy') ?? '';
    expect(policy.split('; ')).toEqual(
      expect.arrayContaining([
        "default-src 'none'",
        `script-src 'sha256-${sha256(script ?? '')}'`,
        `style-src 'sha256-${sha256(style ?? '')}'`,
        "connect-src 'self'",
        "frame-ancestors 'none'",
      ]),
    );
  });

  it('answers 405 with Allow: GET to a POST on the page or the stream (nothing there changes the pool)', async () => {
    for (const path of ['/', '/ui', '/events/stream']) {
      const reply = await p.http('POST', path, {}, auth);
      expect(reply.status).toBe(405);
      expect(reply.headers.get('allow')).toBe('GET');
    }
  });

  it('opens a stream with the last hour of the log and the current status, without the token', async () => {
    const s = await stream();
    expect(s.status).toBe(200);
    expect(s.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    expect(s.headers['cache-control']).toBe('no-store');
    const history = await s.waitFor((f) => f.event === 'history');
    expect(JSON.parse(history.data ?? '')).toEqual([expect.objectContaining({ type: 'started', agent: 'ceo', by: 'ops' })]);
    const status = await s.waitFor((f) => f.event === 'status');
    expect(statusOf(status).running.map((a) => a.id)).toEqual(['ceo']);
    expect(s.frames.map((f) => f.event ?? (f.retry === undefined ? 'comment' : 'retry'))).toEqual(['retry', 'history', 'status']);
    s.close();
  });

  it('sends each event the log records as it happens, then the new status; transitional ones only as status', async () => {
    const s = await stream();
    await s.waitFor((f) => f.event === 'status');
    expect(await p.http('POST', '/request', { agent: 'cfo', requested_by: 'ceo' }, auth)).toMatchObject({ body: { status: 'started' } });
    const started = await s.waitFor(isPoolEvent('started', 'cfo'), 2000);
    expect(JSON.parse(started.data ?? '')).toMatchObject({ type: 'started', agent: 'cfo', by: 'ceo' });
    await s.waitFor(isStatusWith('cfo', 'running'), 2000);
    // `starting` is progress, not kept in the log: the stream shows it as a status, never as an event.
    expect(s.frames.filter((f) => f.event === 'pool').map((f) => (JSON.parse(f.data ?? '') as PoolEvent).type)).toEqual(['started']);
    expect(s.frames.some(isStatusWith('cfo', 'starting'))).toBe(true);

    expect(await p.http('POST', '/release', { agent: 'cfo', requested_by: 'ops' }, auth)).toMatchObject({ body: { status: 'stopped' } });
    await s.waitFor(isPoolEvent('released', 'cfo'), 2000);
    await s.waitFor((f) => f.event === 'status' && !statusOf(f).running.some((a) => a.id === 'cfo'), 2000);
    s.close();
  });

  it('sends a new status when the pool changes without an event (a heartbeat moves last_active)', async () => {
    const s = await stream();
    const first = statusOf(await s.waitFor((f) => f.event === 'status'));
    p.advance(30);
    expect(await p.http('POST', '/heartbeat', { agent: 'ceo' }, auth)).toMatchObject({ body: { status: 'ok' } });
    const later = await s.waitFor((f) => f.event === 'status' && statusOf(f).running[0]?.last_active !== first.running[0]?.last_active, 3000);
    expect(Date.parse(statusOf(later).running[0]?.last_active ?? '')).toBeGreaterThan(Date.parse(first.running[0]?.last_active ?? ''));
    s.close();
  });

  it(`caps open streams at ${LIVE_LIMITS.maxStreams}: the next gets 503 with a clear error, and a closed stream frees its place`, async () => {
    const open = await Promise.all(Array.from({ length: LIVE_LIMITS.maxStreams }, () => stream()));
    expect(open.every((s) => s.status === 200)).toBe(true);
    const refused = await stream();
    expect(refused.status).toBe(503);
    expect(refused.headers['retry-after']).toBe('5');
    await eventually(() => expect(refused.ended()).toBe(true));
    expect(JSON.parse(refused.body())).toEqual({ error: `too many live streams (${LIVE_LIMITS.maxStreams} open); poll GET /status instead` });
    // The pool itself still answers while the streams are full.
    expect((await p.http('GET', '/status')).status).toBe(200);

    open[0]?.close();
    const again = await eventually(async () => {
      const s = await stream();
      if (s.status !== 200) {
        s.close();
        throw new Error(`still refused: ${s.status}`);
      }
      return s;
    });
    await again.waitFor((f) => f.event === 'status');
    for (const s of open) s.close();
  });
});

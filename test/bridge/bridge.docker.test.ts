import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AvailableReply, EventsReply, HealthReply, StatusReply } from '../../src/contract/index.js';
import { requireDocker } from '../support/docker.js';
import { type TestDaemon, startTestDaemon } from '../support/daemon.js';
import { rawTcp } from '../support/http.js';

const docker = await requireDocker();

describe.skipIf(!docker)('the HTTP bridge: exact shapes and status codes (SPEC §2)', () => {
  let p: TestDaemon;
  beforeAll(async () => {
    p = await startTestDaemon({ env: { MAX_BODY_SIZE: '256' } });
    await p.http('POST', '/request', { agent: 'ceo', requested_by: 'autostart' });
  });
  afterAll(async () => {
    await p?.stop();
  });

  it('GET /status: running agents with ISO times and the slot counts', async () => {
    const reply = await p.http('GET', '/status');
    expect(reply.status).toBe(200);
    expect(reply.headers.get('content-type')).toBe('application/json');
    expect(StatusReply.strict().parse(reply.body)).toEqual({
      running: [
        {
          id: 'ceo',
          started: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/),
          last_active: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/),
          requested_by: 'autostart',
          state: 'running',
          protection: 'grace',
          protected_until: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/),
        },
      ],
      slots_total: 3,
      slots_free: 2,
      queue: [],
    });
  });

  it('GET /events: the event log, filtered by the query string', async () => {
    await p.http('POST', '/request', { agent: 'cfo', requested_by: 'ceo' });
    await p.http('POST', '/release', { agent: 'cfo', requested_by: 'ceo' });
    const reply = await p.http('GET', '/events?agent=cfo&limit=5');
    expect(reply.status).toBe(200);
    expect(EventsReply.strict().parse(reply.body)).toEqual({
      events: [
        // From loopback: the host, whose requested_by is its claim, and the events say so.
        { time: expect.any(String), type: 'started', agent: 'cfo', by: 'ceo', via: 'host' },
        { time: expect.any(String), type: 'released', agent: 'cfo', by: 'ceo', via: 'host' },
      ],
      skipped: 0,
    });
    expect((await p.http('GET', '/events?limit=1')).body).toMatchObject({ events: [{ type: 'released', agent: 'cfo' }] });
    expect(await p.http('GET', '/events?limit=0')).toMatchObject({ status: 400, body: { error: 'limit must be at least 1' } });
    expect(await p.http('GET', '/events?since=yesterday')).toMatchObject({ status: 400, body: { error: expect.stringContaining('since must be an ISO 8601 time') } });
  });

  it('GET /events takes only decimal digits as a limit: 0x10, 1e1 or " 16" is 400 with a sentence, not 16', async () => {
    for (const limit of ['0x10', '1e1', '0b10000', '%2016']) {
      expect(await p.http('GET', `/events?limit=${limit}`)).toMatchObject({ status: 400, body: { error: 'limit must be a number in decimal digits, like 20' } });
    }
    expect(await p.http('GET', '/events?limit=16')).toMatchObject({ status: 200, body: { skipped: 0 } });
  });

  it('GET /available, /health: their exact shapes', async () => {
    expect(AvailableReply.strict().parse((await p.http('GET', '/available')).body)).toEqual({ agents: ['ceo'] });
    const health = await p.http('GET', '/health');
    expect(health.status).toBe(200);
    expect(HealthReply.strict().parse(health.body)).toMatchObject({ status: 'ok', docker: 'ok', version: expect.any(String) });
  });

  it.each(['/status/', '/status?verbose=1', '/available//', '/health/?probe=k8s'])('accepts GET %s', async (path) => {
    expect((await p.http('GET', path)).status).toBe(200);
  });

  it.each([
    { what: 'malformed JSON', body: '{"agent":', error: 'malformed JSON in request body' },
    { what: 'an empty body', body: '', error: 'request body required: a JSON object' },
    { what: 'a JSON array', body: '["cfo"]', error: 'request body must be a JSON object' },
    { what: 'a missing agent', body: '{"requested_by":"ceo"}', error: 'agent field required' },
    { what: 'a number for agent', body: '{"agent":42}', error: 'agent must be a string' },
    { what: 'an invalid name', body: '{"agent":"../etc/passwd"}', error: expect.stringContaining('invalid agent name') },
    { what: 'an invalid requested_by', body: '{"agent":"cfo","requested_by":"a;b"}', error: expect.stringContaining('invalid requested_by') },
    { what: 'a string wait_seconds', body: '{"agent":"cfo","wait_seconds":"5"}', error: 'wait_seconds must be a number' },
  ])('answers 400 to $what', async ({ body, error }) => {
    const reply = await p.http('POST', '/request', body);
    expect(reply).toMatchObject({ status: 400, body: { error } });
    expect(Object.keys(reply.body as object)).toEqual(['error']);
  });

  it('answers 404 to an unknown path', async () => {
    expect(await p.http('GET', '/nope')).toMatchObject({ status: 404, body: { error: 'not found' } });
    expect(await p.http('POST', '/request/extra', { agent: 'ceo' })).toMatchObject({ status: 404 });
  });

  it.each([
    { method: 'GET', path: '/request', allow: 'POST' },
    { method: 'DELETE', path: '/release', allow: 'POST' },
    { method: 'POST', path: '/status', allow: 'GET' },
    { method: 'PUT', path: '/health', allow: 'GET' },
  ])('answers 405 with Allow: $allow to $method $path', async ({ method, path, allow }) => {
    const reply = await p.http(method, path, method === 'GET' ? undefined : '{}');
    expect(reply.status).toBe(405);
    expect(reply.headers.get('allow')).toBe(allow);
  });

  it('answers 413 to a body over MAX_BODY_SIZE by its Content-Length, without reading the rest', async () => {
    const { reply } = await rawTcp(p.url, `POST /request HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"agent":"`);
    expect(reply).toMatch(/^HTTP\/1\.1 413/);
    expect(reply).toMatch(/Connection: close/i);
    expect(reply).toContain('{"error":"request body over 256 bytes"}');
  });

  it('answers 413 to a chunked body that grows past MAX_BODY_SIZE', async () => {
    const chunk = 'a'.repeat(200);
    const body = `c8\r\n${chunk}\r\nc8\r\n${chunk}\r\n0\r\n\r\n`;
    const { reply } = await rawTcp(p.url, `POST /heartbeat HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n${body}`);
    expect(reply).toMatch(/^HTTP\/1\.1 413/);
  });

  it('answers requests from curl-style clients that send no Content-Type', async () => {
    const reply = await p.http('POST', '/heartbeat', '{"agent":"ceo"}', { 'Content-Type': 'application/x-www-form-urlencoded' });
    expect(JSON.parse(reply.text)).toEqual({ status: 'ok' });
  });

  it('serves many requests over one kept-alive connection', async () => {
    const request = 'GET /available HTTP/1.1\r\nHost: x\r\n\r\n';
    const { reply } = await rawTcp(p.url, request.repeat(3), { endAfterMs: 300 });
    expect(reply.match(/HTTP\/1\.1 200/g)).toHaveLength(3);
  });
});

describe.skipIf(!docker)('the HTTP bridge with POOL_TOKEN set', () => {
  let p: TestDaemon;
  beforeAll(async () => {
    p = await startTestDaemon({ env: { POOL_TOKEN: 's3cret token' } });
  });
  afterAll(async () => {
    await p?.stop();
  });

  it.each([
    { what: 'no Authorization header', headers: {} as Record<string, string> },
    { what: 'a wrong token', headers: { Authorization: 'Bearer nope' } },
    { what: 'another scheme', headers: { Authorization: 'Basic czNjcmV0IHRva2Vu' } },
  ])('refuses a POST with $what: 401 and nothing changes', async ({ headers }) => {
    const reply = await p.http('POST', '/request', { agent: 'cfo' }, headers);
    expect(reply.status).toBe(401);
    expect(reply.headers.get('www-authenticate')).toBe('Bearer');
    expect(await p.runningInDocker()).toEqual([]);
  });

  it('accepts a POST with the right bearer token', async () => {
    const reply = await p.http('POST', '/heartbeat', { agent: 'cfo' }, { Authorization: 'Bearer s3cret token' });
    expect(reply).toMatchObject({ status: 200, body: { status: 'ok' } });
  });

  it('keeps GET endpoints open', async () => {
    expect((await p.http('GET', '/status')).status).toBe(200);
  });
});

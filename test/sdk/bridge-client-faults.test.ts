import { http, HttpResponse, delay } from 'msw';
import { setupServer } from 'msw/node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  BridgeHttpError,
  BridgeProtocolError,
  BridgeTimeoutError,
  BridgeUnreachableError,
  createBridgeClient,
} from '../../sdk/index.js';

// msw stands in for what cannot be made real on demand: a network that refuses, stalls or garbles.
const BASE = 'http://pool-manager:19000';
const server = setupServer();
beforeAll(() => server.listen({ onUnhandledRequest: 'error' }));
afterEach(() => server.resetHandlers());
afterAll(() => server.close());

describe('the bridge client under network faults', () => {
  it('returns the typed reply and sends requested_by from AGENT_ID and the bearer token', async () => {
    let seen: { body: unknown; auth: string | null } | undefined;
    server.use(
      http.post(`${BASE}/request`, async ({ request }) => {
        seen = { body: await request.json(), auth: request.headers.get('authorization') };
        return HttpResponse.json({ status: 'started', agent: 'cfo', evicted: 'qa' });
      }),
    );
    const client = createBridgeClient({ baseUrl: BASE, agentId: 'ceo', token: 't0k' });
    expect(await client.request('cfo')).toEqual({ status: 'started', agent: 'cfo', evicted: 'qa' });
    expect(seen).toEqual({ body: { agent: 'cfo', requested_by: 'ceo' }, auth: 'Bearer t0k' });
  });

  it('returns refusals as replies, as the wire has them', async () => {
    server.use(http.post(`${BASE}/request`, () => HttpResponse.json({ status: 'pool_full', error: 'all agents recently active, try again later' })));
    expect(await createBridgeClient({ baseUrl: BASE }).request('cfo')).toEqual({ status: 'pool_full', error: 'all agents recently active, try again later' });
  });

  it('throws BridgeUnreachableError when the connection fails', async () => {
    server.use(http.get(`${BASE}/status`, () => HttpResponse.error()));
    const error = await createBridgeClient({ baseUrl: BASE }).status().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BridgeUnreachableError);
    expect((error as Error).message).toContain('cannot reach the pool manager at http://pool-manager:19000/status');
  });

  it('throws BridgeTimeoutError when the pool manager does not answer in time', async () => {
    server.use(
      http.post(`${BASE}/heartbeat`, async () => {
        await delay('infinite');
        return HttpResponse.json({ status: 'ok' });
      }),
    );
    const started = Date.now();
    await expect(createBridgeClient({ baseUrl: BASE, timeoutMs: 200 }).heartbeat('ceo')).rejects.toBeInstanceOf(BridgeTimeoutError);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('gives a request that may wait for a slot its wait on top of the timeout, and no more', async () => {
    server.use(
      http.post(`${BASE}/request`, async () => {
        await delay(400);
        return HttpResponse.json({ status: 'started', agent: 'cfo', waited_seconds: 0.4 });
      }),
    );
    const client = createBridgeClient({ baseUrl: BASE, timeoutMs: 200 });
    expect(await client.request('cfo', { waitSeconds: 1 })).toEqual({ status: 'started', agent: 'cfo', waited_seconds: 0.4 });
    await expect(client.request('cfo')).rejects.toBeInstanceOf(BridgeTimeoutError);
  });

  it.each([500, 502, 503])('throws BridgeHttpError with the status on a %i', async (status) => {
    server.use(http.get(`${BASE}/health`, () => new HttpResponse('upstream broke', { status })));
    const error = await createBridgeClient({ baseUrl: BASE }).health().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BridgeHttpError);
    expect(error).toMatchObject({ status, body: 'upstream broke' });
  });

  it('carries the bridge’s own message on a protocol error', async () => {
    server.use(http.post(`${BASE}/release`, () => HttpResponse.json({ error: 'invalid agent name "x y"' }, { status: 400 })));
    await expect(createBridgeClient({ baseUrl: BASE }).release('x y')).rejects.toThrow('answered HTTP 400: invalid agent name "x y"');
  });

  it.each([
    { what: 'not JSON', body: '<html>proxy error</html>', reason: 'not JSON' },
    { what: 'JSON of the wrong shape', body: '{"running":"yes"}', reason: '' },
  ])('throws BridgeProtocolError on a 200 whose body is $what', async ({ body, reason }) => {
    server.use(http.get(`${BASE}/status`, () => new HttpResponse(body, { status: 200, headers: { 'Content-Type': 'application/json' } })));
    const error = await createBridgeClient({ baseUrl: BASE }).status().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BridgeProtocolError);
    expect((error as Error).message).toContain(reason);
  });

  it('builds its address from POOL_HOST and POOL_PORT', () => {
    const saved = { host: process.env.POOL_HOST, port: process.env.POOL_PORT };
    process.env.POOL_HOST = 'pool.internal';
    process.env.POOL_PORT = '19001';
    try {
      expect(createBridgeClient().baseUrl).toBe('http://pool.internal:19001');
    } finally {
      if (saved.host === undefined) delete process.env.POOL_HOST;
      else process.env.POOL_HOST = saved.host;
      if (saved.port === undefined) delete process.env.POOL_PORT;
      else process.env.POOL_PORT = saved.port;
    }
  });
});

import { TRPCClientError, createTRPCClient, httpBatchLink, httpLink } from '@trpc/client';
import superjson from 'superjson';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppRouter } from '../../src/rpc/routers/_app.js';
import { socketTransport } from '../../sdk/transport.js';
import { requireDocker } from '../support/docker.js';
import { AGENTS, type TestDaemon, startTestDaemon } from '../support/daemon.js';
import { rawRequest } from '../support/socket.js';

const docker = await requireDocker();

/** A request the way tRPC clients send one: JSON bodies with their content type. */
const raw = (socketPath: string, method: string, path: string, body?: string) =>
  rawRequest(socketPath, method, path, body, body === undefined ? {} : { 'content-type': 'application/json' });

const KNOWN = [...AGENTS].sort();
const errorBody = (message: string, code: number, data: Record<string, unknown>) => JSON.stringify({ error: { json: { message, code, data } } });

describe.skipIf(!docker)('the tRPC wire format on the socket, as stock tRPC clients read it', () => {
  let p: TestDaemon;
  beforeAll(async () => {
    p = await startTestDaemon();
  });
  afterAll(async () => {
    await p?.stop();
  });

  it('answers a query with 200, application/json and the superjson-encoded result', async () => {
    const reply = await raw(p.socketPath, 'GET', '/info.available');
    expect(reply).toMatchObject({ status: 200, headers: { 'content-type': 'application/json', vary: 'trpc-accept, accept' } });
    expect(reply.body).toBe('{"result":{"data":{"json":{"agents":[]}}}}');
  });

  it('sends a single call’s reply in one piece, with a Content-Length, not chunked', async () => {
    const reply = await raw(p.socketPath, 'GET', '/info.status');
    expect(reply.headers['transfer-encoding']).toBeUndefined();
    expect(Number(reply.headers['content-length'])).toBe(Buffer.byteLength(reply.body));
  });

  it('answers a pool error with its tRPC code, HTTP status and the pool data in data.pool', async () => {
    const reply = await raw(p.socketPath, 'POST', '/pool.request', '{"json":{"agent":"janitor"}}');
    expect(reply).toMatchObject({ status: 404, headers: { 'content-type': 'application/json', vary: 'trpc-accept, accept' } });
    expect(reply.body).toBe(
      errorBody(`unknown agent "janitor"; known agents: ${KNOWN.join(', ')}`, -32004, {
        code: 'NOT_FOUND',
        httpStatus: 404,
        path: 'pool.request',
        pool: { code: 'unknown_agent', agent: 'janitor', known: KNOWN },
        issues: null,
      }),
    );
  });

  it('answers an invalid input with BAD_REQUEST, zod’s issues in the message and in data.issues', async () => {
    const reply = await raw(p.socketPath, 'POST', '/pool.request', '{"json":{"agent":"cfo","wait_seconds":"soon"}}');
    expect(reply.status).toBe(400);
    const issues = [{ expected: 'number', code: 'invalid_type', path: ['wait_seconds'], message: 'wait_seconds must be a number' }];
    expect(reply.body).toBe(
      errorBody(JSON.stringify(issues, null, 2), -32600, { code: 'BAD_REQUEST', httpStatus: 400, path: 'pool.request', pool: null, issues: ['wait_seconds must be a number'] }),
    );
  });

  it('answers a body that is not JSON with BAD_REQUEST naming the parse error', async () => {
    const reply = await raw(p.socketPath, 'POST', '/pool.heartbeat', '{');
    expect(reply.status).toBe(400);
    expect(reply.body).toBe(
      errorBody("Expected property name or '}' in JSON at position 1", -32600, { code: 'BAD_REQUEST', httpStatus: 400, path: 'pool.heartbeat', pool: null, issues: null }),
    );
  });

  it.each([
    ['info.status', undefined, undefined],
    ['info.known', undefined, undefined],
    ['pool.heartbeat', '{"json":{"agent":"ceo"}}', '{"0":{"json":{"agent":"ceo"}}}'],
    ['pool.request', '{"json":{"agent":"gateway"}}', '{"0":{"json":{"agent":"gateway"}}}'],
    ['pool.release', '{"json":{"agent":"bad name!"}}', '{"0":{"json":{"agent":"bad name!"}}}'],
    ['pool.request', '[1,', '[1,'],
  ])('answers %s with body %s exactly as tRPC answers the same call in a batch of one', async (path, single, batch) => {
    const method = single === undefined ? 'GET' : 'POST';
    const alone = await raw(p.socketPath, method, `/${path}`, single);
    const batched = await raw(p.socketPath, method, `/${path}?batch=1`, batch);
    expect(alone.status).toBe(batched.status);
    expect(alone.headers['content-type']).toBe(batched.headers['content-type']);
    expect(`[${alone.body}]`).toBe(batched.body);
  });

  it('serves a stock tRPC client (httpLink and httpBatchLink over fetch): replies and errors as before', async () => {
    const transport = socketTransport(p.socketPath);
    try {
      for (const link of [httpLink, httpBatchLink]) {
        const trpc = createTRPCClient<AppRouter>({ links: [link({ url: 'http://localhost', transformer: superjson, fetch: transport.fetch })] });
        expect(await trpc.info.status.query()).toEqual(await p.client.status());
        expect(await trpc.pool.heartbeat.mutate({ agent: 'ceo' })).toEqual({ status: 'ok' });
        const unknown = await trpc.pool.request.mutate({ agent: 'janitor' }).catch((e: unknown) => e);
        expect(unknown).toBeInstanceOf(TRPCClientError);
        expect((unknown as TRPCClientError<AppRouter>).data).toMatchObject({ code: 'NOT_FOUND', httpStatus: 404, pool: { code: 'unknown_agent', known: KNOWN } });
        const invalid = await trpc.pool.request.mutate({ agent: 'bad name!' }).catch((e: unknown) => e);
        expect((invalid as TRPCClientError<AppRouter>).data).toMatchObject({ code: 'BAD_REQUEST', issues: [expect.stringContaining('invalid agent name')] });
      }
    } finally {
      transport.close();
    }
  });

  it('streams pool events to the SDK over the same socket', async () => {
    const abort = new AbortController();
    let connected!: () => void;
    const subscribed = new Promise<void>((resolve) => (connected = resolve));
    const first = (async () => {
      for await (const event of p.client.events({ signal: abort.signal, onConnected: connected })) return event;
      return undefined;
    })();
    await subscribed;
    await p.client.request('cfo', { requestedBy: 'wire-test' });
    expect(await first).toMatchObject({ agent: 'cfo' });
    abort.abort();
    await p.client.release('cfo');
  });
});

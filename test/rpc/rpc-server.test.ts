import { type Server, request } from 'node:http';
import { join } from 'node:path';
import { TRPCError, initTRPC } from '@trpc/server';
import { createHTTPServer } from '@trpc/server/adapters/standalone';
import superjson from 'superjson';
import { afterEach, describe, expect, it } from 'vitest';
import * as z from 'zod';
import { createRpcServer } from '../../src/rpc/server.js';
import { rawRequest } from '../support/socket.js';
import { useTempDir } from '../support/tmp.js';

// A small router with what the socket's router has: superjson, an errorFormatter adding data,
// zod inputs, typed and untyped errors, and a procedure that waits on its abort signal.
const t = initTRPC.context<{ user: string }>().create({
  transformer: superjson,
  errorFormatter: ({ shape, error }) => ({ ...shape, data: { ...shape.data, cause: error.cause?.name ?? null } }),
});
const hangs: string[] = [];
const router = t.router({
  echo: t.procedure.input(z.object({ at: z.date(), tags: z.set(z.string()) })).query(({ input, ctx }) => ({ ...input, user: ctx.user })),
  hello: t.procedure.query(({ ctx }) => `hello ${ctx.user}`),
  add: t.procedure.input(z.object({ a: z.number(), b: z.number() })).mutation(({ input }) => input.a + input.b),
  refuse: t.procedure.mutation(() => {
    throw new TRPCError({ code: 'CONFLICT', message: 'full', cause: new RangeError('no slot') });
  }),
  crash: t.procedure.mutation(() => {
    throw new Error('bug');
  }),
  hang: t.procedure.query(({ signal }) => {
    hangs.push('called');
    return new Promise((resolve) =>
      signal?.addEventListener('abort', () => {
        hangs.push('aborted');
        resolve(null);
      }),
    );
  }),
});

const tempDir = useTempDir();
const servers: Server[] = [];
afterEach(() => {
  for (const server of servers.splice(0)) {
    server.close();
    server.closeAllConnections();
  }
});

async function listen(server: Server): Promise<string> {
  const socketPath = join(await tempDir(), 's.sock');
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  return socketPath;
}

/** The same router behind createRpcServer and behind tRPC's standalone adapter, each on its own socket. */
async function both() {
  const errors: { road: string; code: string; path: string | undefined }[] = [];
  const createContext = async () => ({ user: 'ann' });
  const ours = await listen(createRpcServer({ router, createContext, onError: (error, path) => errors.push({ road: 'ours', code: error.code, path }) }));
  const stock = await listen(createHTTPServer({ router, createContext, onError: ({ error, path }) => errors.push({ road: 'stock', code: error.code, path }) }));
  return { ours, stock, errors };
}

/** The reply, with how its body was framed: `chunked`, `length` (a Content-Length) or `none`. */
async function raw(socketPath: string, method: string, path: string, body?: string | Buffer, headers: Record<string, string> = {}) {
  const reply = await rawRequest(socketPath, method, path, body, headers);
  const framing = reply.headers['transfer-encoding'] ?? (reply.headers['content-length'] === undefined ? 'none' : 'length');
  return { framing, status: reply.status, contentType: reply.headers['content-type'], vary: reply.headers.vary, body: reply.body };
}

const q = (input: unknown) => `input=${encodeURIComponent(JSON.stringify(superjson.serialize(input)))}`;
const json = { 'content-type': 'application/json' };

describe('createRpcServer: single calls answered exactly as tRPC’s own handler answers them', () => {
  it.each<[string, string, string, (string | Buffer)?, Record<string, string>?]>([
    ['a query with superjson input', 'GET', `/echo?${q({ at: new Date(0), tags: new Set(['x']) })}`],
    ['a query without input', 'GET', '/hello'],
    ['a query with an input it does not take', 'GET', `/hello?${q(undefined)}`],
    ['a query missing its input', 'GET', '/echo'],
    ['a query whose input is not JSON', 'GET', '/echo?input=%7B'],
    ['a query whose input fails the schema', 'GET', `/echo?${q({ at: 'yesterday', tags: [] })}`],
    ['a mutation', 'POST', '/add', JSON.stringify(superjson.serialize({ a: 1, b: 2 })), json],
    ['a mutation with a charset in its content type', 'POST', '/add', '{"json":{"a":1,"b":2}}', { 'content-type': 'Application/JSON; charset=utf-8' }],
    ['a mutation whose body starts with a byte order mark', 'POST', '/add', Buffer.from('\uFEFF{"json":{"a":1,"b":2}}'), json],
    ['a mutation with an empty body', 'POST', '/add', '', json],
    ['a mutation whose body is not JSON', 'POST', '/add', '{"json":', json],
    ['a mutation throwing a TRPCError with a cause', 'POST', '/refuse', '', json],
    ['a mutation throwing a plain Error', 'POST', '/crash', '', json],
  ])('%s', async (_what, method, path, body, headers) => {
    const { ours, stock, errors } = await both();
    const [a, b] = [await raw(ours, method, path, body, headers), await raw(stock, method, path, body, headers)];
    expect({ ...a, framing: 'any' }).toEqual({ ...b, framing: 'any' });
    expect(a.contentType).toBe('application/json');
    // The short road took it: one piece with a Content-Length where tRPC's handler streams chunks.
    expect([a.framing, b.framing]).toEqual(['length', 'chunked']);
    // Both roads report the same errors, with the procedure's path.
    expect(errors.filter((e) => e.road === 'ours').map(({ code, path }) => ({ code, path }))).toEqual(
      errors.filter((e) => e.road === 'stock').map(({ code, path }) => ({ code, path })),
    );
  });

  it.each<[string, string, string, string?, Record<string, string>?]>([
    ['a batch', 'GET', `/hello?batch=1&${q({})}`],
    ['a mutation sent by GET', 'GET', '/add'],
    ['a query sent by POST', 'POST', '/hello', '', json],
    ['a mutation without a content type', 'POST', '/add', '{"json":{"a":1,"b":2}}'],
    ['an unknown procedure', 'GET', '/nope'],
    ['a path with a trailing slash', 'GET', '/hello/'],
    ['a streaming request', 'GET', `/hello?batch=1&${q({})}`, undefined, { 'trpc-accept': 'application/jsonl' }],
    ['a HEAD request', 'HEAD', '/hello'],
  ])('leaves %s to tRPC’s handler', async (_what, method, path, body, headers) => {
    const { ours, stock } = await both();
    expect(await raw(ours, method, path, body, headers)).toEqual(await raw(stock, method, path, body, headers));
  });

  it('aborts a procedure’s signal when its client goes away before the reply', async () => {
    const { ours } = await both();
    hangs.length = 0;
    const req = request({ socketPath: ours, path: '/hang' });
    req.once('error', () => {});
    req.end();
    await expect.poll(() => hangs).toEqual(['called']);
    req.destroy();
    await expect.poll(() => hangs).toEqual(['called', 'aborted']);
  });
});

import { type IncomingMessage, type ServerResponse, createServer } from 'node:http';
import { join } from 'node:path';
import { type TRPCLink, createTRPCUntypedClient, httpLink } from '@trpc/client';
import superjson from 'superjson';
import { afterEach, describe, expect, it } from 'vitest';
import { DaemonUnreachableError, createPoolClient } from '../../sdk/index.js';
import { socketLink } from '../../sdk/link.js';
import { socketTransport } from '../../sdk/transport.js';
import type { AppRouter } from '../../src/rpc/routers/_app.js';
import { useTempDir } from '../support/tmp.js';

interface Seen {
  method: string | undefined;
  url: string | undefined;
  contentType: string | undefined;
  body: string;
}

const tempDir = useTempDir();
const closers: (() => void)[] = [];
afterEach(() => {
  for (const close of closers.splice(0)) close();
});

/** A real HTTP server on a Unix socket that records what it is sent and answers `reply`. */
async function socketServer(reply: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ socketPath: string; seen: Seen[] }> {
  const socketPath = join(await tempDir(), 's.sock');
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (body += chunk));
    req.once('end', () => {
      seen.push({ method: req.method, url: req.url, contentType: req.headers['content-type'], body });
      reply(req, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  closers.push(() => {
    server.close();
    server.closeAllConnections();
  });
  return { socketPath, seen };
}

const answer = (text: string, status = 200) => (_req: IncomingMessage, res: ServerResponse) => res.writeHead(status, { 'content-type': 'application/json' }).end(text);

/** The same untyped client over the SDK's link and over a stock httpLink on the same socket. */
function clients(socketPath: string) {
  const transport = socketTransport(socketPath);
  closers.push(transport.close);
  const stock = httpLink({ url: 'http://localhost', transformer: superjson, fetch: transport.fetch }) as TRPCLink<AppRouter>;
  return { sdk: createTRPCUntypedClient<AppRouter>({ links: [socketLink(socketPath, transport.agent)] }), stock: createTRPCUntypedClient<AppRouter>({ links: [stock] }) };
}

describe('the SDK’s socket link, against a stock httpLink on the same socket', () => {
  it('sends queries and mutations exactly as httpLink does: path, method, content type, superjson input', async () => {
    const { socketPath, seen } = await socketServer(answer('{"result":{"data":{"json":{"status":"ok"}}}}'));
    const { sdk, stock } = clients(socketPath);
    const calls = [
      (c: typeof sdk) => c.query('info.status', undefined),
      (c: typeof sdk) => c.query('info.status', { since: new Date(0), tags: new Set(['a b&c']) }),
      (c: typeof sdk) => c.mutation('pool.request', { agent: 'cfo', requested_by: 'ceo', wait_seconds: 5 }),
      (c: typeof sdk) => c.mutation('admin.shutdown', undefined),
    ];
    for (const call of calls) {
      expect(await call(sdk)).toEqual({ status: 'ok' });
      expect(await call(stock)).toEqual({ status: 'ok' });
      const [viaSdk, viaStock] = seen.splice(0);
      expect(viaSdk).toEqual(viaStock);
    }
  });

  it('decodes superjson data as httpLink does', async () => {
    const data = superjson.serialize({ at: new Date(0), ids: new Set([1, 2]) });
    const { socketPath } = await socketServer(answer(JSON.stringify({ result: { data } })));
    const { sdk, stock } = clients(socketPath);
    const viaSdk = await sdk.query('info.status', undefined);
    expect(viaSdk).toEqual(await stock.query('info.status', undefined));
    expect(viaSdk).toEqual({ at: new Date(0), ids: new Set([1, 2]) });
  });

  it.each([
    ['a tRPC error reply', '{"error":{"json":{"message":"nope","code":-32004,"data":{"code":"NOT_FOUND","httpStatus":404,"pool":null}}}}', 404],
    ['a body that is not JSON', '<html>bad gateway</html>', 502],
    ['JSON that is not a tRPC reply', '{"status":"ok"}', 200],
    ['null', 'null', 200],
    ['an error without a numeric code', '{"error":{"json":{"message":"x"}}}', 500],
    ['an error that superjson cannot read', '{"error":null}', 500],
  ])('rejects %s with the same TRPCClientError message, shape and data as httpLink', async (_what, text, status) => {
    const { socketPath } = await socketServer(answer(text, status));
    const { sdk, stock } = clients(socketPath);
    const viaSdk = await sdk.query('info.status', undefined).catch((e: unknown) => e);
    const viaStock = await stock.query('info.status', undefined).catch((e: unknown) => e);
    expect(viaSdk).toMatchObject({ name: 'TRPCClientError', message: (viaStock as Error).message });
    expect(viaSdk).toMatchObject({ shape: (viaStock as { shape: unknown }).shape, data: (viaStock as { data: unknown }).data });
  });

  it('rejects a call whose connection drops before the reply, and the next call gets through', async () => {
    let calls = 0;
    const { socketPath } = await socketServer((req, res) => (++calls === 1 ? req.socket.destroy() : answer('{"result":{"data":{"json":1}}}')(req, res)));
    const { sdk } = clients(socketPath);
    await expect(sdk.query('info.status', undefined)).rejects.toMatchObject({ name: 'TRPCClientError', message: 'socket hang up' });
    expect(await sdk.query('info.status', undefined)).toBe(1);
  });

  it('throws DaemonUnreachableError when nothing listens on the socket', async () => {
    const client = createPoolClient({ socketPath: join(await tempDir(), 'absent.sock') });
    await expect(client.status()).rejects.toBeInstanceOf(DaemonUnreachableError);
    client.close();
  });
});

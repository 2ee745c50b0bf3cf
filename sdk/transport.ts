import { Agent, request as httpRequest } from 'node:http';
import { Readable } from 'node:stream';

/**
 * A `fetch` over a Unix socket with a keep-alive agent, built on node:http: tRPC's client needs
 * only this, and it keeps undici (≈300 ms of start-up) off the CLI's path.
 */
export function socketFetch(socketPath: string): { fetch: typeof fetch; close: () => void } {
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const fetchOverSocket = (input: string | URL | Request, init: RequestInit = {}): Promise<Response> =>
    new Promise((resolve, reject) => {
      const url = new URL(typeof input === 'string' || input instanceof URL ? input : input.url);
      const headers = Object.fromEntries(new Headers(init.headers).entries());
      const req = httpRequest(
        { socketPath, agent, path: `${url.pathname}${url.search}`, method: init.method ?? 'GET', headers, signal: init.signal ?? undefined },
        (res) => {
          const responseHeaders = new Headers();
          for (const [name, value] of Object.entries(res.headers)) {
            for (const v of Array.isArray(value) ? value : value === undefined ? [] : [value]) responseHeaders.append(name, v);
          }
          const status = res.statusCode ?? 502;
          const init = { status, statusText: res.statusMessage ?? '', headers: responseHeaders };
          if (status === 204 || status === 304) {
            res.resume();
            resolve(new Response(null, init));
            return;
          }
          // Streamed replies (subscriptions) are handed over as they arrive, not buffered.
          if (String(res.headers['content-type'] ?? '').startsWith('text/event-stream')) {
            resolve(new Response(Readable.toWeb(res) as ReadableStream<Uint8Array>, init));
            return;
          }
          // Any other reply is read whole first: a web stream per call costs more than the round trip it carries.
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.once('end', () => resolve(new Response(Buffer.concat(chunks), init)));
          res.once('error', reject);
        },
      );
      req.once('error', reject);
      if (init.body !== undefined && init.body !== null) req.write(init.body as string | Uint8Array);
      req.end();
    });
  return { fetch: fetchOverSocket as typeof fetch, close: () => agent.destroy() };
}

import { Agent, type AgentOptions, request as httpRequest } from 'node:http';
import { Readable } from 'node:stream';

/**
 * The SDK's connections to the daemon: one keep-alive agent on the Unix socket, shared by the
 * calls (socketLink) and by the `fetch` that tRPC's subscription link reads event streams through.
 * Built on node:http: it keeps undici (≈300 ms of start-up) off the CLI's path.
 */
export function socketTransport(socketPath: string): { agent: Agent; fetch: typeof fetch; close: () => void } {
  // A Unix socket has no TLS, yet http.Agent derives a TLS servername from the Host header unless
  // one is given, and its IP check compiles a large IPv6 regular expression: ≈ 9 ms of poolctl's
  // cold start. (`servername` is an https option, hence outside http's AgentOptions type.)
  const options: AgentOptions & { servername: string } = { keepAlive: true, maxSockets: 64, servername: '' };
  const agent = new Agent(options);
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
          // Handed over as it arrives: an event stream never ends by itself.
          resolve(new Response(Readable.toWeb(res) as ReadableStream<Uint8Array>, init));
        },
      );
      req.once('error', reject);
      if (init.body !== undefined && init.body !== null) req.write(init.body as string | Uint8Array);
      req.end();
    });
  return { agent, fetch: fetchOverSocket as typeof fetch, close: () => agent.destroy() };
}

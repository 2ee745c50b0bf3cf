import { type Socket, connect } from 'node:net';

export interface HttpReply {
  status: number;
  headers: Headers;
  /** The JSON body; `{}` when the reply is not JSON (a page, metrics: `text` has it). */
  body: Record<string, unknown>;
  text: string;
}

/** One request to the bridge at `url`; a body that is not a string is sent as JSON. */
export async function http(
  url: string,
  method: string,
  path: string,
  body?: unknown,
  { headers = {}, timeoutMs = 30_000 }: { headers?: Record<string, string>; timeoutMs?: number } = {},
): Promise<HttpReply> {
  const res = await fetch(`${url}${path}`, {
    method,
    headers,
    ...(body !== undefined && { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await res.text();
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(text) as Record<string, unknown>;
  } catch {
    parsed = {};
  }
  return { status: res.status, headers: res.headers, body: parsed, text };
}

export interface RawTcpReply {
  reply: string;
  /** ms from connect to the socket's close. */
  closedAfterMs: number;
  error?: string;
}

/**
 * Hand-made HTTP, for what fetch will not send (bad framing, slow bodies): writes `bytes` (or lets
 * a function drive the socket) to `url`'s host and port, and collects the reply until the server
 * closes the socket (or `giveUpMs`, then we close it and say so).
 */
export function rawTcp(
  url: string,
  bytes: string | Buffer | ((socket: Socket) => void),
  { giveUpMs = 15_000, endAfterMs }: { giveUpMs?: number; endAfterMs?: number } = {},
): Promise<RawTcpReply> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const started = Date.now();
    let reply = '';
    let error: string | undefined;
    const socket = connect(Number(port), hostname, () => {
      if (typeof bytes === 'function') bytes(socket);
      else socket.write(bytes);
      if (endAfterMs !== undefined) setTimeout(() => socket.end(), endAfterMs);
    });
    const giveUp = setTimeout(() => {
      error = `still open after ${giveUpMs} ms`;
      socket.destroy();
    }, giveUpMs);
    socket.on('data', (chunk) => (reply += chunk.toString('latin1')));
    socket.on('error', (e: NodeJS.ErrnoException) => (error ??= e.code ?? e.message));
    socket.on('close', () => {
      clearTimeout(giveUp);
      resolve({ reply, closedAfterMs: Date.now() - started, ...(error !== undefined && { error }) });
    });
  });
}

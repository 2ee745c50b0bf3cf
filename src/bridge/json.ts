import type { ServerResponse } from 'node:http';

/** JSON of frozen replies (the pool shares one `/status` reply until the pool changes): serialized once. */
const frozenJson = new WeakMap<object, string>();

export function toJson(body: unknown): string {
  if (typeof body !== 'object' || body === null || !Object.isFrozen(body)) return JSON.stringify(body);
  let text = frozenJson.get(body);
  if (text === undefined) frozenJson.set(body, (text = JSON.stringify(body)));
  return text;
}

export function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = toJson(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

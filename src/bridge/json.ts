import type { ServerResponse } from 'node:http';
import { oncePerFrozenValue } from '../rpc/frozen.js';

/** How the bridge writes its replies; shared by the route table, the status page and the live stream. */
export const toJson = oncePerFrozenValue((body) => JSON.stringify(body));

export function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  write(res, status, 'application/json', toJson(body), headers);
}

export function write(res: ServerResponse, status: number, type: string, text: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

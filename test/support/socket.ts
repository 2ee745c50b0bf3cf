import { type IncomingHttpHeaders, request } from 'node:http';

export interface RawReply {
  status: number;
  headers: IncomingHttpHeaders;
  /** The body, without the stack traces tRPC adds to error data outside production: they name source lines, not the contract. */
  body: string;
}

/** One HTTP request on a Unix socket, with the reply as the wire has it. */
export function rawRequest(socketPath: string, method: string, path: string, body?: string | Buffer, headers: Record<string, string> = {}): Promise<RawReply> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, method, path, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.once('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text.replace(/"stack":"(?:[^"\\]|\\.)*",/g, '') }));
    });
    req.once('error', reject);
    req.end(body);
  });
}

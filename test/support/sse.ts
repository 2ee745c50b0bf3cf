import { type IncomingHttpHeaders, get } from 'node:http';

/** One block of a text/event-stream, as a browser's EventSource would split it. */
export interface SseFrame {
  readonly event?: string;
  readonly data?: string;
  readonly retry?: number;
  readonly comment?: string;
}

export function parseSseBlock(block: string): SseFrame {
  const frame: { event?: string; data?: string[]; retry?: number; comment?: string } = {};
  for (const line of block.split('\n')) {
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    const value = colon === -1 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === '') frame.comment = value;
    else if (field === 'event') frame.event = value;
    else if (field === 'data') (frame.data ??= []).push(value);
    else if (field === 'retry') frame.retry = Number(value);
  }
  return { ...frame, data: frame.data?.join('\n') } as SseFrame;
}

export interface SseConnection {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  /** Every frame received so far, in order (the body, for a reply that is not a stream). */
  readonly frames: SseFrame[];
  readonly body: () => string;
  /** Resolves with the first frame (from the start) that matches, or rejects after `timeoutMs`. */
  waitFor(match: (frame: SseFrame) => boolean, timeoutMs?: number): Promise<SseFrame>;
  /** Whether the server ended the stream. */
  readonly ended: () => boolean;
  close(): void;
}

/** Opens `GET url` on its own connection (no pooling, so tests control exactly how many are open). */
export function openSse(url: string): Promise<SseConnection> {
  return new Promise((resolve, reject) => {
    const req = get(url, { agent: false, headers: { Accept: 'text/event-stream' } }, (res) => {
      res.setEncoding('utf8');
      const frames: SseFrame[] = [];
      const waiters = new Set<() => void>();
      let text = '';
      let pending = '';
      let ended = false;
      res.on('data', (chunk: string) => {
        text += chunk;
        pending += chunk;
        let end: number;
        while ((end = pending.indexOf('\n\n')) !== -1) {
          frames.push(parseSseBlock(pending.slice(0, end)));
          pending = pending.slice(end + 2);
        }
        for (const wake of waiters) wake();
      });
      // Closing our end aborts the response; that is how a test hangs up, not a failure.
      res.on('error', () => {});
      res.on('close', () => {
        ended = true;
        for (const wake of waiters) wake();
      });
      resolve({
        status: res.statusCode ?? 0,
        headers: res.headers,
        frames,
        body: () => text,
        ended: () => ended,
        waitFor(match, timeoutMs = 10_000) {
          return new Promise((done, fail) => {
            const check = () => {
              const found = frames.find(match);
              if (found !== undefined) finish(() => done(found));
              else if (ended) finish(() => fail(new Error(`stream ended without the frame; got ${JSON.stringify(frames)}`)));
            };
            const timer = setTimeout(() => finish(() => fail(new Error(`no matching frame within ${timeoutMs} ms; got ${JSON.stringify(frames)}`))), timeoutMs);
            const finish = (settle: () => void) => {
              clearTimeout(timer);
              waiters.delete(check);
              settle();
            };
            waiters.add(check);
            check();
          });
        },
        close: () => req.destroy(),
      });
    });
    req.on('error', reject);
  });
}

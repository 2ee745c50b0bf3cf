import type { ServerResponse } from 'node:http';
import { type PoolEvent, type StatusReply, TRANSITIONAL_EVENTS } from '../contract/index.js';
import { notIn } from '../text/event.js';
import { send, toJson } from './json.js';

/** What the live stream shows, injected by the daemon. */
export interface LiveSource {
  /** Live pool events; the iterator ends when `signal` aborts (the daemon's event bus). */
  subscribe(signal: AbortSignal): AsyncIterable<PoolEvent>;
  status(): StatusReply;
  /** The recent past a new viewer starts from, oldest first (the event log). */
  history(): Promise<readonly PoolEvent[]>;
  onError(what: string, error: unknown): void;
}

export interface LiveLimits {
  /** Streams open at once, over all bridge addresses; more are answered 503 so viewers cannot exhaust the daemon. */
  readonly maxStreams: number;
  /**
   * Streams one client address is sure of. It may hold more while places are free, but once all
   * are taken a newcomer from an address holding fewer takes the place of the oldest stream of the
   * address holding the most, so one client cannot keep everyone else out.
   */
  readonly perAddress: number;
  /** A comment line after this long without a write, so idle streams are not taken for dead by proxies or browsers. */
  readonly keepAliveMs: number;
}

export const LIVE_LIMITS: LiveLimits = { maxStreams: 32, perAddress: 4, keepAliveMs: 15_000 };

/**
 * Heartbeats and the end of a grace period change `/status` without an event: each stream compares
 * the status it last sent with the current one this often (the pool caches the reply, so it is cheap).
 */
const STATUS_CHECK_MS = 1_000;
/** A viewer that stops reading is cut off once this much is queued for it, rather than buffered without bound; its browser reconnects. */
const MAX_QUEUED_BYTES = 1 << 20;
/** How long a browser waits before reconnecting a dropped stream (the EventSource `retry` field). */
const RECONNECT_MS = 2_000;

/** One server-sent event; each line of `data` gets its own `data:` field, as the format requires. */
export function sseFrame(event: string, data: string): string {
  return `event: ${event}\n${data
    .split(/\r\n|\r|\n/)
    .map((line) => `data: ${line}`)
    .join('\n')}\n\n`;
}

interface Viewer {
  readonly res: ServerResponse;
  readonly address: string;
  lastStatus: string;
  lastWrite: number;
}

/** The bridge's `GET /events/stream`. */
export interface LiveStreams {
  /** Answers one viewer's request with a stream that lasts until either side closes it, or a 503 when no place is left. */
  serve(res: ServerResponse): void;
}

/**
 * `GET /events/stream`: `text/event-stream` of `history` (the last hour of the log, once), `pool`
 * (each event the log records, as it happens) and `status` (a fresh `/status` on connect and
 * whenever it changes). Read-only: it reports the pool and changes nothing.
 */
export function createLiveStreams(source: LiveSource, limits: LiveLimits = LIVE_LIMITS): LiveStreams {
  const viewers = new Set<Viewer>();
  let ticker: NodeJS.Timeout | undefined;

  function tick(): void {
    const now = performance.now();
    for (const viewer of viewers) {
      sendStatus(viewer, source);
      if (now - viewer.lastWrite >= limits.keepAliveMs) write(viewer, ': keep-alive\n\n');
    }
  }

  return {
    serve(res: ServerResponse): void {
      const address = res.req.socket.remoteAddress ?? '';
      if (viewers.size >= limits.maxStreams) {
        const displaced = placeFor(viewers, address, limits.perAddress);
        if (displaced === undefined) {
          send(res, 503, { error: `too many live streams (${limits.maxStreams} open); poll GET /status instead` }, { 'Retry-After': '5' });
          return;
        }
        // Ended, not cut: its browser reconnects after RECONNECT_MS and is refused while it holds more than its share.
        viewers.delete(displaced);
        displaced.res.end();
      }
      res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff' });
      const viewer: Viewer = { res, address, lastStatus: '', lastWrite: 0 };
      const stop = new AbortController();
      viewers.add(viewer);
      res.once('close', () => {
        viewers.delete(viewer);
        stop.abort();
        if (viewers.size === 0) {
          clearInterval(ticker);
          ticker = undefined;
        }
      });
      ticker ??= setInterval(tick, STATUS_CHECK_MS);
      write(viewer, `retry: ${RECONNECT_MS}\n\n`);
      pump(viewer, source, stop.signal).catch((error: unknown) => {
        source.onError('in a live stream', error);
        res.destroy();
      });
    },
  };
}

function write(viewer: Viewer, text: string): void {
  const { res } = viewer;
  if (res.destroyed || res.writableEnded) return;
  if (res.writableLength > MAX_QUEUED_BYTES) {
    res.destroy();
    return;
  }
  res.write(text);
  viewer.lastWrite = performance.now();
}

function sendStatus(viewer: Viewer, source: LiveSource): void {
  const text = toJson(source.status());
  if (text === viewer.lastStatus) return;
  viewer.lastStatus = text;
  write(viewer, sseFrame('status', text));
}

async function pump(viewer: Viewer, source: LiveSource, signal: AbortSignal): Promise<void> {
  const events = source.subscribe(signal)[Symbol.asyncIterator]();
  // Subscribed before the log is read: an event that happens meanwhile is in the history, or
  // queued here, or both, never lost.
  let next = events.next();
  const history = await source.history().catch((error: unknown) => {
    source.onError('reading the event log for a live stream', error);
    return [];
  });
  write(viewer, sseFrame('history', JSON.stringify(history)));
  sendStatus(viewer, source);
  const isNew = notIn(history);
  for (;;) {
    const { value: event, done } = await next;
    if (done === true) return;
    if (!TRANSITIONAL_EVENTS.has(event.type) && isNew(event)) write(viewer, sseFrame('pool', JSON.stringify(event)));
    sendStatus(viewer, source);
    next = events.next();
  }
}

/**
 * When every place is taken: the oldest stream of the address holding the most, if that is over
 * its share and `address` is under it; undefined when the newcomer must be refused.
 */
function placeFor(viewers: ReadonlySet<Viewer>, address: string, perAddress: number): Viewer | undefined {
  const held = new Map<string, Viewer[]>();
  for (const viewer of viewers) held.set(viewer.address, [...(held.get(viewer.address) ?? []), viewer]);
  if ((held.get(address)?.length ?? 0) >= perAddress) return undefined;
  const [hog] = [...held.values()].sort((a, b) => b.length - a.length);
  return hog !== undefined && hog.length > perAddress ? hog[0] : undefined;
}

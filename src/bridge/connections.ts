import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { Socket } from 'node:net';

/**
 * Descriptors kept back from bridge connections for everything else the daemon opens: the pipes
 * of Docker calls (a reconcile, starts and stops in flight, `docker events`), state, roster and
 * event files, the socket and its clients, the log. At least this many, or an eighth of the limit.
 */
const RESERVED_FDS = 64;
/** Bridge connections open at once, over all bridge addresses, however high the descriptor limit. */
const MAX_CONNECTIONS = 4096;
/** How long a refused connection is kept after its 503 is written, for the client to read it, */
const REFUSED_LINGER_MS = 200;
/** and how many are kept so at once: a quarter of the reserve. */
const MAX_LINGERING = RESERVED_FDS / 4;
/** The limit can be lowered under a running daemon (`prlimit --pid`): it is read again at most this often. */
const LIMIT_CHECK_MS = 1_000;

/** The soft RLIMIT_NOFILE from `/proc/self/limits` (Node has no getrlimit); undefined when unlimited or unreadable. */
function openFileLimit(): number | undefined {
  try {
    const line = /^Max open files\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    const soft = Number(line?.[1]);
    return Number.isInteger(soft) && soft > 0 ? soft : undefined;
  } catch {
    // Not Linux, or no descriptor left to read it with: the last figure stands.
    return undefined;
  }
}

/** The connection cap for a descriptor limit: below it by the reserve, and never above MAX_CONNECTIONS. */
export function connectionCap(fdLimit: number | undefined): number {
  if (fdLimit === undefined) return MAX_CONNECTIONS;
  return Math.max(1, Math.min(MAX_CONNECTIONS, fdLimit - Math.max(RESERVED_FDS, Math.floor(fdLimit / 8))));
}

export interface ConnectionLimitOptions {
  /** Told once each time the bridge fills up. */
  readonly onFull?: (message: string) => void;
}

/** The daemon's cap on open bridge connections. */
export interface ConnectionLimit {
  /**
   * Puts the limit in front of `server`'s HTTP parser: http.Server parses each socket from its one
   * 'connection' listener, which is moved behind the count, so a refused socket never reaches it.
   */
  guard(server: Server): void;
}

/**
 * One count of open bridge connections for the daemon, shared by every bridge address (they draw
 * on one descriptor table). Past the cap a connection is answered 503 at once and closed, rather
 * than dropped without a word (Node's `maxConnections`) or accepted until accept() and spawn()
 * fail with EMFILE.
 */
export function createConnectionLimit(options: ConnectionLimitOptions = {}): ConnectionLimit {
  let open = 0;
  let limit = openFileLimit();
  let cap = connectionCap(limit);
  let checkedAt = performance.now();
  /** Whether the cap has been met since it was last logged, so a flood makes one log line, not one per connection. */
  let full = false;
  /** Refused sockets waiting for their client to read the 503. */
  let lingering = 0;

  function currentCap(): number {
    if (performance.now() - checkedAt >= LIMIT_CHECK_MS) {
      checkedAt = performance.now();
      limit = openFileLimit() ?? limit;
      cap = connectionCap(limit);
    }
    return cap;
  }

  function refuse(socket: Socket, max: number): void {
    if (!full) options.onFull?.(`bridge: ${max} connections open, its cap (${limit === undefined ? 'the most it takes' : `the descriptor limit ${limit} less a reserve`}); more are answered 503 until some close`);
    full = true;
    const body = JSON.stringify({ error: `too many connections (${max} open); try again later` });
    socket.on('error', () => {});
    // What the client sent is read and dropped, and the socket lingers a moment after the reply:
    // closing it with unread bytes would reset the connection before the client read the 503. A
    // lingering socket holds a descriptor, so only a few linger; in a flood the rest are closed
    // once the reply is out (a client that sent nothing yet still reads it).
    const linger = lingering < MAX_LINGERING;
    if (linger) {
      lingering += 1;
      socket.once('close', () => (lingering -= 1));
    }
    socket.resume();
    socket.end(
      `HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nRetry-After: 5\r\nConnection: close\r\n\r\n${body}`,
      () => (linger ? setTimeout(() => socket.destroy(), REFUSED_LINGER_MS).unref() : socket.destroy()),
    );
  }

  return {
    guard(server) {
      const parsers = server.listeners('connection') as ((socket: Socket) => void)[];
      server.removeAllListeners('connection');
      server.on('connection', (socket: Socket) => {
        const max = currentCap();
        if (open >= max) {
          refuse(socket, max);
          return;
        }
        open += 1;
        socket.once('close', () => {
          open -= 1;
          full &&= open >= cap;
        });
        for (const parse of parsers) parse.call(server, socket);
      });
    },
  };
}

import { type TRPCClient, createTRPCClient, httpSubscriptionLink, splitLink } from '@trpc/client';
import type { inferRouterOutputs } from '@trpc/server';
import type { EventsInput, PoolEvent } from '../src/contract/api.js';
import { socketFromEnvFile } from '../src/contract/env-file.js';
import superjson from 'superjson';
import type { AppRouter } from '../src/rpc/routers/_app.js';
import { DaemonUnreachableError, fromRpcError } from './errors.js';
import { eventSourceOver } from './event-source.js';
import { socketLink } from './link.js';
import { socketTransport } from './transport.js';

export const DEFAULT_SOCKET = '/run/openclaw-pool/pool.sock';

export interface PoolClientOptions {
  /** Default: $POOL_SOCKET, then POOL_SOCKET in the daemon's pool.env (when readable), then /run/openclaw-pool/pool.sock. */
  readonly socketPath?: string;
}

/** What each of the daemon's procedures answers, as its router declares it. */
type Replies = inferRouterOutputs<AppRouter>;

/**
 * A typed client of the daemon over its Unix socket. Replies are the bridge's reply objects;
 * refusals throw the daemon's typed errors (PoolFullError, UnknownAgentError, ForbiddenAgentError,
 * DriverError), and a missing or forbidden socket throws DaemonUnreachableError or PermissionDeniedError.
 */
export interface PoolClient {
  /** The socket this client talks to. */
  readonly socketPath: string;
  request(agent: string, opts?: { requestedBy?: string; waitSeconds?: number }): Promise<Replies['pool']['request']>;
  release(agent: string, opts?: { requestedBy?: string }): Promise<Replies['pool']['release']>;
  /** `busySeconds`: protect the agent from eviction that long from now, for a long task (0 ends the hold). */
  heartbeat(agent: string, opts?: { busySeconds?: number }): Promise<Replies['pool']['heartbeat']>;
  status(): Promise<Replies['info']['status']>;
  available(): Promise<Replies['info']['available']>;
  health(): Promise<Replies['info']['health']>;
  known(): Promise<Replies['info']['known']>;
  /** Past events from the daemon's event log, oldest first: `history({ agent: 'cfo', since: '2026-11-25T12:00:00Z' })`. */
  history(query?: EventsInput): Promise<Replies['info']['history']>;
  /** The daemon's Prometheus metrics (what GET /metrics serves), or the same families as JSON. */
  metrics(opts?: { format?: 'text' | 'json' }): Promise<Replies['info']['metrics']>;
  /** What the running daemon says about itself: where its bridge listens. */
  diagnostics(): Promise<Replies['info']['diagnostics']>;
  /** The configuration the daemon runs with (POOL_TOKEN shown only as `(set)`). */
  config(): Promise<Replies['info']['config']>;
  /** Asks the daemon to exit; with `stopAgents`, after stopping every pooled agent (the systemd stop path). */
  shutdown(opts?: { stopAgents?: boolean }): Promise<Replies['admin']['shutdown']>;
  /**
   * Live pool events as an async iterable: `for await (const event of pool.events()) …`.
   * `onConnected` fires once the daemon has the subscription (nothing before it is missed after).
   * Ends when `signal` aborts; throws DaemonUnreachableError if the daemon goes away.
   */
  events(opts?: { signal?: AbortSignal; onConnected?: () => void }): AsyncIterable<PoolEvent>;
  /** Closes kept-alive connections so the process can exit. */
  close(): void;
}

export function createPoolClient(options: PoolClientOptions = {}): PoolClient {
  const socketPath = options.socketPath ?? (process.env.POOL_SOCKET || socketFromEnvFile(process.env, process.cwd())) ?? DEFAULT_SOCKET;
  const transport = socketTransport(socketPath);
  const url = 'http://localhost';
  const trpc = createTRPCClient<AppRouter>({
    links: [
      splitLink({
        condition: (op) => op.type === 'subscription',
        true: httpSubscriptionLink({ url, transformer: superjson, EventSource: eventSourceOver(transport.fetch) }),
        false: socketLink(socketPath, transport.agent),
      }),
    ],
  });
  const call = async <T>(operation: () => Promise<T>): Promise<T> => {
    try {
      return await operation();
    } catch (error) {
      throw fromRpcError(error, socketPath);
    }
  };

  return {
    socketPath,
    request: (agent, opts = {}) =>
      call(() =>
        trpc.pool.request.mutate({
          agent,
          ...(opts.requestedBy !== undefined && { requested_by: opts.requestedBy }),
          ...(opts.waitSeconds !== undefined && { wait_seconds: opts.waitSeconds }),
        }),
      ),
    release: (agent, opts = {}) => call(() => trpc.pool.release.mutate({ agent, ...(opts.requestedBy !== undefined && { requested_by: opts.requestedBy }) })),
    heartbeat: (agent, opts = {}) =>
      call(() => trpc.pool.heartbeat.mutate({ agent, ...(opts.busySeconds !== undefined && { busy_seconds: opts.busySeconds }) })),
    status: () => call(() => trpc.info.status.query()),
    available: () => call(() => trpc.info.available.query()),
    health: () => call(() => trpc.info.health.query()),
    known: () => call(() => trpc.info.known.query()),
    history: (query = {}) => call(() => trpc.info.history.query(query)),
    metrics: (opts = {}) => call(() => trpc.info.metrics.query({ format: opts.format ?? 'text' })),
    diagnostics: () => call(() => trpc.info.diagnostics.query()),
    config: () => call(() => trpc.info.config.query()),
    shutdown: (opts = {}) => call(() => trpc.admin.shutdown.mutate({ stopAgents: opts.stopAgents ?? false })),
    events: (opts = {}) => liveEvents(trpc, socketPath, opts),
    close: () => transport.close(),
  };
}

/** The `info.events` subscription as an async generator (PoolClient.events). */
async function* liveEvents(trpc: TRPCClient<AppRouter>, socketPath: string, opts: { signal?: AbortSignal; onConnected?: () => void }): AsyncGenerator<PoolEvent> {
  const queue: PoolEvent[] = [];
  let wake: (() => void) | undefined;
  let failure: unknown;
  let done = false;
  const finish = () => {
    done = true;
    wake?.();
  };
  const subscription = trpc.info.events.subscribe(undefined, {
    onStarted: () => opts.onConnected?.(),
    onData: (event) => {
      queue.push(event);
      wake?.();
    },
    onError: (error) => {
      failure = fromRpcError(error, socketPath);
      finish();
    },
    onConnectionStateChange: (state) => {
      // The socket EventSource never reconnects: a connection that drops is a daemon that went away.
      if (state.state === 'connecting' && state.error !== null) {
        failure = new DaemonUnreachableError(socketPath, { cause: state.error });
        finish();
      }
    },
    onComplete: finish,
  });
  const onAbort = () => finish();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    for (;;) {
      while (queue.length > 0) yield queue.shift() as PoolEvent;
      if (done || opts.signal?.aborted) break;
      await new Promise<void>((resolve) => (wake = resolve));
      wake = undefined;
    }
    if (failure !== undefined && !opts.signal?.aborted) throw failure;
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
    subscription.unsubscribe();
  }
}

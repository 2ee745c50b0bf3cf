import { createTRPCClient, httpLink } from '@trpc/client';
import superjson from 'superjson';
import type { AppRouter } from '../src/rpc/routers/_app.js';
import { fromRpcError } from './errors.js';
import { socketFetch } from './transport.js';

export const DEFAULT_SOCKET = '/run/openclaw-pool/pool.sock';

export interface PoolClientOptions {
  /** Default: $POOL_SOCKET, then /run/openclaw-pool/pool.sock. */
  readonly socketPath?: string;
}

/**
 * A typed client of the daemon over its Unix socket. Replies are the bridge's reply objects;
 * refusals throw the daemon's typed errors (PoolFullError, UnknownAgentError, ForbiddenAgentError,
 * DriverError), and a missing or forbidden socket throws DaemonUnreachableError or PermissionDeniedError.
 */
export function createPoolClient(options: PoolClientOptions = {}) {
  const socketPath = options.socketPath ?? process.env.POOL_SOCKET ?? DEFAULT_SOCKET;
  const transport = socketFetch(socketPath);
  const trpc = createTRPCClient<AppRouter>({
    links: [httpLink({ url: 'http://localhost', transformer: superjson, fetch: transport.fetch })],
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
    request: (agent: string, opts: { requestedBy?: string; waitSeconds?: number } = {}) =>
      call(() =>
        trpc.pool.request.mutate({
          agent,
          ...(opts.requestedBy !== undefined && { requested_by: opts.requestedBy }),
          ...(opts.waitSeconds !== undefined && { wait_seconds: opts.waitSeconds }),
        }),
      ),
    release: (agent: string, opts: { requestedBy?: string } = {}) =>
      call(() => trpc.pool.release.mutate({ agent, ...(opts.requestedBy !== undefined && { requested_by: opts.requestedBy }) })),
    heartbeat: (agent: string) => call(() => trpc.pool.heartbeat.mutate({ agent })),
    status: () => call(() => trpc.info.status.query()),
    available: () => call(() => trpc.info.available.query()),
    health: () => call(() => trpc.info.health.query()),
    known: () => call(() => trpc.info.known.query()),
    /** Closes kept-alive connections so the process can exit. */
    close: () => transport.close(),
  };
}

export type PoolClient = ReturnType<typeof createPoolClient>;

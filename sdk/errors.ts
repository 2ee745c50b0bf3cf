import { poolErrorFromData } from '../src/contract/errors.js';

// poolctl takes the pool's errors and their one reply mapping from here, as it takes all else from the SDK.
export { PoolError, PoolFullError, replyForError } from '../src/contract/errors.js';

/** The daemon's socket does not answer: not running, or the path is wrong. */
export class DaemonUnreachableError extends Error {
  override name = 'DaemonUnreachableError';
  constructor(
    readonly socketPath: string,
    options?: { cause?: unknown },
  ) {
    super(`cannot reach the openclaw-pool daemon at ${socketPath}: is it running? (systemctl start openclaw-pool, or set POOL_SOCKET / --socket)`, options);
  }
}

/** The socket exists but this user may not use it (mode 0660). */
export class PermissionDeniedError extends Error {
  override name = 'PermissionDeniedError';
  constructor(
    readonly socketPath: string,
    options?: { cause?: unknown },
  ) {
    super(`permission denied on ${socketPath}: run as root or join the socket's group (POOL_SOCKET_GROUP; e.g. sudo usermod -aG <group> $USER, then log in again)`, options);
  }
}

interface PoolErrorShape {
  data?: { pool?: { code?: unknown } | null };
  message: string;
}

/** Rebuilds the daemon's typed error from a tRPC error's data, so scripts can `instanceof` it. */
export function fromRpcError(error: unknown, socketPath: string): unknown {
  const code = (error as { cause?: { code?: string } })?.cause?.code ?? (error as { code?: string })?.code;
  if (code === 'ENOENT' || code === 'ECONNREFUSED') return new DaemonUnreachableError(socketPath, { cause: error });
  if (code === 'EACCES') return new PermissionDeniedError(socketPath, { cause: error });
  const shape = error as PoolErrorShape;
  return poolErrorFromData(shape.data?.pool, shape.message) ?? error;
}

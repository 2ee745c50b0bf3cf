import { chmod, chown, lstat, mkdir, readFile, unlink } from 'node:fs/promises';
import type { Server } from 'node:http';
import { connect } from 'node:net';
import { dirname } from 'node:path';

/** Linux's sun_path is 108 bytes with the terminating NUL; Node silently truncates longer paths. */
export const MAX_SOCKET_PATH_BYTES = 107;

export class SocketError extends Error {
  override name = 'SocketError';
}

/**
 * Listens on a Unix socket the way a daemon should: refuses a path that would be truncated,
 * creates the parent directory, replaces a stale socket only after a connect probe finds nobody
 * answering, refuses to start beside a live daemon, and leaves the socket at mode 0660 (group
 * `group` when given) so that only root and that group can drive the pool.
 */
export async function listenOnSocket(server: Server, path: string, group?: string): Promise<void> {
  const bytes = Buffer.byteLength(path);
  if (bytes > MAX_SOCKET_PATH_BYTES) {
    throw new SocketError(`socket path ${path} is ${bytes} bytes; Unix sockets allow at most ${MAX_SOCKET_PATH_BYTES}: set POOL_SOCKET to a shorter path`);
  }
  await mkdir(dirname(path), { recursive: true, mode: 0o755 });
  await removeIfStale(path);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    // The socket file is created by bind(), synchronously inside listen(): with this umask it is
    // born 0660, so there is no moment in which anyone else could connect before the chmod below.
    const previous = process.umask(0o117);
    try {
      server.listen(path, () => {
        server.off('error', reject);
        resolve();
      });
    } finally {
      process.umask(previous);
    }
  });
  await chmod(path, 0o660);
  if (group !== undefined) await chown(path, -1, await resolveGroup(group));
}

async function removeIfStale(path: string): Promise<void> {
  let info;
  try {
    info = await lstat(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  if (!info.isSocket()) throw new SocketError(`${path} exists and is not a socket; remove it or set POOL_SOCKET to another path`);
  if (await answers(path)) {
    throw new SocketError(`another openclaw-pool daemon is already listening on ${path}; stop it first (systemctl stop openclaw-pool) or set POOL_SOCKET to another path`);
  }
  await unlink(path);
}

/** True when something accepts a connection on the socket; a refused or dead socket is stale. */
function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = connect(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
}

/** A group name (or number) as a gid; throws naming POOL_SOCKET_GROUP when there is no such group. */
export async function resolveGroup(group: string): Promise<number> {
  if (/^\d+$/.test(group)) return Number(group);
  const line = (await readFile('/etc/group', 'utf8')).split('\n').find((l) => l.split(':')[0] === group);
  const gid = line?.split(':')[2];
  if (gid === undefined) throw new SocketError(`POOL_SOCKET_GROUP=${group}: no such group (create it with: groupadd ${group})`);
  return Number(gid);
}

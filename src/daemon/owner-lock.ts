import { createHash } from 'node:crypto';
import { type Server, connect, createServer } from 'node:net';

/** Who holds a project: what the refused daemon prints, so the operator knows which one to stop. */
export interface ProjectOwner {
  readonly pid: number;
  readonly socket: string;
  readonly poolDir: string;
  readonly started: string;
}

/** How long a refused daemon waits for the owner to say who it is. */
const ASK_OWNER_TIMEOUT_MS = 2000;
/** sun_path holds 108 bytes; an abstract name uses them all but the leading NUL, with no terminator. */
const MAX_ABSTRACT_NAME_BYTES = 107;

export class ProjectOwnedError extends Error {
  override name = 'ProjectOwnedError';
}

/**
 * The lock's name in Linux's abstract socket namespace: per backend and project, host-wide (per
 * network namespace). A project name too long for it is hashed.
 */
export function ownerLockName(backend: string, project: string): string {
  const name = `openclaw-pool:${backend}:${project}`;
  if (Buffer.byteLength(name) < MAX_ABSTRACT_NAME_BYTES) return `\0${name}`;
  return `\0openclaw-pool:${backend}:sha256:${createHash('sha256').update(project).digest('hex')}`;
}

/**
 * Makes this process the only daemon of `project` on the host, or throws ProjectOwnedError naming
 * the one that is. The lock is a Unix socket bound in the abstract namespace: no file to go stale,
 * and the kernel releases it the instant its process dies, kill -9 included, so a restart takes it
 * at once. Whoever connects is told who holds it. Closing the returned server releases it.
 */
export async function claimProject(what: string, name: string, owner: () => ProjectOwner): Promise<Server> {
  const server = createServer((connection) => {
    connection.on('error', () => {});
    connection.end(JSON.stringify(owner()));
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(name, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error;
    const holder = await askOwner(name);
    const who = holder === undefined
      ? 'a process that did not say who it is'
      : `pid ${holder.pid}, socket ${holder.socket}, POOL_DIR ${holder.poolDir}, running since ${holder.started}`;
    throw new ProjectOwnedError(
      `${what} is already managed by another openclaw-pool daemon (${who}); only one daemon may own a project on a host, ` +
        'or the cap would count only half of its agents: stop that one first (systemctl stop openclaw-pool), or point this one at another project',
    );
  }
  // The lock must not keep a daemon that is otherwise done from exiting.
  server.unref();
  return server;
}

function askOwner(name: string): Promise<ProjectOwner | undefined> {
  return new Promise((resolve) => {
    let text = '';
    const probe = connect(name);
    const done = (owner: ProjectOwner | undefined) => {
      probe.destroy();
      resolve(owner);
    };
    probe.setTimeout(ASK_OWNER_TIMEOUT_MS, () => done(undefined));
    probe.on('data', (chunk) => (text += chunk));
    probe.once('error', () => done(undefined));
    probe.once('end', () => {
      try {
        done(JSON.parse(text) as ProjectOwner);
      } catch {
        done(undefined);
      }
    });
  });
}

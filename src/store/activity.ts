import { constants } from 'node:fs';
import { type FileHandle, lstat, mkdir, open } from 'node:fs/promises';
import { join } from 'node:path';
import { moveAside } from './regular-file.js';

export const ACTIVITY_DIR = 'activity';

/**
 * Sticky and world-writable, as /tmp is: agents run as any uid (OpenClaw's as 1001:1001) and must
 * be able to create and touch their own mark; the sticky bit keeps one uid from deleting or
 * renaming another uid's files. It grants nothing else: a mark only ever moves an agent's
 * last_active, and a name that is not a pooled agent is ignored (README: Security model).
 */
export const ACTIVITY_DIR_MODE = 0o1777;

/**
 * Creates `POOL_DIR/activity/` with ACTIVITY_DIR_MODE, and gives an existing one (the earlier
 * manager's, root 0755) that mode. Containers can replace it through the `/pool` mount, so it is
 * opened without following a symlink and its mode set through that descriptor: a link planted
 * there never makes the daemon chmod what it points to. A symlink or file in its place is moved
 * aside (`activity.not-a-file-<time>`) and a directory made, so a container cannot stop the
 * daemon starting either; the activity reader reports such a move in the log.
 */
export async function ensureActivityDir(poolDir: string): Promise<string> {
  const dir = join(poolDir, ACTIVITY_DIR);
  await (await openActivityDir(dir)).handle.close();
  return dir;
}

const DIR_FLAGS = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/** The directory itself, open, with its mode set; `replaced` says what was moved aside to make it. */
async function openActivityDir(dir: string): Promise<{ handle: FileHandle; replaced: string | undefined }> {
  await mkdir(dir, { recursive: true }).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'EEXIST') throw error;
  });
  let replaced: string | undefined;
  const handle = await open(dir, DIR_FLAGS).catch(async (error: NodeJS.ErrnoException) => {
    if (error.code !== 'ELOOP' && error.code !== 'ENOTDIR') throw error;
    const movedTo = await moveAside(dir);
    replaced = `${dir} was not a directory (a symlink or a file): moved it to ${movedTo ?? '(it could not be moved)'} and made a directory`;
    await mkdir(dir);
    return open(dir, DIR_FLAGS);
  });
  try {
    if (((await handle.stat()).mode & 0o7777) !== ACTIVITY_DIR_MODE) await handle.chmod(ACTIVITY_DIR_MODE);
  } catch (error) {
    await handle.close();
    throw error;
  }
  return { handle, replaced };
}

/** The last mtime seen of an agent's mark; `null` when it had none. */
export type SeenMark = number | null;

/**
 * When a mark counts as activity (SPEC §1, §7): when its mtime changes, at the daemon's own `now`,
 * whatever time it claims (a mark touched to 2030 is one touch, not a protection until 2030). A
 * mark seen for the first time (daemon start, agent newly in the pool) counts at its own time, but
 * never later than `now`, so a mark older than the agent's last activity changes nothing.
 */
export function markActivity(previous: SeenMark | undefined, current: SeenMark, now: number): number | undefined {
  if (current === null) return undefined;
  if (previous === undefined) return Math.min(current, now);
  return current === previous ? undefined : now;
}

export interface ActivityReader {
  /** Activity (epoch ms) of those of `agents` whose mark says so since the last read. */
  read(agents: readonly string[], now: number): Promise<Map<string, number>>;
}

/**
 * Reads `activity/<agent>` for the pool's agents only: one lstat each, whatever else is in the
 * directory (50,000 planted names cost nothing). lstat: a symlink is not a mark, and its target's
 * time is none of the daemon's business. The names are resolved through a descriptor of the
 * directory (`/proc/self/fd/<fd>/<agent>`), so a symlink planted as `activity` itself is never
 * followed either. Remembers the last mtime of the agents it was last asked about, nothing more.
 */
export function createActivityReader(poolDir: string): ActivityReader {
  const dir = join(poolDir, ACTIVITY_DIR);
  let seen = new Map<string, SeenMark>();
  return {
    async read(agents, now) {
      const { handle, replaced } = await openActivityDir(dir);
      const current = new Map<string, SeenMark>();
      try {
        await Promise.all(agents.map(async (agent) => current.set(agent, await mtimeOf(`/proc/self/fd/${handle.fd}/${agent}`))));
      } finally {
        await handle.close();
      }
      const marks = new Map<string, number>();
      for (const [agent, mtime] of current) {
        const at = markActivity(seen.get(agent), mtime, now);
        if (at !== undefined) marks.set(agent, at);
      }
      seen = current;
      if (replaced !== undefined) throw new Error(replaced);
      return marks;
    },
  };
}

async function mtimeOf(path: string): Promise<SeenMark> {
  try {
    const info = await lstat(path);
    return info.isFile() ? info.mtimeMs : null;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}

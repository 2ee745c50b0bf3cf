import { type FileHandle, lstat } from 'node:fs/promises';
import { join } from 'node:path';
import { openOwnDir, within } from './regular-file.js';
import { SHARED_DIR, openSharedDir } from './shared.js';

export const ACTIVITY_DIR = 'activity';

/**
 * Sticky and world-writable, as /tmp is: agents run as any uid (OpenClaw's as 1001:1001) and must
 * be able to create and touch their own mark; the sticky bit keeps one uid from deleting or
 * renaming another uid's files. It grants nothing else: a mark only ever moves an agent's
 * last_active, and a name that is not a pooled agent is ignored (README: Security model).
 */
export const ACTIVITY_DIR_MODE = 0o1777;

/**
 * Creates the activity directories, `activity/` and `shared/activity/` (see SHARED_DIR), with
 * ACTIVITY_DIR_MODE, and gives an existing one (the earlier manager's, root 0755) that mode.
 * Containers can replace them through the `/pool` mount: a symlink or file in their place is moved
 * aside (`activity.not-a-file-<time>`) and a directory made (see openOwnDir), so a container can
 * neither make the daemon chmod what a link points to nor stop it starting; the activity reader
 * reports such a move in the log.
 */
export async function ensureActivityDir(poolDir: string): Promise<void> {
  for (const handle of (await openActivityDirs(poolDir)).handles) await handle.close();
}

/** Where marks are touched: `shared/activity/` (the narrow mount) and `activity/` (the whole-POOL_DIR mount). */
async function openActivityDirs(poolDir: string): Promise<{ handles: FileHandle[]; replaced: string[] }> {
  const top = await openOwnDir(join(poolDir, ACTIVITY_DIR), ACTIVITY_DIR_MODE);
  let shared;
  try {
    shared = await openSharedDir(poolDir);
  } catch (error) {
    await top.handle.close();
    throw error;
  }
  try {
    const inner = await openOwnDir(within(shared.handle, ACTIVITY_DIR), ACTIVITY_DIR_MODE);
    const replaced = [top.replaced, shared.replaced, inner.replaced && `${SHARED_DIR}/${inner.replaced}`].filter((r) => r !== undefined);
    return { handles: [top.handle, inner.handle], replaced };
  } catch (error) {
    await top.handle.close();
    throw error;
  } finally {
    await shared.handle.close();
  }
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
 * Reads `activity/<agent>` and `shared/activity/<agent>` for the pool's agents only: one lstat
 * each, whatever else is in the directory (50,000 planted names cost nothing). lstat: a symlink is not a mark, and its target's
 * time is none of the daemon's business. The names are resolved through a descriptor of the
 * directory (`/proc/self/fd/<fd>/<agent>`), so a symlink planted as `activity` itself is never
 * followed either. Remembers the last mtime of the agents it was last asked about, nothing more.
 */
export function createActivityReader(poolDir: string): ActivityReader {
  let seen = new Map<string, SeenMark>();
  return {
    async read(agents, now) {
      const { handles, replaced } = await openActivityDirs(poolDir);
      // Keyed by directory and agent: a touch in either one counts.
      const current = new Map<string, SeenMark>();
      try {
        await Promise.all(handles.flatMap((dir, n) => agents.map(async (agent) => current.set(`${n}/${agent}`, await mtimeOf(within(dir, agent))))));
      } finally {
        await Promise.all(handles.map((dir) => dir.close()));
      }
      const marks = new Map<string, number>();
      for (const [key, mtime] of current) {
        const agent = key.slice(key.indexOf('/') + 1);
        const at = markActivity(seen.get(key), mtime, now);
        if (at !== undefined) marks.set(agent, Math.max(at, marks.get(agent) ?? at));
      }
      seen = current;
      if (replaced.length > 0) throw new Error(`in ${poolDir}: ${replaced.join('; ')}`);
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

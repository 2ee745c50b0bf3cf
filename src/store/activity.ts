import { constants } from 'node:fs';
import { lstat, mkdir, open, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { AGENT_NAME_PATTERN } from '../contract/index.js';

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
 * manager's, root 0755) that mode. Containers can replace it through the `/pool` mount, so the
 * mode is set through a descriptor opened without following a symlink: a link planted there
 * never makes the daemon chmod what it points to.
 */
export async function ensureActivityDir(poolDir: string): Promise<string> {
  const dir = join(poolDir, ACTIVITY_DIR);
  await mkdir(dir, { recursive: true });
  let handle;
  try {
    handle = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ELOOP' || code === 'ENOTDIR') throw new Error(`${dir} is not a directory (a symlink or a file); remove it so the daemon can recreate it`, { cause: error });
    throw error;
  }
  try {
    if (((await handle.stat()).mode & 0o7777) !== ACTIVITY_DIR_MODE) await handle.chmod(ACTIVITY_DIR_MODE);
  } finally {
    await handle.close();
  }
  return dir;
}

/**
 * Reads the activity marks: the modification time (epoch ms) of each `activity/<agent>` file.
 * A missing directory is recreated and means no marks; files that are not agent names are ignored.
 */
export async function readActivityMarks(poolDir: string): Promise<Map<string, number>> {
  const dir = join(poolDir, ACTIVITY_DIR);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    await ensureActivityDir(poolDir);
    return new Map();
  }
  const marks = new Map<string, number>();
  await Promise.all(
    names
      .filter((name) => AGENT_NAME_PATTERN.test(name))
      .map(async (name) => {
        try {
          // lstat: a symlink is not a mark, and its target's time is none of the daemon's business.
          const info = await lstat(join(dir, name));
          if (info.isFile()) marks.set(name, info.mtimeMs);
        } catch {
          // Removed between readdir and stat: no mark.
        }
      }),
  );
  return marks;
}

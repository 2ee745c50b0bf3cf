import { mkdir, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { AGENT_NAME_PATTERN } from '../contract/index.js';

export const ACTIVITY_DIR = 'activity';

/** Creates `POOL_DIR/activity/`. Containers touch files there through the `/pool` mount, so it is theirs to write. */
export async function ensureActivityDir(poolDir: string): Promise<string> {
  const dir = join(poolDir, ACTIVITY_DIR);
  await mkdir(dir, { recursive: true });
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
          const info = await stat(join(dir, name));
          if (info.isFile()) marks.set(name, info.mtimeMs);
        } catch {
          // Removed between readdir and stat: no mark.
        }
      }),
  );
  return marks;
}

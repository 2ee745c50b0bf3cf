import { join } from 'node:path';
import { openOwnDir } from './regular-file.js';

/**
 * `POOL_DIR/shared/`: all that agents need, `roster.json` and `activity/`, and nothing else, so
 * that it alone can be mounted at `/pool` (README: Security model). The same files are kept at
 * POOL_DIR's top level too, for setups that mount the whole POOL_DIR as the earlier manager's did.
 * A directory, never single files: roster.json is replaced by rename, and a file's bind mount
 * would keep showing the old inode.
 */
export const SHARED_DIR = 'shared';

/** Readable by agents of any uid; only root writes here, apart from activity/. */
const SHARED_DIR_MODE = 0o755;

export function openSharedDir(poolDir: string): ReturnType<typeof openOwnDir> {
  return openOwnDir(join(poolDir, SHARED_DIR), SHARED_DIR_MODE);
}

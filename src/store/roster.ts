import { join } from 'node:path';
import { type RosterFile, type StatusReply, formatWireTime } from '../contract/index.js';
import { coalescingWriter, removeLeftoverTemps, writeFileAtomic } from './atomic.js';
import { within } from './regular-file.js';
import { openSharedDir } from './shared.js';

export const ROSTER_FILE = 'roster.json';

/**
 * Writes `roster.json`, which containers read through their `/pool` mount: in `shared/` (the
 * narrow mount) and at POOL_DIR's top (the whole one; see SHARED_DIR). Atomic so a reader never
 * sees half a file; not fsynced, since it is rewritten from state on every start. The shared copy
 * is written through a descriptor of `shared/`, so a symlink planted as that directory is never
 * followed out of POOL_DIR.
 */
export function createRosterWriter(poolDir: string, heartbeatIntervalSeconds: number, activityMode: 'heartbeat' | 'work' = 'heartbeat') {
  const path = join(poolDir, ROSTER_FILE);
  const inShared = async (write: (sharedPath: string) => Promise<void>) => {
    const { handle, replaced } = await openSharedDir(poolDir);
    try {
      await write(within(handle, ROSTER_FILE));
    } finally {
      await handle.close();
    }
    if (replaced !== undefined) throw new Error(`in ${poolDir}: ${replaced}`);
  };
  let first = true;
  const write = coalescingWriter(async (data) => {
    // Temp files a killed daemon left are cleared before this writer's first write (writes are serialised).
    const clear = first;
    first = false;
    // Side by side, not one after the other: a publish is on the path of every reply that changes the
    // pool. Both settle before the write does, so a failure of one never leaves the other writing.
    const results = await Promise.allSettled([
      (async () => {
        if (clear) await removeLeftoverTemps(path).catch(() => {});
        await writeFileAtomic(path, data, { durable: false });
      })(),
      inShared(async (sharedPath) => {
        if (clear) await removeLeftoverTemps(sharedPath).catch(() => {});
        await writeFileAtomic(sharedPath, data, { durable: false });
      }),
    ]);
    for (const result of results) if (result.status === 'rejected') throw result.reason;
  });
  return {
    path,
    write(status: StatusReply, now: number): Promise<void> {
      const roster: RosterFile = { ...status, heartbeat_interval: heartbeatIntervalSeconds, activity_mode: activityMode, updated_at: formatWireTime(now) };
      return write(`${JSON.stringify(roster)}\n`);
    },
  };
}

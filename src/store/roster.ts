import { join } from 'node:path';
import { type RosterFile, type StatusReply, formatWireTime } from '../contract/index.js';
import { coalescingWriter, removeLeftoverTemps, writeFileAtomic } from './atomic.js';

export const ROSTER_FILE = 'roster.json';

/**
 * Writes `roster.json`, which containers read through their read-only `/pool` mount. Atomic so a
 * reader never sees half a file; not fsynced, since it is rewritten from state on every start.
 */
export function createRosterWriter(poolDir: string, heartbeatIntervalSeconds: number) {
  const path = join(poolDir, ROSTER_FILE);
  // Temp files a killed daemon left are cleared now, before this writer's first write (which waits for it).
  const cleared = removeLeftoverTemps(path).catch(() => {});
  const write = coalescingWriter(async (data) => {
    await cleared;
    await writeFileAtomic(path, data, { durable: false });
  });
  return {
    path,
    write(status: StatusReply, now: number): Promise<void> {
      const roster: RosterFile = { ...status, heartbeat_interval: heartbeatIntervalSeconds, updated_at: formatWireTime(now) };
      return write(`${JSON.stringify(roster)}\n`);
    },
  };
}

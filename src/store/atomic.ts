import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { lstat, open, readdir, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { NotRegularFileError, describeKind, moveAside, openRegular } from './regular-file.js';

/** The prefix of the temporary files `writeFileAtomic` leaves behind if the process dies mid-write. */
export function tempPrefix(path: string): string {
  return `${basename(path)}.tmp-`;
}

/**
 * Removes the temp files of `path` that a process killed mid-write left beside it (readers never
 * look at them, but each crash would leave one more). Only for the writer that owns `path`, before
 * its first write: it must not race a live writer's temp file.
 */
export async function removeLeftoverTemps(path: string): Promise<void> {
  const dir = dirname(path);
  const prefix = tempPrefix(path);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  for (const name of names) {
    if (name.startsWith(prefix)) await unlink(join(dir, name)).catch(() => {});
  }
}

/**
 * Replaces `path` so that a reader, or a crash at any moment, sees the old file or the new one and
 * never a torn one: write a temp file beside it, fsync it, rename it over, fsync the directory.
 * With `durable: false` the fsyncs are skipped: still atomic for readers, not across a power cut.
 * The file has `mode` from its first byte (the temp file is made with it), so a secret is never
 * readable by others, not even for the moment between create and chmod.
 *
 * Containers may write in the directory: the temp name is unguessable and created exclusively
 * (O_CREAT|O_EXCL never opens an existing name, a planted symlink included), and a `path` that is
 * not a regular file (a directory would make the rename fail for ever) is moved aside and reported
 * as NotRegularFileError; the next write then succeeds.
 */
export async function writeFileAtomic(path: string, data: string, { durable = true, mode = 0o644 } = {}): Promise<void> {
  const temp = `${dirname(path)}/${tempPrefix(path)}${randomBytes(12).toString('hex')}`;
  const target = await lstat(path).catch(() => undefined);
  if (target !== undefined && !target.isFile()) throw new NotRegularFileError(path, describeKind(target), await moveAside(path));
  const file = await openRegular(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, mode);
  try {
    try {
      await file.writeFile(data);
      if (durable) await file.sync();
    } finally {
      await file.close();
    }
    await rename(temp, path);
  } catch (error) {
    await unlink(temp).catch(() => {});
    throw error;
  }
  if (durable) {
    const dir = await open(dirname(path), constants.O_RDONLY | constants.O_DIRECTORY);
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  }
}

/**
 * Serialises writes of one file and coalesces bursts: while a write is in flight, later calls share
 * one follow-up write of the newest data. Each returned promise settles once data at least as new as
 * its own is on disk, so "durable before the reply" holds without one write per change.
 */
export function coalescingWriter(write: (data: string) => Promise<void>): (data: string) => Promise<void> {
  let inFlight: Promise<void> | undefined;
  let queued: { data: string; done: Promise<void> } | undefined;
  const run = (data: string): Promise<void> => {
    const current = write(data).finally(() => {
      if (inFlight === current) inFlight = undefined;
    });
    inFlight = current;
    return current;
  };
  return (data) => {
    if (queued !== undefined) {
      queued.data = data;
      return queued.done;
    }
    if (inFlight === undefined) return run(data);
    const slot: { data: string; done: Promise<void> } = { data, done: Promise.resolve() };
    slot.done = inFlight
      .catch(() => {})
      .then(() => {
        queued = undefined;
        return run(slot.data);
      });
    queued = slot;
    return slot.done;
  };
}

import { type Stats, constants } from 'node:fs';
import { type FileHandle, mkdir, open, rename } from 'node:fs/promises';
import { basename } from 'node:path';

/**
 * Containers can write under POOL_DIR (README: Security model), so any name there may have become
 * a symlink, a FIFO, a directory or a device by the time the daemon opens it. Every open of a file
 * under POOL_DIR therefore: never follows a final symlink (O_NOFOLLOW: a link to a host file is
 * not a way to make root write it), never blocks (O_NONBLOCK: opening a FIFO would wait for a
 * writer or reader forever, on a libuv worker thread), and is checked on the descriptor (fstat)
 * to be a regular file before a byte is read or written.
 */
const SAFE_FLAGS = constants.O_NOFOLLOW | constants.O_NONBLOCK;

/** What was found where a regular file was expected; moved aside, it no longer stands in the way. */
export class NotRegularFileError extends Error {
  constructor(
    readonly path: string,
    readonly found: string,
    readonly movedTo: string | undefined,
  ) {
    super(
      `${basename(path)} is ${found}, not a regular file; ${movedTo === undefined ? 'it could not be moved aside' : `moved it to ${basename(movedTo)} beside it`}`,
    );
    this.name = 'NotRegularFileError';
  }
}

/**
 * Opens `path` with `flags` (O_RDONLY, O_WRONLY|O_APPEND|O_CREAT, …) as a regular file, or moves
 * what is there aside (`<path>.not-a-file-<time>`) and throws NotRegularFileError. ENOENT and
 * other errors are thrown as they are.
 */
export async function openRegular(path: string, flags: number, mode = 0o644): Promise<FileHandle> {
  let handle: FileHandle;
  try {
    handle = await open(path, flags | SAFE_FLAGS, mode);
  } catch (error) {
    const found = foundBy((error as NodeJS.ErrnoException).code);
    if (found === undefined) throw error;
    throw new NotRegularFileError(path, found, await moveAside(path));
  }
  const info = await handle.stat();
  if (info.isFile()) return handle;
  await handle.close();
  throw new NotRegularFileError(path, describeKind(info), await moveAside(path));
}

/** What `readRegularFile` found: the file's text and its fstat, or what stands where it was looked for. */
export type RegularFileRead =
  | { readonly found: 'file'; readonly text: string; readonly info: Stats }
  | { readonly found: 'nothing' | 'a symlink' | 'not a regular file' };

/**
 * Reads `path` only if it is a regular file, never through a final symlink and never blocking on a
 * FIFO (SAFE_FLAGS), checked on the descriptor: the file read is the file whose fstat is returned.
 * Unlike `openRegular`, nothing is moved aside; the caller decides what a refusal means. Other
 * errors (EACCES) are thrown as they are.
 */
export async function readRegularFile(path: string): Promise<RegularFileRead> {
  let handle: FileHandle;
  try {
    handle = await open(path, constants.O_RDONLY | SAFE_FLAGS);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { found: 'nothing' };
    if (code === 'ELOOP') return { found: 'a symlink' };
    throw error;
  }
  try {
    const info = await handle.stat();
    return info.isFile() ? { found: 'file', text: await handle.readFile('utf8'), info } : { found: 'not a regular file' };
  } finally {
    await handle.close();
  }
}

/** The open errors that mean "something other than a regular file is there". */
function foundBy(code: string | undefined): string | undefined {
  switch (code) {
    case 'ELOOP': // O_NOFOLLOW on a symlink
      return 'a symlink';
    case 'EISDIR':
      return 'a directory';
    case 'ENXIO': // O_WRONLY|O_NONBLOCK on a FIFO nobody reads, or a socket
      return 'a FIFO or a socket';
    default:
      return undefined;
  }
}

/** What an lstat or fstat found, in words for the log. */
export function describeKind(info: Stats): string {
  if (info.isSymbolicLink()) return 'a symlink';
  if (info.isFIFO()) return 'a FIFO';
  if (info.isDirectory()) return 'a directory';
  if (info.isSocket()) return 'a socket';
  if (info.isCharacterDevice() || info.isBlockDevice()) return 'a device';
  return 'not a file';
}

const DIR_FLAGS = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/**
 * Opens the directory `name` of `parent` itself (a path, or an open directory: see `within`),
 * making it if missing, with `mode` set through the descriptor: never a symlink's target, so a
 * link planted there never makes the daemon chmod or write what it points to. A symlink or file
 * in its place is moved aside and a directory made; `replaced` then says so, for the log.
 */
export async function openOwnDir(path: string, mode: number): Promise<{ handle: FileHandle; replaced: string | undefined }> {
  await mkdir(path, { recursive: true }).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'EEXIST') throw error;
  });
  let replaced: string | undefined;
  const handle = await open(path, DIR_FLAGS).catch(async (error: NodeJS.ErrnoException) => {
    if (error.code !== 'ELOOP' && error.code !== 'ENOTDIR') throw error;
    const movedTo = await moveAside(path);
    replaced = `${basename(path)} was not a directory (a symlink or a file): moved it to ${movedTo === undefined ? '(it could not be moved)' : basename(movedTo)} and made a directory`;
    await mkdir(path);
    return open(path, DIR_FLAGS);
  });
  try {
    if (((await handle.stat()).mode & 0o7777) !== mode) await handle.chmod(mode);
  } catch (error) {
    await handle.close();
    throw error;
  }
  return { handle, replaced };
}

/**
 * The path of `name` inside an open directory, resolved by the kernel from the descriptor (the
 * `*at()` calls Node lacks): a symlink planted in place of the directory since it was opened, or
 * of any directory above it, is never followed.
 */
export function within(dir: FileHandle, name: string): string {
  return `/proc/self/fd/${dir.fd}/${name}`;
}

/** rename() never follows a symlink: the link itself, or the FIFO, moves. Undefined when it cannot be moved. */
export async function moveAside(path: string): Promise<string | undefined> {
  const to = `${path}.not-a-file-${compactTime(Date.now())}`;
  return rename(path, to).then(
    () => to,
    () => undefined,
  );
}

/** `20261201T223015Z`: a time that sorts and fits a file name. */
export function compactTime(epochMs: number): string {
  return new Date(epochMs).toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
}

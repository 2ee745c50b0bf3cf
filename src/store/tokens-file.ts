import { ConfigError } from '../contract/env-file.js';
import { writeFileAtomic } from './atomic.js';
import { readRegularFile } from './regular-file.js';

/** Owner read and write only: anyone else who can read the file can be any agent, or the host. */
const TOKENS_FILE_MODE = 0o600;

/**
 * POOL_TOKENS_FILE's text, or undefined when there is no such file. Refused, as ssh refuses a
 * private key others may read: a mode with any group or other bit, an owner other than root or
 * this process's user, a symlink (whoever may change the link chooses the tokens; the writer
 * would replace the link, not its target), anything but a regular file.
 */
export async function readTokensFile(path: string): Promise<string | undefined> {
  const refuse = (what: string) => new ConfigError([`POOL_TOKENS_FILE ${path}: ${what}`]);
  const read = await readRegularFile(path).catch((error: NodeJS.ErrnoException) => {
    throw refuse(`cannot read it (${error.code === 'EACCES' ? 'permission denied' : error.message})`);
  });
  if (read.found === 'nothing') return undefined;
  if (read.found === 'a symlink') throw refuse('is a symlink; point POOL_TOKENS_FILE at the file itself');
  if (read.found !== 'file') throw refuse('is not a regular file');
  const { info } = read;
  const uid = process.getuid?.();
  if (info.uid !== 0 && info.uid !== uid) throw refuse(`owned by uid ${info.uid}, neither root nor this user (uid ${uid}); chown it to root`);
  if ((info.mode & 0o077) !== 0) {
    const mode = (info.mode & 0o777).toString(8).padStart(4, '0');
    throw refuse(`mode ${mode}: its group or others may read or change it, and so pass for any agent in it; run chmod 600 ${path}`);
  }
  return read.text;
}

/** Replaces POOL_TOKENS_FILE atomically (a reload reads the old file or the new, never half of one), mode 0600 from its first byte. */
export function writeTokensFile(path: string, text: string): Promise<void> {
  return writeFileAtomic(path, text, { mode: TOKENS_FILE_MODE });
}

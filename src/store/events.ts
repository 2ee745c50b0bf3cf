import { constants } from 'node:fs';
import { lstat, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { PoolEvent, parseWireTime } from '../contract/index.js';
import { NotRegularFileError, openRegular } from './regular-file.js';

export const EVENTS_FILE = 'events.jsonl';

export interface EventLogLimits {
  /** The live file is rotated before an append would take it past this size. */
  readonly maxBytes: number;
  /** Rotated files kept (`events.jsonl.1` newest … `.N` oldest); older ones are dropped. */
  readonly keep: number;
}

/** The pool's event log: `POOL_DIR/events.jsonl` and its rotated files. */
export interface EventLog {
  /** The live file. */
  readonly path: string;
  /** Appends the event after every one appended before it; never rejects (a failure goes to `onError`). */
  append(event: PoolEvent): Promise<void>;
  /** Settles once every append made so far is done (a stopping daemon waits for it: nothing is written after it stops). */
  settled(): Promise<void>;
  /** Queries the log once every append made so far is on disk, so an answer never misses a decision just taken. */
  read(query: EventQuery): Promise<EventQueryResult>;
}

/**
 * Appends events to `POOL_DIR/events.jsonl`, one JSON object a line, in the order they happened,
 * and rotates it by size so a busy pool (pool_full answers can come by the thousand) never fills
 * the disk. Appends are chained so lines never interleave and rotation never races an append; a
 * failed append is reported, never thrown at the caller (the event has already happened and was
 * logged to stdout).
 */
export function createEventLog(poolDir: string, limits: EventLogLimits, onError: (error: unknown) => void): EventLog {
  const path = join(poolDir, EVENTS_FILE);
  /** Size of the live file as last known; read from disk before the first append. */
  let size: number | undefined;
  let tail: Promise<void> = Promise.resolve();

  async function appendLine(line: string): Promise<void> {
    // lstat: the size of what a symlink points to is not this log's; the open below refuses the link.
    size ??= await lstat(path).then((s) => s.size, () => 0);
    const bytes = Buffer.byteLength(line);
    if (size > 0 && size + bytes > limits.maxBytes) {
      await rotate(path, limits.keep);
      size = 0;
    }
    // A symlink, FIFO or directory planted here is moved aside and this event reported lost; the next one starts a new file.
    const file = await openRegular(path, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT);
    try {
      await file.write(line);
    } finally {
      await file.close();
    }
    size += bytes;
  }

  return {
    path,
    append(event) {
      tail = tail
        .then(() => appendLine(`${JSON.stringify(event)}\n`))
        .catch((error: unknown) => {
          // The size may be wrong after a failure (file removed, disk full): read it again next time.
          size = undefined;
          onError(error);
        });
      return tail;
    },
    settled() {
      return tail;
    },
    async read(query) {
      await tail;
      return readEvents(poolDir, limits.keep, query, onError);
    },
  };
}

/** `events.jsonl` → `.1` → `.2` …; the oldest beyond `keep` is overwritten by the rename before it. */
async function rotate(path: string, keep: number): Promise<void> {
  for (let n = keep - 1; n >= 1; n--) await renameIfPresent(`${path}.${n}`, `${path}.${n + 1}`);
  if (keep >= 1) await renameIfPresent(path, `${path}.1`);
  else await renameIfPresent(path, `${path}.discarded`);
}

async function renameIfPresent(from: string, to: string): Promise<void> {
  try {
    await rename(from, to);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}

export interface EventQuery {
  /** Epoch ms: only events at or after it. */
  readonly since?: number;
  readonly agent?: string;
  /** At most this many, the newest ones. */
  readonly limit: number;
}

export interface EventQueryResult {
  /** Oldest first. */
  readonly events: PoolEvent[];
  /** Lines that were not events (a torn last line after a crash, hand edits); skipped, counted. */
  readonly skipped: number;
}

/**
 * Reads the log, rotated files included, newest file first, and stops as soon as older files
 * cannot change the answer: the limit is reached, or a file began before `since`. A file that is
 * not a regular one is moved aside, reported to `onRefused` and read as absent.
 */
export async function readEvents(poolDir: string, keep: number, query: EventQuery, onRefused: (error: NotRegularFileError) => void = () => {}): Promise<EventQueryResult> {
  const path = join(poolDir, EVENTS_FILE);
  const files = [path, ...Array.from({ length: keep }, (_, i) => `${path}.${i + 1}`)];
  const newerFirst: PoolEvent[][] = [];
  let found = 0;
  let skipped = 0;
  for (const file of files) {
    const read = await readFile(file, query).catch((error: unknown) => {
      if (!(error instanceof NotRegularFileError)) throw error;
      onRefused(error);
      return undefined;
    });
    if (read === undefined) continue;
    skipped += read.skipped;
    newerFirst.push(read.matches);
    found += read.matches.length;
    if (found >= query.limit || (query.since !== undefined && read.firstTime !== undefined && read.firstTime < query.since)) break;
  }
  const events = newerFirst.reverse().flat();
  return { events: events.slice(Math.max(0, events.length - query.limit)), skipped };
}

async function readFile(
  file: string,
  query: EventQuery,
): Promise<{ matches: PoolEvent[]; skipped: number; firstTime: number | undefined } | undefined> {
  let handle;
  try {
    handle = await openRegular(file, constants.O_RDONLY);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const stream = handle.createReadStream({ encoding: 'utf8' });
  const matches: PoolEvent[] = [];
  let skipped = 0;
  let firstTime: number | undefined;
  for await (const line of createInterface({ input: stream, crlfDelay: Infinity })) {
    if (line === '') continue;
    const event = parseEventLine(line);
    if (event === undefined) {
      skipped++;
      continue;
    }
    firstTime ??= event.at;
    if (query.since !== undefined && event.at < query.since) continue;
    if (query.agent !== undefined && event.event.agent !== query.agent && event.event.for !== query.agent) continue;
    matches.push(event.event);
  }
  // Only the newest `limit` of a file can be in the answer.
  return { matches: matches.slice(Math.max(0, matches.length - query.limit)), skipped, firstTime };
}

function parseEventLine(line: string): { event: PoolEvent; at: number } | undefined {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return undefined;
  }
  const parsed = PoolEvent.safeParse(value);
  if (!parsed.success) return undefined;
  const at = parseWireTime(parsed.data.time);
  return at === undefined ? undefined : { event: parsed.data, at };
}

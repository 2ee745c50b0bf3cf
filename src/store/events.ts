import { appendFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { PoolEvent } from '../contract/index.js';

export const EVENTS_FILE = 'events.jsonl';

/**
 * Appends events to `POOL_DIR/events.jsonl`, one JSON object a line, in the order they happened.
 * Appends are chained so lines never interleave; a failed append is reported, never thrown at the
 * caller (the event has already happened and was logged to stdout).
 */
export function createEventLog(poolDir: string, onError: (error: unknown) => void) {
  const path = join(poolDir, EVENTS_FILE);
  let tail: Promise<void> = Promise.resolve();
  return {
    path,
    append(event: PoolEvent): Promise<void> {
      tail = tail.then(() => appendFile(path, `${JSON.stringify(event)}\n`)).catch(onError);
      return tail;
    },
  };
}

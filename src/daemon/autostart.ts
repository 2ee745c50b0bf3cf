import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type PoolService, parseAutostart } from '../core/index.js';
import { type Logger, describeError } from './log.js';

export const AUTOSTART_FILE = 'autostart.txt';

/**
 * Starts the agents POOL_DIR/autostart.txt names, one after the other, evicting nobody (the core
 * plans which: known, not infrastructure, not running, while slots last). A missing file is no
 * list; a bad line is reported and skipped.
 */
export async function autostart(pool: PoolService, poolDir: string, log: Logger, signal: AbortSignal): Promise<void> {
  let text: string;
  try {
    text = await readFile(join(poolDir, AUTOSTART_FILE), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') log.error(`error reading ${AUTOSTART_FILE}: ${describeError(error)}`);
    return;
  }
  const list = parseAutostart(text);
  for (const { line, text: bad } of list.invalid) log.error(`${AUTOSTART_FILE}:${line}: ${JSON.stringify(bad)} is not a valid agent name; skipped`);
  const plan = pool.planAutostart(list.agents);
  for (const { agent, reason } of plan.skipped) log.info(`autostart: skipping ${agent} (${reason})`);
  for (const agent of plan.start) {
    if (signal.aborted) return;
    try {
      await pool.request(agent, 'autostart', { allowEvict: false });
    } catch (error) {
      log.error(`autostart: ${agent} not started: ${describeError(error)}`);
    }
  }
}

import { readFile, readdir, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { AGENT_NAME_PATTERN } from '../contract/names.js';
import { ProcessPidFile, ProcessRosterFile } from '../contract/process-roster.js';
import { DriverError } from '../contract/errors.js';
import { writeFileAtomic } from '../store/atomic.js';
import { errorCode } from './process-group.js';

const PID_SUFFIX = '.pid';

/** The process driver's `stateDir/<agent>.pid` files: what a restarted daemon knows of the agents an earlier one started. */
export interface PidFiles {
  /** The agent's pid file, if there is one; `record` is undefined when the file is torn or was edited by hand. */
  read(agent: string): Promise<{ record: ProcessPidFile | undefined; writtenAt: number } | undefined>;
  write(agent: string, record: ProcessPidFile): Promise<void>;
  /** Removes the pid file if it still names `record` (a start racing this stop may have replaced it). */
  remove(agent: string, record: ProcessPidFile | undefined): Promise<void>;
  /** The agents that have a pid file; none when `stateDir` does not exist yet. */
  agents(): Promise<string[]>;
}

export function createPidFiles(stateDir: string): PidFiles {
  const pidPath = (agent: string) => join(stateDir, `${agent}${PID_SUFFIX}`);

  const read: PidFiles['read'] = async (agent) => {
    const path = pidPath(agent);
    let text: string;
    let writtenAt: number;
    try {
      [text, writtenAt] = await Promise.all([readFile(path, 'utf8'), stat(path).then((s) => s.mtimeMs)]);
    } catch (error) {
      if (errorCode(error) === 'ENOENT') return undefined;
      throw new DriverError(`cannot read ${path}: ${(error as Error).message}`, [], undefined, '', { cause: error });
    }
    const parsed = ProcessPidFile.safeParse(parseJson(text));
    return { record: parsed.success ? parsed.data : undefined, writtenAt: Math.round(writtenAt) };
  };

  return {
    read,
    // Not fsynced: after a power cut the process is gone too.
    write: (agent, record) => writeFileAtomic(pidPath(agent), `${JSON.stringify(record)}\n`, { durable: false }),
    async remove(agent, record) {
      const current = (await read(agent))?.record;
      if (current?.pid !== record?.pid || current?.startTime !== record?.startTime) return;
      await unlink(pidPath(agent)).catch((error: unknown) => {
        if (errorCode(error) !== 'ENOENT') throw error;
      });
    },
    async agents() {
      let entries: string[];
      try {
        entries = await readdir(stateDir);
      } catch (error) {
        if (errorCode(error) === 'ENOENT') return [];
        throw new DriverError(`cannot list ${stateDir}: ${(error as Error).message}`, [], undefined, '', { cause: error });
      }
      return entries
        .filter((name) => name.endsWith(PID_SUFFIX))
        .map((name) => name.slice(0, -PID_SUFFIX.length))
        .filter((agent) => AGENT_NAME_PATTERN.test(agent));
    },
  };
}

/** Reads and validates a process roster; any problem is a `DriverError` naming the file and what is wrong. */
export async function loadProcessRoster(path: string): Promise<ProcessRosterFile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw rosterError(path, `cannot be read: ${(error as Error).message}`, error);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw rosterError(path, `is not valid JSON: ${(error as Error).message}`, error);
  }
  const parsed = ProcessRosterFile.safeParse(json);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${formatPath(issue.path)}${issue.message}`);
    throw rosterError(path, `is invalid: ${problems.join('; ')}`, parsed.error);
  }
  return parsed.data;
}

function rosterError(path: string, problem: string, cause: unknown): DriverError {
  return new DriverError(`process roster ${path} ${problem}`, [], undefined, problem, { cause });
}

/** `agents.ceo.command: `, `agents["bad name"]: `, or nothing for the top level. */
function formatPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return '';
  let text = '';
  for (const key of path) {
    if (typeof key === 'number') text += `[${key}]`;
    else if (typeof key === 'string' && /^[A-Za-z_$][\w$]*$/.test(key)) text += text === '' ? key : `.${key}`;
    else text += `[${JSON.stringify(String(key))}]`;
  }
  return `${text}: `;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

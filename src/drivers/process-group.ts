import { readFileSync } from 'node:fs';
import { readFile, readdir } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ProcessPidFile } from '../contract/process-roster.js';
import { DriverError } from '../contract/errors.js';

/** How often a stop looks whether the agent is gone yet. */
const STOP_POLL_MS = 50;
/** After SIGKILL, how long the kernel gets to take the processes down before the stop fails. */
const KILL_CONFIRM_MS = 5_000;
/** `/proc/<pid>/stat` states of a process that has exited: zombie (not yet reaped) and dead. */
const EXITED_STATES = new Set(['Z', 'X', 'x']);

interface ProcStat {
  readonly state: string;
  readonly pgrp: number;
  /** Field 22: when the process started, in clock ticks after boot. */
  readonly startTime: number;
}

/** `/proc/<pid>/stat` fields after the command name, which is in parentheses and may itself hold spaces or parentheses. */
function parseStat(text: string): ProcStat | undefined {
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 of proc(5).
  const [state, pgrp, startTime] = [fields[0], Number(fields[2]), Number(fields[19])];
  if (state === undefined || !Number.isInteger(pgrp) || !Number.isInteger(startTime)) return undefined;
  return { state, pgrp, startTime };
}

async function readStat(pid: number): Promise<ProcStat | undefined> {
  try {
    return parseStat(await readFile(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return undefined;
  }
}

/** The kernel start time of `pid`, read synchronously (a caller that must not yield to the event loop). */
export function readStartTimeSync(pid: number): number | undefined {
  try {
    return parseStat(readFileSync(`/proc/${pid}/stat`, 'utf8'))?.startTime;
  } catch {
    return undefined;
  }
}

/** The recorded process is alive: its pid exists, has the recorded start time, and has not exited (a zombie has). */
export async function isAlive(record: ProcessPidFile): Promise<boolean> {
  const stat = await readStat(record.pid);
  return stat !== undefined && stat.startTime === record.startTime && !EXITED_STATES.has(stat.state);
}

/**
 * Some process other than a zombie is still in the group. `kill(-pgid, 0)` answers cheaply when the
 * group is empty, but counts zombies (an orphan's may linger until init reaps it), so a yes is
 * checked against /proc.
 */
async function groupAlive(pgid: number): Promise<boolean> {
  try {
    process.kill(-pgid, 0);
  } catch (error) {
    if (errorCode(error) === 'ESRCH') return false;
  }
  let entries: string[];
  try {
    entries = await readdir('/proc');
  } catch {
    return true;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readStat(Number(entry));
    if (stat !== undefined && stat.pgrp === pgid && !EXITED_STATES.has(stat.state)) return true;
  }
  return false;
}

/**
 * Signals the agent's process group; the caller has checked that `pid` is still the agent. Falls
 * back to the process alone if it has left its group (setsid), and a process already gone is fine.
 */
export function signalGroup(pid: number, signal: NodeJS.Signals): void {
  for (const target of [-pid, pid]) {
    try {
      process.kill(target, signal);
      return;
    } catch (error) {
      const code = errorCode(error);
      if (code === 'ESRCH') continue;
      throw new DriverError(`cannot send ${signal} to pid ${pid}: ${(error as Error).message}`, ['kill', `-${signal}`, String(target)], undefined, '', {
        cause: error,
      });
    }
  }
}

/**
 * Waits until the agent's process group has no live member left, for at most `timeoutMs`.
 * The group, not only its leader: a `sh -c` leader dies on SIGTERM at once while the program it
 * runs may still be shutting down gracefully.
 */
async function waitGone(record: ProcessPidFile, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (!(await isAlive(record)) && !(await groupAlive(record.pid))) return true;
    if (performance.now() >= deadline) return false;
    await sleep(Math.min(STOP_POLL_MS, Math.max(1, deadline - performance.now())));
  }
}

/**
 * Takes the live recorded process's group down: SIGTERM, `timeoutMs` for it to go, then SIGKILL.
 * Resolves once no member is left; throws when the group outlives the kill.
 */
export async function terminateGroup(agent: string, record: ProcessPidFile, timeoutMs: number): Promise<void> {
  signalGroup(record.pid, 'SIGTERM');
  if (await waitGone(record, timeoutMs)) return;
  // Still the same group: its leader was verified at the last poll, or it pins the pgid while any member lives.
  signalGroup(record.pid, 'SIGKILL');
  if (await waitGone(record, KILL_CONFIRM_MS)) return;
  throw new DriverError(`${agent} (pid ${record.pid}) is still running ${KILL_CONFIRM_MS} ms after SIGKILL`, ['kill', '-KILL', `-${record.pid}`], undefined, '');
}

export function errorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}

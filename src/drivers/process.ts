import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, open, readFile, readdir, stat, unlink } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { AGENT_NAME_PATTERN } from '../contract/names.js';
import { type ProcessAgentSpec, ProcessPidFile, ProcessRosterFile } from '../contract/process-roster.js';
import type { AgentDriver } from '../core/driver.js';
import { DriverError } from '../core/errors.js';
import type { ObservedAgent } from '../core/reconcile.js';
import { writeFileAtomic } from '../store/atomic.js';

export { ProcessAgentSpec, ProcessPidFile, ProcessRosterFile } from '../contract/process-roster.js';

export interface ProcessDriverOptions {
  /** The roster file (JSON, see `ProcessRosterFile`); re-read on every call, so edits take effect without a restart. */
  readonly rosterPath: string;
  /** Where `<agent>.pid` files and `logs/<agent>.log` live; must outlive the daemon, since the agents do. */
  readonly stateDir: string;
}

/** A process still there this long after it was spawned counts as started. */
const START_CONFIRM_MS = 200;
/** How often a stop looks whether the agent is gone yet. */
const STOP_POLL_MS = 50;
/** After SIGKILL, how long the kernel gets to take the processes down before the stop fails. */
const KILL_CONFIRM_MS = 5_000;
/** How much of an agent's log a failed start reports. */
const LOG_TAIL_BYTES = 4_096;
/** Lines of that tail put in the error message itself. */
const MESSAGE_TAIL_LINES = 5;

const PID_SUFFIX = '.pid';
/** `/proc/<pid>/stat` states of a process that has exited: zombie (not yet reaped) and dead. */
const EXITED_STATES = new Set(['Z', 'X', 'x']);

/**
 * Runs each agent as a local child process in its own process group (Linux: it reads `/proc`).
 * The agents outlive the daemon: each is spawned detached, its output appended to
 * `stateDir/logs/<agent>.log`, and recorded in `stateDir/<agent>.pid` with its kernel start time,
 * so a restarted daemon finds, lists and stops what an earlier one started, and a pid the kernel
 * has since reused for another process is never taken for the agent (nor signalled).
 */
export function createProcessDriver(options: ProcessDriverOptions) {
  const rosterPath = resolve(options.rosterPath);
  const rosterDir = dirname(rosterPath);
  const stateDir = resolve(options.stateDir);
  const logDir = join(stateDir, 'logs');
  const pidPath = (agent: string) => join(stateDir, `${agent}${PID_SUFFIX}`);
  /** Starts in flight in this driver, so two concurrent starts of one agent spawn it once. */
  const starting = new Map<string, Promise<void>>();

  /** The agent's pid file, if there is one; `record` is undefined when the file is torn or was edited by hand. */
  const readRecord = async (agent: string): Promise<{ record: ProcessPidFile | undefined; writtenAt: number } | undefined> => {
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

  /** Removes the pid file if it still names `record` (a start racing this stop may have replaced it). */
  const removeRecord = async (agent: string, record: ProcessPidFile | undefined) => {
    const current = (await readRecord(agent))?.record;
    if (current?.pid !== record?.pid || current?.startTime !== record?.startTime) return;
    await unlink(pidPath(agent)).catch((error: unknown) => {
      if (errorCode(error) !== 'ENOENT') throw error;
    });
  };

  const startNow = async (agent: string): Promise<void> => {
    const roster = await loadProcessRoster(rosterPath);
    const spec: ProcessAgentSpec | undefined = Object.hasOwn(roster.agents, agent) ? roster.agents[agent] : undefined;
    if (spec === undefined) {
      const known = Object.keys(roster.agents).join(', ') || '(none)';
      throw new DriverError(`unknown agent ${JSON.stringify(agent)}: not in ${rosterPath} (known: ${known})`, [], undefined, '');
    }
    const current = await readRecord(agent);
    if (current?.record !== undefined && (await isAlive(current.record))) return;

    const argv = spec.command;
    const [file, ...args] = argv as [string, ...string[]];
    const cwd = resolve(rosterDir, spec.cwd ?? '.');
    // spawn reports a missing cwd as the command's ENOENT; say which it is.
    const cwdStat = await stat(cwd).catch(() => undefined);
    if (!cwdStat?.isDirectory()) {
      throw new DriverError(`cannot start ${agent}: its cwd ${cwd} is not a directory (${rosterPath})`, argv, undefined, '');
    }

    await mkdir(logDir, { recursive: true });
    const logPath = join(logDir, `${agent}.log`);
    const log = await open(logPath, 'a', 0o644);
    let logFrom: number;
    let launched: Launched;
    try {
      logFrom = (await log.stat()).size;
      launched = launch(file, args, { cwd, env: { ...process.env, ...spec.env, AGENT_ID: agent }, logFd: log.fd });
    } catch (error) {
      // spawn() throws, rather than emits, the failures it does not expect (E2BIG, a NUL in an argument, ...).
      throw spawnError(agent, argv, error as Error, rosterPath);
    } finally {
      await log.close();
    }
    const { child, exited, spawned } = launched;
    const failure = await spawned;
    if (failure !== undefined || child.pid === undefined) throw spawnError(agent, argv, failure, rosterPath);
    const startTime = launched.startTime;
    const pid = child.pid;
    if (startTime === undefined) throw new DriverError(`cannot read /proc/${pid}/stat for ${agent}`, argv, undefined, '');
    const record: ProcessPidFile = { pid, startTime };
    try {
      // Not fsynced: after a power cut the process is gone too.
      await writeFileAtomic(pidPath(agent), `${JSON.stringify(record)}\n`, { durable: false });
    } catch (error) {
      // Unrecorded, no later stop could find it: do not leave it running.
      try {
        signalGroup(pid, 'SIGKILL');
      } catch {
        // The write's failure is the one to report.
      }
      throw new DriverError(`cannot record ${agent}'s pid: ${(error as Error).message}`, argv, undefined, '', { cause: error });
    }

    let ended = await Promise.race([exited, sleep(START_CONFIRM_MS).then(() => undefined)]);
    // The exit event may lag the exit itself; /proc has the last word.
    if (ended === undefined && !(await isAlive(record))) ended = await Promise.race([exited, sleep(1_000).then(() => undefined)]);
    if (ended === undefined && (await isAlive(record))) return;

    await removeRecord(agent, record);
    const tail = await readTail(logPath, logFrom);
    const how = ended === undefined ? 'exited' : ended.signal !== null ? `was killed by ${ended.signal}` : `exited with code ${ended.code}`;
    const said = tail.split('\n').filter((l) => l.trim() !== '').slice(-MESSAGE_TAIL_LINES).join('\n');
    throw new DriverError(
      `${agent} ${how} within ${START_CONFIRM_MS} ms of starting${said ? `:\n${said}` : ' (no output)'}`,
      argv,
      ended?.code ?? undefined,
      tail,
    );
  };

  /**
   * Waits until the agent's process group has no live member left, for at most `timeoutMs`.
   * The group, not only its leader: a `sh -c` leader dies on SIGTERM at once while the program it
   * runs may still be shutting down gracefully.
   */
  const waitGone = async (record: ProcessPidFile, timeoutMs: number): Promise<boolean> => {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      if (!(await isAlive(record)) && !(await groupAlive(record.pid))) return true;
      if (performance.now() >= deadline) return false;
      await sleep(Math.min(STOP_POLL_MS, Math.max(1, deadline - performance.now())));
    }
  };

  const driver = {
    /** The roster's agent names. */
    async services() {
      return Object.keys((await loadProcessRoster(rosterPath)).agents);
    },

    start(agent: string): Promise<void> {
      const inFlight = starting.get(agent);
      if (inFlight !== undefined) return inFlight;
      const started = startNow(agent).finally(() => starting.delete(agent));
      starting.set(agent, started);
      return started;
    },

    async stop(agent: string, timeoutMs: number) {
      // Not looked up in the roster: an agent removed from it while running must still be stoppable.
      if (!AGENT_NAME_PATTERN.test(agent)) return;
      const current = await readRecord(agent);
      if (current === undefined) return;
      const { record } = current;
      // Checked before any signal: a stale pid file's pid may belong to someone else by now, and a
      // torn one names no process we could have started.
      if (record === undefined || !(await isAlive(record))) {
        await removeRecord(agent, record);
        return;
      }
      signalGroup(record.pid, 'SIGTERM');
      if (!(await waitGone(record, timeoutMs))) {
        // Still the same group: its leader was verified at the last poll, or it pins the pgid while any member lives.
        signalGroup(record.pid, 'SIGKILL');
        if (!(await waitGone(record, KILL_CONFIRM_MS))) {
          throw new DriverError(
            `${agent} (pid ${record.pid}) is still running ${KILL_CONFIRM_MS} ms after SIGKILL`,
            ['kill', '-KILL', `-${record.pid}`],
            undefined,
            '',
          );
        }
      }
      await removeRecord(agent, record);
    },

    /** One pass over the pid files; an agent whose process is gone (or whose pid was reused) is listed as not running. */
    async list(): Promise<ObservedAgent[]> {
      let entries: string[];
      try {
        entries = await readdir(stateDir);
      } catch (error) {
        if (errorCode(error) === 'ENOENT') return [];
        throw new DriverError(`cannot list ${stateDir}: ${(error as Error).message}`, [], undefined, '', { cause: error });
      }
      const agents = entries
        .filter((name) => name.endsWith(PID_SUFFIX))
        .map((name) => name.slice(0, -PID_SUFFIX.length))
        .filter((agent) => AGENT_NAME_PATTERN.test(agent));
      const observed = await Promise.all(
        agents.map(async (agent): Promise<ObservedAgent | undefined> => {
          const current = await readRecord(agent);
          if (current === undefined) return undefined; // removed by a stop since the readdir
          return current.record !== undefined && (await isAlive(current.record))
            ? { agent, running: true, startedAt: current.writtenAt }
            : { agent, running: false };
        }),
      );
      return observed.filter((o) => o !== undefined);
    },
  } satisfies AgentDriver;
  return driver;
}

export type ProcessDriver = ReturnType<typeof createProcessDriver>;

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

interface Launched {
  readonly child: ChildProcess;
  /** Its kernel start time, read while it cannot have been reaped yet; undefined if spawning failed. */
  readonly startTime: number | undefined;
  /** Settles with the spawn's failure, or undefined once it runs. */
  readonly spawned: Promise<Error | undefined>;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Spawns the agent and listens to it, all before returning to the event loop: Node emits 'spawn',
 * 'error' and 'exit' from later ticks, so a listener attached after an await could miss them.
 */
function launch(file: string, args: readonly string[], options: { cwd: string; env: NodeJS.ProcessEnv; logFd: number }): Launched {
  // detached: its own process group, which a stop signals as a whole, and no tie to the daemon's
  // lifetime. spawn() forks synchronously, so the caller may close the log's descriptor at once.
  const child = spawn(file, args, { cwd: options.cwd, env: options.env, detached: true, stdio: ['ignore', options.logFd, options.logFd] });
  // Until the event loop runs, Node cannot have reaped the child, so its /proc entry is there even
  // if it has already exited.
  const startTime = child.pid === undefined ? undefined : readStatSync(child.pid)?.startTime;
  // Listening for 'exit' keeps Node reaping it (no zombie for a stop to wait on), and a lasting
  // 'error' listener keeps a late error from crashing the daemon.
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) => {
    child.once('exit', (code, signal) => done({ code, signal }));
  });
  const spawned = new Promise<Error | undefined>((done) => {
    child.once('spawn', () => done(undefined));
    child.once('error', done);
  });
  child.on('error', () => {});
  child.unref();
  return { child, startTime, spawned, exited };
}

function spawnError(agent: string, argv: readonly string[], error: Error | undefined, rosterPath: string): DriverError {
  const file = argv[0] ?? '';
  const code = errorCode(error);
  const where = `(agent ${agent}'s command in ${rosterPath})`;
  const message =
    code === 'ENOENT'
      ? `${file} not found ${where}`
      : code === 'EACCES'
        ? `${file} is not executable ${where}`
        : `cannot run ${file} ${where}: ${error?.message ?? 'no pid'}`;
  return new DriverError(message, argv, undefined, error?.message ?? '', { cause: error });
}

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

function readStatSync(pid: number): ProcStat | undefined {
  try {
    return parseStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return undefined;
  }
}

/** The recorded process is alive: its pid exists, has the recorded start time, and has not exited (a zombie has). */
async function isAlive(record: ProcessPidFile): Promise<boolean> {
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
function signalGroup(pid: number, signal: NodeJS.Signals): void {
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

/** Up to the last `LOG_TAIL_BYTES` the log gained from `from` on. */
async function readTail(path: string, from: number): Promise<string> {
  try {
    const file = await open(path, 'r');
    try {
      const { size } = await file.stat();
      const start = Math.max(from, size - LOG_TAIL_BYTES);
      const buffer = Buffer.alloc(Math.max(0, size - start));
      await file.read(buffer, 0, buffer.length, start);
      return buffer.toString('utf8').trimEnd();
    } finally {
      await file.close();
    }
  } catch {
    return '';
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function errorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}

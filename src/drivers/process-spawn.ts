import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir, open, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ProcessAgentSpec, ProcessPidFile } from '../contract/process-roster.js';
import { DriverError } from '../contract/errors.js';
import { errorCode, isAlive, readStartTimeSync } from './process-group.js';

/** A process still there this long after it was spawned counts as started. */
const START_CONFIRM_MS = 200;
/** How much of an agent's log a failed start reports. */
const LOG_TAIL_BYTES = 4_096;
/** Lines of that tail put in the error message itself. */
const MESSAGE_TAIL_LINES = 5;

type Exit = { code: number | null; signal: NodeJS.Signals | null };

interface Launched {
  readonly child: ChildProcess;
  /** Its kernel start time, read while it cannot have been reaped yet; undefined if spawning failed. */
  readonly startTime: number | undefined;
  /** Settles with the spawn's failure, or undefined once it runs. */
  readonly spawned: Promise<Error | undefined>;
  readonly exited: Promise<Exit>;
}

/** An agent's process, spawned and running, not yet recorded nor confirmed. */
export interface Spawned {
  readonly record: ProcessPidFile;
  readonly argv: readonly string[];
  readonly exited: Promise<Exit>;
  /** Its log, and how long the log was before it: what it said since is its own. */
  readonly logPath: string;
  readonly logFrom: number;
}

export interface SpawnPlace {
  /** The roster file, which errors name and relative `cwd`s are resolved against. */
  readonly rosterPath: string;
  readonly rosterDir: string;
  /** Where `<agent>.log` is appended to. */
  readonly logDir: string;
}

/** Spawns the agent's command detached, its output appended to its log; throws a DriverError saying why it could not run. */
export async function spawnAgent(agent: string, spec: ProcessAgentSpec, place: SpawnPlace): Promise<Spawned> {
  const { rosterPath } = place;
  const argv = spec.command;
  const [file, ...args] = argv as [string, ...string[]];
  const cwd = resolve(place.rosterDir, spec.cwd ?? '.');
  // spawn reports a missing cwd as the command's ENOENT; say which it is.
  const cwdStat = await stat(cwd).catch(() => undefined);
  if (!cwdStat?.isDirectory()) {
    throw new DriverError(`cannot start ${agent}: its cwd ${cwd} is not a directory (${rosterPath})`, argv, undefined, '');
  }

  await mkdir(place.logDir, { recursive: true });
  const logPath = join(place.logDir, `${agent}.log`);
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
  return { record: { pid, startTime }, argv, exited, logPath, logFrom };
}

/** Resolves once the spawned agent has stayed up START_CONFIRM_MS; throws with its exit and its log's tail when it did not. */
export async function confirmStarted(agent: string, spawned: Spawned, removeRecord: () => Promise<void>): Promise<void> {
  const { record, exited } = spawned;
  let ended = await Promise.race([exited, sleep(START_CONFIRM_MS).then(() => undefined)]);
  // The exit event may lag the exit itself; /proc has the last word.
  if (ended === undefined && !(await isAlive(record))) ended = await Promise.race([exited, sleep(1_000).then(() => undefined)]);
  if (ended === undefined && (await isAlive(record))) return;

  await removeRecord();
  const tail = await readTail(spawned.logPath, spawned.logFrom);
  const how = ended === undefined ? 'exited' : ended.signal !== null ? `was killed by ${ended.signal}` : `exited with code ${ended.code}`;
  const said = tail.split('\n').filter((l) => l.trim() !== '').slice(-MESSAGE_TAIL_LINES).join('\n');
  throw new DriverError(
    `${agent} ${how} within ${START_CONFIRM_MS} ms of starting${said ? `:\n${said}` : ' (no output)'}`,
    spawned.argv,
    ended?.code ?? undefined,
    tail,
  );
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
  const startTime = child.pid === undefined ? undefined : readStartTimeSync(child.pid);
  // Listening for 'exit' keeps Node reaping it (no zombie for a stop to wait on), and a lasting
  // 'error' listener keeps a late error from crashing the daemon.
  const exited = new Promise<Exit>((done) => {
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

import { chmod, mkdir, readFile, readdir, rmdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { writeFileAtomic } from '../store/index.js';
import { readRegularFile } from '../store/regular-file.js';
import { type Action, octal, renderShell } from './actions.js';
import { type Layout, UNIT_NAME } from './layout.js';
import type { Install, OldFile } from './plan.js';

export interface CommandResult {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}
export type Systemctl = (args: readonly string[]) => Promise<CommandResult>;

/** A file of the old POOL_DIR that migrate will not read: containers can write there. */
export class UnsafeFileError extends Error {
  constructor(
    readonly path: string,
    readonly why: string,
  ) {
    super(`${path} ${why}; not reading it (containers can write this directory): look at it, then run migrate again`);
    this.name = 'UnsafeFileError';
  }
}

/** A step that failed, with the step: the CLI names it and says how to go on or back. */
export class StepError extends Error {
  constructor(
    readonly action: Action,
    readonly detail: string,
  ) {
    super(`${describeAction(action)}: ${detail}`);
    this.name = 'StepError';
  }
}

/** Reads what `planMigration` decides from; changes nothing (systemctl is asked only is-active and is-enabled). */
export async function readInstall(from: string, layout: Layout, systemctl: Systemctl): Promise<Install> {
  const [poolEnv, autostart, state] = await Promise.all(['pool.env', 'autostart.txt', 'state.json'].map((name) => readPoolFile(join(from, name))));
  const [unit, shippedUnit, configuredPoolEnv, dropIn] = await Promise.all([layout.unit, layout.shippedUnit, layout.poolEnv, layout.dropIn].map(readIfThere));
  const unitDropIns = await Promise.all(
    (await listDir(layout.unitDropInDir)).map(async (name) => ({ name, text: await readFile(join(layout.unitDropInDir, name), 'utf8') })),
  );
  const active = await systemctl(['is-active', UNIT_NAME]);
  const enabled = await systemctl(['is-enabled', UNIT_NAME]);
  return {
    layout,
    from,
    poolEnv,
    autostart,
    state,
    unit,
    unitDropIns,
    unitActive: active.stdout.trim() || 'unknown',
    unitEnabled: enabled.stdout.trim() || 'not-found',
    shippedUnit,
    configuredPoolEnv,
    dropInLeft: dropIn !== undefined,
    backups: await listBackups(layout.backupRoot),
  };
}

/** Containers can write in the old POOL_DIR: a symlink or a FIFO planted there is refused, never followed or waited on. */
async function readPoolFile(path: string): Promise<OldFile | undefined> {
  const read = await readRegularFile(path);
  if (read.found === 'nothing') return undefined;
  if (read.found === 'a symlink') throw new UnsafeFileError(path, 'is a symbolic link');
  if (read.found !== 'file') throw new UnsafeFileError(path, 'is not a regular file');
  return { text: read.text, mode: read.info.mode & 0o7777, uid: read.info.uid, gid: read.info.gid };
}

async function readIfThere(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

async function listBackups(root: string): Promise<Install['backups']> {
  return Promise.all((await listDir(root)).map(async (name) => ({ name, files: await listDir(join(root, name)) })));
}

/** The names in a directory, sorted; none when it is not there. */
async function listDir(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).sort();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
}

export interface ExecuteDeps {
  readonly systemctl: Systemctl;
  /** The running agents' names as the daemon on `socket` reports them; throws while it does not answer. */
  readonly poolStatus: (socket: string) => Promise<readonly string[]>;
  /** One line per step, as it starts. */
  readonly log: (line: string) => void;
  readonly sleep: (ms: number) => Promise<void>;
  /** How long the old manager may take to go, and the new daemon to list the agents. */
  readonly killTimeoutMs?: number;
  readonly agentsTimeoutMs?: number;
}

const POLL_MS = 200;
/** States in which a unit still has processes (or is about to). */
const LIVE_STATES = new Set(['active', 'activating', 'deactivating', 'reloading', 'refreshing']);

/**
 * Carries out the steps in order and stops at the first that fails (throwing a StepError). Every
 * step can be run again, which is what lets an interrupted migration be run again. Returns warnings:
 * agents the new daemon does not list.
 */
export async function executeMigration(actions: readonly Action[], deps: ExecuteDeps): Promise<string[]> {
  const warnings: string[] = [];
  for (const action of actions) {
    deps.log(`+ ${describeAction(action)}`);
    try {
      warnings.push(...(await run(action, deps)));
    } catch (error) {
      if (error instanceof StepError) throw error;
      throw new StepError(action, (error as Error).message);
    }
  }
  return warnings;
}

/** A step as one log line: commands as they would be typed, file contents left out. */
export function describeAction(action: Action): string {
  switch (action.kind) {
    case 'write':
      return `write ${action.path} (mode ${octal(action.mode)})`;
    case 'save':
      return `save ${action.from} as ${action.to} (mode ${octal(action.mode)})`;
    case 'kill':
      return `systemctl kill --kill-whom=all --signal=SIGKILL ${action.unit}, if active, and wait until it is down`;
    default:
      return renderShell(action);
  }
}

async function run(action: Action, deps: ExecuteDeps): Promise<string[]> {
  switch (action.kind) {
    case 'mkdir':
      await mkdir(action.path, { recursive: true, mode: action.mode });
      return [];
    case 'write':
    case 'save':
      await writeDurably(action.kind === 'write' ? action.path : action.to, action.text, action.mode);
      return [];
    case 'install':
      await writeDurably(action.to, await readFile(action.from, 'utf8'), action.mode);
      return [];
    case 'remove':
      await unlink(action.path).catch(ignore('ENOENT'));
      return [];
    case 'rmdir':
      await rmdir(action.path).catch(ignore('ENOENT', 'ENOTEMPTY', 'EEXIST'));
      return [];
    case 'systemctl':
      await systemctlOrThrow(deps.systemctl, action.args);
      return [];
    case 'node': {
      const result = await execa(process.execPath, [action.script, ...action.args], { reject: false, stdin: 'ignore' });
      if (result.exitCode !== 0) throw new Error(`exited with ${result.exitCode ?? result.signal}: ${result.stderr.trim() || result.shortMessage}`);
      return [];
    }
    case 'kill':
      await killUnit(action.unit, deps);
      return [];
    case 'check-agents':
      return checkAgents(action.socket, action.agents, deps);
  }
}

/** Temp file, fsync, rename, fsync of the directory; the mode is set after (the CLI's umask keeps the temp file private until then). */
async function writeDurably(path: string, text: string, mode: number): Promise<void> {
  await writeFileAtomic(path, text);
  await chmod(path, mode);
}

async function systemctlOrThrow(systemctl: Systemctl, args: readonly string[]): Promise<CommandResult> {
  const result = await systemctl(args);
  if (result.exitCode !== 0) throw new Error(`exited with ${result.exitCode}: ${result.stderr.trim() || result.stdout.trim()}`);
  return result;
}

async function unitState(unit: string, systemctl: Systemctl): Promise<string> {
  return (await systemctl(['is-active', unit])).stdout.trim();
}

async function killUnit(unit: string, deps: ExecuteDeps): Promise<void> {
  if (!LIVE_STATES.has(await unitState(unit, deps.systemctl))) return;
  await systemctlOrThrow(deps.systemctl, ['kill', '--kill-whom=all', '--signal=SIGKILL', unit]);
  const deadline = performance.now() + (deps.killTimeoutMs ?? 15_000);
  for (;;) {
    const state = await unitState(unit, deps.systemctl);
    if (!LIVE_STATES.has(state)) return;
    if (performance.now() > deadline) throw new Error(`${unit} is still ${state} after SIGKILL`);
    await deps.sleep(POLL_MS);
  }
}

/** Waits for the daemon to answer and list every agent the old state.json had running; those it still lacks at the deadline are warnings. */
async function checkAgents(socket: string, expected: readonly string[], deps: ExecuteDeps): Promise<string[]> {
  const deadline = performance.now() + (deps.agentsTimeoutMs ?? 60_000);
  let lastError: unknown;
  let missing: string[] | undefined;
  let said = '';
  for (;;) {
    try {
      const running = new Set(await deps.poolStatus(socket));
      missing = expected.filter((agent) => !running.has(agent));
      const listing = `  the daemon lists ${[...running].join(', ') || 'no agents'}`;
      if (listing !== said) deps.log((said = listing));
      if (missing.length === 0) return [];
    } catch (error) {
      lastError = error;
    }
    if (performance.now() > deadline) break;
    await deps.sleep(POLL_MS * 5);
  }
  if (missing === undefined) throw new Error(`the daemon did not answer on ${socket}: ${(lastError as Error | undefined)?.message ?? 'no reply'}`);
  return missing.map((agent) => `${agent} was running in the old state.json, but the daemon does not list it: is its container running? (docker compose ps ${agent})`);
}

function ignore(...codes: string[]): (error: NodeJS.ErrnoException) => void {
  return (error) => {
    if (!codes.includes(error.code ?? '')) throw error;
  };
}

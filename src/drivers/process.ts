import { dirname, join, resolve } from 'node:path';
import { AGENT_NAME_PATTERN } from '../contract/names.js';
import type { ProcessAgentSpec } from '../contract/process-roster.js';
import type { AgentDriver } from '../core/driver.js';
import { DriverError, UnknownAgentError } from '../contract/errors.js';
import type { ObservedAgent } from '../core/reconcile.js';
import { createPidFiles, loadProcessRoster } from './process-files.js';
import { isAlive, signalGroup, terminateGroup } from './process-group.js';
import { confirmStarted, spawnAgent } from './process-spawn.js';

export { ProcessAgentSpec, ProcessPidFile, ProcessRosterFile } from '../contract/process-roster.js';

export interface ProcessDriverOptions {
  /** The roster file (JSON, see `ProcessRosterFile`); re-read on every call, so edits take effect without a restart. */
  readonly rosterPath: string;
  /** Where `<agent>.pid` files and `logs/<agent>.log` live; must outlive the daemon, since the agents do. */
  readonly stateDir: string;
}

/**
 * Runs each agent as a local child process in its own process group (Linux: it reads `/proc`).
 * The agents outlive the daemon: each is spawned detached, its output appended to
 * `stateDir/logs/<agent>.log`, and recorded in `stateDir/<agent>.pid` with its kernel start time,
 * so a restarted daemon finds, lists and stops what an earlier one started, and a pid the kernel
 * has since reused for another process is never taken for the agent (nor signalled). Its public
 * type is the port itself: this backend offers nothing beyond it.
 */
export function createProcessDriver(options: ProcessDriverOptions): AgentDriver {
  const rosterPath = resolve(options.rosterPath);
  const stateDir = resolve(options.stateDir);
  const place = { rosterPath, rosterDir: dirname(rosterPath), logDir: join(stateDir, 'logs') };
  const pidFiles = createPidFiles(stateDir);
  /** Starts in flight in this driver, so two concurrent starts of one agent spawn it once. */
  const starting = new Map<string, Promise<void>>();

  const startNow = async (agent: string): Promise<void> => {
    const roster = await loadProcessRoster(rosterPath);
    const spec: ProcessAgentSpec | undefined = Object.hasOwn(roster.agents, agent) ? roster.agents[agent] : undefined;
    // The pool asks only for names it knows, so this is a roster edited since it last looked.
    if (spec === undefined) throw new UnknownAgentError(agent, Object.keys(roster.agents), rosterPath);
    const current = await pidFiles.read(agent);
    if (current?.record !== undefined && (await isAlive(current.record))) return;

    const spawned = await spawnAgent(agent, spec, place);
    const { record } = spawned;
    try {
      await pidFiles.write(agent, record);
    } catch (error) {
      // Unrecorded, no later stop could find it: do not leave it running.
      try {
        signalGroup(record.pid, 'SIGKILL');
      } catch {
        // The write's failure is the one to report.
      }
      throw new DriverError(`cannot record ${agent}'s pid: ${(error as Error).message}`, spawned.argv, undefined, '', { cause: error });
    }
    await confirmStarted(agent, spawned, () => pidFiles.remove(agent, record));
  };

  /** The agent as its pid file says, if it has one; an agent whose process is gone (or whose pid was reused) is not running. */
  const observe = async (agent: string): Promise<ObservedAgent | undefined> => {
    const current = await pidFiles.read(agent);
    if (current === undefined) return undefined; // removed by a stop since the readdir
    return current.record !== undefined && (await isAlive(current.record))
      ? { agent, running: true, startedAt: current.writtenAt }
      : { agent, running: false };
  };

  return {
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
      const current = await pidFiles.read(agent);
      if (current === undefined) return;
      const { record } = current;
      // Checked before any signal: a stale pid file's pid may belong to someone else by now, and a
      // torn one names no process we could have started.
      if (record !== undefined && (await isAlive(record))) await terminateGroup(agent, record, timeoutMs);
      await pidFiles.remove(agent, record);
    },

    /** One pass over the pid files. */
    async list(): Promise<ObservedAgent[]> {
      const observed = await Promise.all((await pidFiles.agents()).map(observe));
      return observed.filter((o) => o !== undefined);
    },
  };
}

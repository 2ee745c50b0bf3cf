import type { AgentDriver } from '../core/driver.js';
import type { ObservedAgent } from '../core/reconcile.js';
import { createComposeCommands, upArgs } from './compose-commands.js';
import { listContainers, stopService, upContainers } from './compose-containers.js';
import { type ProjectModel, createDefinitionCheck, readProjectConfig } from './compose-definition.js';
import { hostAddresses } from './compose-networks.js';
import { upUntilHealthy } from './compose-readiness.js';
import { type ContainerUsage, apiReads, cliReads } from './compose-reads.js';
import { besideProbe, engineProbe } from './docker.js';
import type { EngineApi } from './engine-api.js';
import { run } from './exec.js';


export interface ComposeDriverOptions {
  readonly dockerBin: string;
  readonly composeDir: string;
  /** `-p`; undefined = compose's own default, resolved once by `init`. */
  readonly project: string | undefined;
  /** Upper bound for one compose command that is not a stop (ms). */
  readonly commandTimeoutMs?: number;
  /** How long a start of a service with a healthcheck waits for it to be healthy (ms). */
  readonly readyTimeoutMs?: number;
  /** The graceful part of stopping a start that never became healthy (ms). */
  readonly stopTimeoutMs?: number;
  /** Services that are not agents: the networks only they use are not where agents call from. */
  readonly infraServices?: readonly string[];
  /** Where the driver reads containers, events, health and networks; the docker CLI without one. */
  readonly engine?: EngineApi;
}

export interface ComposeProjectInfo {
  readonly name: string;
  readonly services: string[];
  /** Networks the project's agents attach to, by their Docker names (for the bridge's default bind). */
  readonly networks: string[];
}

/** The compose backend: the whole port, and what the daemon reads of the project and the engine besides. */
export interface ComposeDriver extends AgentDriver {
  /** Resolves the project's name, services and networks from its compose file (`docker compose config`). */
  init(): Promise<ComposeProjectInfo>;
  unpause(agent: string): Promise<void>;
  /** The project is loaded again (`init`, one process) only when a definition file changed since the last load. */
  definitionProblem(): Promise<string | undefined>;
  events(signal: AbortSignal): AsyncIterable<{ readonly agent: string; readonly action: string }>;
  /** What each running service of `listed` uses now: one-shot stats through the Engine API (milliseconds), `docker stats` through the CLI (a second or two, memory only). */
  usage(listed: readonly ObservedAgent[]): Promise<Map<string, ContainerUsage>>;
  memoryLimits(): ReadonlyMap<string, number>;
  /**
   * Where containers of this project reach the host (the gateways of the agents' networks that
   * exist now, and the engine's `host-gateway` address); none, and no docker call, when every
   * agent runs on the host's network.
   */
  bridgeAddresses(): Promise<string[]>;
}

const READY_TIMEOUT_MS = 120_000;

/** Compose v2's version (`docker compose version`); throws a DriverError when the plugin is missing. */
export async function composeVersion(dockerBin: string, timeoutMs: number): Promise<string> {
  return (await run([dockerBin, 'compose', 'version', '--short'], { timeoutMs })).trim();
}

/** Drives `docker compose` in one project directory. Agents are services, found by their compose labels. */
export function createComposeDriver(options: ComposeDriverOptions): ComposeDriver {
  const commands = createComposeCommands(options);
  const reads = options.engine === undefined ? cliReads(commands) : apiReads(options.engine, commands);
  const probe = engineProbe(options.dockerBin, options.engine);
  const readyTimeoutMs = options.readyTimeoutMs ?? READY_TIMEOUT_MS;
  const definition = createDefinitionCheck(options.composeDir);
  /** What the last successful load said; nothing is healthchecked and no agent is off the host's network before one. */
  let model: Pick<ProjectModel, 'networks' | 'offHost' | 'healthchecked' | 'memoryLimits'> = { networks: [], offHost: false, healthchecked: new Set(), memoryLimits: new Map() };

  const loadProject = async (): Promise<ComposeProjectInfo> => {
    const project = readProjectConfig(await commands.compose(['config', '--format', 'json']), options.infraServices ?? []);
    commands.learnProject(project.name);
    model = project;
    return { name: project.name, services: project.services, networks: project.networks };
  };

  const driver: ComposeDriver = {
    init: () => definition.load(loadProject),
    async services() {
      return (await driver.init()).services;
    },
    async start(agent: string) {
      await besideProbe(probe, async (signal) => {
        if (!model.healthchecked.has(agent)) await commands.compose(upArgs(agent), commands.commandTimeoutMs, signal);
        else await upUntilHealthy(commands, agent, { readyTimeoutMs, stop: () => driver.stop(agent, options.stopTimeoutMs ?? 10_000), reads }, signal);
      });
    },
    stop: (agent: string, timeoutMs: number) => stopService(commands, reads, agent, timeoutMs),
    list: () => listContainers(reads),
    async unpause(agent: string) {
      await commands.compose(['unpause', '--', agent]);
    },
    definitionProblem: () => definition.problem(loadProject),
    events: (signal: AbortSignal) => reads.events(signal),
    usage: (listed: readonly ObservedAgent[]) => reads.usage(upContainers(listed)),
    memoryLimits: () => model.memoryLimits,
    async bridgeAddresses() {
      return model.offHost ? hostAddresses(reads, model.networks) : [];
    },
  };
  return driver;
}

import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { PoolConfig } from '../contract/index.js';
import type { AgentDriver } from '../core/driver.js';
import { createComposeDriver } from './compose.js';
import { COMMAND_TIMEOUT_MS } from './docker.js';
import { type EngineApi, createEngineApi, resolveEngineEndpoint } from './engine-api.js';
import { createProcessDriver } from './process.js';
import { createSwarmDriver } from './swarm.js';

export interface OpenedDriver {
  readonly driver: AgentDriver;
  /** What the daemon logs and uses at start-up: the project's (or stack's) name, its services, the networks they use. */
  readonly project: { readonly name: string; readonly services: string[]; readonly networks: string[] };
  /**
   * Where agents reach the host now, beside loopback (the bridge's default bind): the gateways of
   * their networks that exist and the engine's `host-gateway` address; none for local processes or a swarm.
   */
  bridgeAddresses(): Promise<string[]>;
  /** Memory in use by each running service, in bytes, where the backend measures it (the local Docker engine does; local processes and a swarm's other nodes are not measured). */
  readonly memoryUsage?: () => Promise<ReadonlyMap<string, number>>;
  /** Its listing carries each running container's addresses: a bridge caller is known by its peer address (CALLER_POLICY). */
  readonly listsAddresses?: true;
  /** Said once at start-up when the driver reads Docker through the CLI rather than the Engine API, and why. */
  readonly notice?: string;
}

/** What POOL_DRIVER manages, as start-up errors name it. */
export function describeBackend(config: PoolConfig): string {
  switch (config.driver) {
    case 'process':
      return `the process roster ${config.processRoster}`;
    case 'swarm':
      return `the swarm stack ${config.swarmStack}`;
    case 'compose':
      return `the compose project in ${config.composeDir}`;
  }
}

/**
 * COMPOSE_DIR (or the process roster's directory) cannot be used: a configuration problem that a
 * restart cannot fix, unlike Docker being down.
 */
export class ProjectDirError extends Error {
  override name = 'ProjectDirError';
}

/** Names the directory and the likely cause, instead of what spawning docker in it would say. */
async function requireProjectDir(dir: string, variable: string): Promise<void> {
  let info;
  try {
    info = await stat(dir);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const what = code === 'ENOENT' ? 'no such directory' : code === 'EACCES' ? 'permission denied' : (error as Error).message;
    throw new ProjectDirError(`${variable} ${dir}: ${what} (check ${variable} in pool.env; a directory hidden from the service, by ProtectHome= say, also looks missing)`, { cause: error });
  }
  if (!info.isDirectory()) throw new ProjectDirError(`${variable} ${dir}: not a directory (check ${variable} in pool.env)`);
}

/** Makes the driver POOL_DRIVER names and reads what it manages; a failure here stops the daemon. */
export async function openDriver(config: PoolConfig): Promise<OpenedDriver> {
  const noGateways = async () => [];
  switch (config.driver) {
    case 'process': {
      const driver = createProcessDriver({ rosterPath: config.processRoster, stateDir: join(config.poolDir, 'processes') });
      const services = await driver.services();
      return { driver, project: { name: `processes of ${config.processRoster}`, services, networks: [] }, bridgeAddresses: noGateways };
    }
    case 'swarm': {
      if (config.swarmStack === undefined) throw new Error('SWARM_STACK is required with POOL_DRIVER=swarm');
      // A task runs once its image is pulled and, with a healthcheck, once healthy (swarm waits for it).
      const startTimeoutMs = COMMAND_TIMEOUT_MS + config.readyTimeoutSeconds * 1000;
      const engine = await engineFor(config.dockerBin);
      const driver = createSwarmDriver({ dockerBin: config.dockerBin, stack: config.swarmStack, startTimeoutMs, ...(engine.api !== undefined && { engine: engine.api }) });
      const stack = await driver.init();
      return { driver, project: stack, bridgeAddresses: noGateways, ...(engine.notice !== undefined && { notice: engine.notice }) };
    }
    case 'compose': {
      await requireProjectDir(config.composeDir, 'COMPOSE_DIR');
      const engine = await engineFor(config.dockerBin);
      const driver = createComposeDriver({
        dockerBin: config.dockerBin,
        composeDir: config.composeDir,
        project: config.composeProject,
        readyTimeoutMs: config.readyTimeoutSeconds * 1000,
        stopTimeoutMs: config.stopTimeoutSeconds * 1000,
        infraServices: config.infraServices,
        ...(engine.api !== undefined && { engine: engine.api }),
      });
      const project = await driver.init();
      return {
        driver,
        project,
        bridgeAddresses: () => driver.bridgeAddresses(),
        ...(engine.api !== undefined && { listsAddresses: true }),
        memoryUsage: async () => new Map([...(await driver.usage(await driver.list()))].map(([agent, { memoryBytes }]) => [agent, memoryBytes])),
        ...(engine.notice !== undefined && { notice: engine.notice }),
      };
    }
  }
}

/** The Engine API client for the engine the docker CLI would use, or why reads stay with the CLI. */
async function engineFor(dockerBin: string): Promise<{ api?: EngineApi; notice?: string }> {
  // A DOCKER_BIN of its own may be a wrapper (sudo, another host, a test's fault injection): the API would go round it.
  if (dockerBin !== 'docker') return { notice: `docker reads go through DOCKER_BIN ${dockerBin}, not the Engine API` };
  const endpoint = await resolveEngineEndpoint();
  if (endpoint.kind === 'cli') return { notice: `docker reads go through the docker CLI, not the Engine API: ${endpoint.why}` };
  return { api: createEngineApi(endpoint) };
}

import { join } from 'node:path';
import type { PoolConfig } from '../contract/index.js';
import type { AgentDriver } from '../core/driver.js';
import { createComposeDriver } from './compose.js';
import { createProcessDriver } from './process.js';

export interface OpenedDriver {
  readonly driver: AgentDriver;
  /** What the daemon logs and uses at start-up: the project's name, its services, the networks they use. */
  readonly project: { readonly name: string; readonly services: string[]; readonly networks: string[] };
  /** Gateway addresses of those networks that exist now (the bridge's default bind); none for local processes. */
  networkGateways(networks: readonly string[]): Promise<string[]>;
  /** Memory in use by each running service, in bytes, where the backend measures it (Docker does; local processes are not measured). */
  readonly memoryUsage?: () => Promise<ReadonlyMap<string, number>>;
}

/** Makes the driver POOL_DRIVER names and reads what it manages; a failure here stops the daemon. */
export async function openDriver(config: PoolConfig): Promise<OpenedDriver> {
  if (config.driver === 'process') {
    const driver = createProcessDriver({ rosterPath: config.processRoster, stateDir: join(config.poolDir, 'processes') });
    const services = await driver.services();
    return { driver, project: { name: `processes of ${config.processRoster}`, services, networks: [] }, networkGateways: async () => [] };
  }
  const driver = createComposeDriver({
    dockerBin: config.dockerBin,
    composeDir: config.composeDir,
    project: config.composeProject,
    readyTimeoutMs: config.readyTimeoutSeconds * 1000,
    stopTimeoutMs: config.stopTimeoutSeconds * 1000,
  });
  const project = await driver.init();
  return { driver, project, networkGateways: (networks) => driver.networkGateways(networks), memoryUsage: () => driver.memoryUsage() };
}

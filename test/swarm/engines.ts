import { type EngineApi, createEngineApi, parseDockerHost } from '../../src/drivers/engine-api.js';
import { WORKER_HOST } from '../support/swarm.js';

/** The Engine API client of the engine at `host`, a unix:// or tcp:// DOCKER_HOST. */
function engineAt(host: string): EngineApi {
  const endpoint = parseDockerHost(host);
  if (endpoint.kind === 'cli') throw new Error(`${host}: not an Engine API endpoint`);
  return createEngineApi(endpoint);
}

/** The test swarm's manager (the main engine) and its worker, through the Engine API. */
export const managerEngine = () => engineAt('unix:///var/run/docker.sock');
export const workerEngine = () => engineAt(WORKER_HOST);

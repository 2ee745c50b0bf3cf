import { stat } from 'node:fs/promises';
import { delimiter, resolve } from 'node:path';
import { DriverError } from '../contract/errors.js';

/**
 * The files compose reads a project from when no `-f` is given: the first of the standard names
 * with its override, and `.env` (interpolation, COMPOSE_PROFILES, ...). COMPOSE_FILE adds its own.
 */
const DEFINITION_FILES = ['compose.yaml', 'compose.yml', 'docker-compose.yaml', 'docker-compose.yml',
  'compose.override.yaml', 'compose.override.yml', 'docker-compose.override.yaml', 'docker-compose.override.yml', '.env'];

/** What the driver keeps of a load of the project (`docker compose config`). */
export interface ProjectModel {
  readonly name: string;
  readonly services: string[];
  /** Docker names of the networks the agents attach to. */
  readonly networks: string[];
  /** Whether some agent runs in a network namespace of its own, hence may call through `host-gateway`. */
  readonly offHost: boolean;
  /** Services whose compose definition has a healthcheck: their start waits until Docker calls them healthy. */
  readonly healthchecked: ReadonlySet<string>;
  /** Services with a memory limit (`mem_limit`, else `deploy.resources.limits.memory`), in bytes. */
  readonly memoryLimits: ReadonlyMap<string, number>;
}

/** The parts of a service in `docker compose config --format json` read here; sizes come as strings of bytes. */
interface ServiceConfig {
  networks?: Record<string, unknown> | null;
  network_mode?: string;
  healthcheck?: { disable?: boolean };
  mem_limit?: string | number;
  deploy?: { resources?: { limits?: { memory?: string | number } } } | null;
}

/** Reads `docker compose config --format json` output; `infraServices` are not agents, so the networks only they use are not where agents call from. */
export function readProjectConfig(json: string, infraServices: readonly string[]): ProjectModel {
  const config = JSON.parse(json) as {
    name: string;
    services?: Record<string, ServiceConfig>;
    networks?: Record<string, { name?: string; external?: boolean }>;
  };
  const services = Object.keys(config.services ?? {});
  const used = new Set<string>();
  const infra = new Set(infraServices);
  let offHost = false;
  for (const [name, service] of Object.entries(config.services ?? {})) {
    if (infra.has(name)) continue;
    // `host` agents call on loopback and `none` ones call nobody; any other mode (bridge, or another
    // container's namespace) is a container network whose way to the host is `host-gateway`.
    if (service.network_mode !== 'host' && service.network_mode !== 'none') offHost = true;
    if (service.network_mode !== undefined) continue;
    for (const key of Object.keys(service.networks ?? { default: null })) used.add(key);
  }
  const networks = [...used].map((key) => config.networks?.[key]?.name ?? `${config.name}_${key}`);
  const healthchecked = new Set(services.filter((name) => {
    const check = config.services?.[name]?.healthcheck;
    return check !== undefined && !check.disable;
  }));
  const memoryLimits = new Map(Object.entries(config.services ?? {}).flatMap(([name, service]) => {
    const bytes = Number(service.mem_limit ?? service.deploy?.resources?.limits?.memory);
    return bytes > 0 ? [[name, bytes] as const] : [];
  }));
  return { name: config.name, services, networks, offHost, healthchecked, memoryLimits };
}

/** Whether the project's definition loads, judged again only when one of its files changed. */
export interface DefinitionCheck {
  /** Runs a load of the project and, when it succeeds, takes it as the verdict on the files as they were before it. */
  load<T>(load: () => Promise<T>): Promise<T>;
  /** What the last verdict said (undefined: it loads); `load` runs again first when a definition file changed since. */
  problem(load: () => Promise<unknown>): Promise<string | undefined>;
}

export function createDefinitionCheck(composeDir: string): DefinitionCheck {
  const definitionFiles = [...DEFINITION_FILES, ...(process.env.COMPOSE_FILE?.split(process.env.COMPOSE_PATH_SEPARATOR ?? delimiter) ?? [])]
    .filter(Boolean)
    .map((file) => resolve(composeDir, file));
  /** Inode, size, mtime and ctime of each file (or its absence): any edit, rename or touch changes it. */
  const fingerprint = async () =>
    (await Promise.all(definitionFiles.map((file) => stat(file).then((s) => `${s.ino}:${s.size}:${s.mtimeMs}:${s.ctimeMs}`, () => '-')))).join(' ');
  /** The definition files' stat fingerprint as of the last load of the project, and what that load said. */
  let definition: { fingerprint: string; problem: string | undefined } | undefined;

  const check: DefinitionCheck = {
    async load(load) {
      // Taken before the load: an edit during it shows as a change at the next check.
      const before = await fingerprint();
      const loaded = await load();
      definition = { fingerprint: before, problem: undefined };
      return loaded;
    },
    async problem(load) {
      const now = await fingerprint();
      if (definition?.fingerprint === now) return definition.problem;
      try {
        await check.load(load);
      } catch (error) {
        // Compose's verdict on the files stands until they change; a load that timed out (no exit
        // code: a loaded machine) said nothing about them, so the next check loads again.
        const verdict = error instanceof DriverError && error.exitCode === undefined ? '' : now;
        definition = { fingerprint: verdict, problem: (error as Error).message };
      }
      return definition?.problem;
    },
  };
  return check;
}

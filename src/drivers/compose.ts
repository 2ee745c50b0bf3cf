import { readFile, stat } from 'node:fs/promises';
import { delimiter, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AgentDriver } from '../core/driver.js';
import { DriverError } from '../core/errors.js';
import type { ObservedAgent } from '../core/reconcile.js';
import { COMMAND_TIMEOUT_MS, QUERY_TIMEOUT_MS, STOP_SLACK_MS, besideProbe, dockerCommand, dockerEvents } from './docker.js';
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
}

export interface ComposeProjectInfo {
  readonly name: string;
  readonly services: string[];
  /** Networks the project's agents attach to, by their Docker names (for the bridge's default bind). */
  readonly networks: string[];
}

const READY_TIMEOUT_MS = 120_000;
/** How often a start re-reads the health compose called healthy too early (ms). */
const HEALTH_POLL_MS = 250;

/**
 * The files compose reads a project from when no `-f` is given: the first of the standard names
 * with its override, and `.env` (interpolation, COMPOSE_PROFILES, ...). COMPOSE_FILE adds its own.
 */
const DEFINITION_FILES = ['compose.yaml', 'compose.yml', 'docker-compose.yaml', 'docker-compose.yml',
  'compose.override.yaml', 'compose.override.yml', 'docker-compose.override.yaml', 'docker-compose.override.yml', '.env'];

const SERVICE_LABEL = 'com.docker.compose.service';
const ONEOFF_LABEL = 'com.docker.compose.oneoff';

/** Compose v2's version (`docker compose version`); throws a DriverError when the plugin is missing. */
export async function composeVersion(dockerBin: string, timeoutMs: number): Promise<string> {
  return (await run([dockerBin, 'compose', 'version', '--short'], { timeoutMs })).trim();
}

/** Drives `docker compose` in one project directory. Agents are services, found by their compose labels. */
export function createComposeDriver(options: ComposeDriverOptions) {
  const commandTimeoutMs = options.commandTimeoutMs ?? COMMAND_TIMEOUT_MS;
  const readyTimeoutMs = options.readyTimeoutMs ?? READY_TIMEOUT_MS;
  let projectName = options.project;
  /** Services whose compose definition has a healthcheck: their start waits until Docker calls them healthy. */
  let healthchecked = new Set<string>();
  /** Docker names of the networks the agents attach to, as of the last `init`. */
  let networks: string[] = [];
  /** Whether some agent runs in a network namespace of its own, hence may call through `host-gateway`. */
  let offHost = false;
  /** The definition files' stat fingerprint as of the last load of the project, and what that load said. */
  let definition: { fingerprint: string; problem: string | undefined } | undefined;
  const definitionFiles = [...DEFINITION_FILES, ...(process.env.COMPOSE_FILE?.split(process.env.COMPOSE_PATH_SEPARATOR ?? delimiter) ?? [])]
    .filter(Boolean)
    .map((file) => resolve(options.composeDir, file));
  /** Inode, size, mtime and ctime of each file (or its absence): any edit, rename or touch changes it. */
  const fingerprint = async () =>
    (await Promise.all(definitionFiles.map((file) => stat(file).then((s) => `${s.ino}:${s.size}:${s.mtimeMs}:${s.ctimeMs}`, () => '-')))).join(' ');

  const compose = (args: string[], timeoutMs = commandTimeoutMs, signal?: AbortSignal) => {
    // Every profile is active: OpenClaw puts most agents behind `profiles:`, and compose leaves the
    // services of inactive profiles out of `config` and refuses a project whose active services
    // depend on them. COMPOSE_PROFILES in the project's .env would otherwise decide who is an agent.
    // Starting all of them is never the effect: the daemon names one service, with --no-deps.
    const argv: [string, ...string[]] = [options.dockerBin, 'compose', '--project-directory', options.composeDir, '--profile', '*'];
    if (projectName !== undefined) argv.push('-p', projectName);
    return run([...argv, ...args], { cwd: options.composeDir, timeoutMs, ...(signal !== undefined && { signal }) });
  };
  const docker = dockerCommand(options.dockerBin);
  const requireProject = () => {
    if (projectName === undefined) throw new Error('compose driver used before init()');
    return projectName;
  };

  const queryTimeoutMs = Math.min(commandTimeoutMs, QUERY_TIMEOUT_MS);
  /** One `docker ps` of the project's service containers (`--all`: stopped ones too), as tab-separated `fields` after the service. */
  const ps = async (all: boolean, fields: string[]): Promise<[string, ...string[]][]> => {
    const stdout = await docker([
      'ps', ...(all ? ['--all'] : []), '--no-trunc',
      '--filter', `label=com.docker.compose.project=${requireProject()}`,
      '--format', [`{{.Label "${SERVICE_LABEL}"}}`, `{{.Label "${ONEOFF_LABEL}"}}`, ...fields].join('\t'),
    ], queryTimeoutMs);
    const rows: [string, ...string[]][] = [];
    for (const line of stdout.split('\n')) {
      const [service, oneoff, ...rest] = line.split('\t');
      // `docker compose run` containers are one-off jobs, not the agent.
      if (service && oneoff !== 'True') rows.push([service, ...rest]);
    }
    return rows;
  };

  const list = async (): Promise<ObservedAgent[]> => {
    const observed: ObservedAgent[] = [];
    for (const [agent, state, created] of await ps(true, ['{{.State}}', '{{.CreatedAt}}'])) {
      const startedAt = parseDockerTime(created ?? '');
      // A paused container is up (it holds its memory), as Docker's own State.Running says.
      const paused = state === 'paused';
      observed.push({ agent, running: state === 'running' || paused, ...(paused && { paused }), ...(startedAt !== undefined && { startedAt }) });
    }
    return observed;
  };

  const isRunning = async (agent: string) => (await list()).some((o) => o.agent === agent && o.running);

  /** The health of the agent's running container and its last probe's output; undefined when none runs. */
  const healthOf = async (agent: string): Promise<string | undefined> => {
    const id = (await compose(['ps', '--quiet', '--', agent], queryTimeoutMs)).split('\n').find(Boolean);
    if (id === undefined) return undefined;
    const health = JSON.parse(await docker(['inspect', '--format', '{{json .State.Health}}', id], queryTimeoutMs)) as {
      Status?: string;
      Log?: { Output?: string }[];
    } | null;
    const last = health?.Log?.at(-1)?.Output?.trim().replace(/\s+/g, ' ').slice(0, 200);
    return `${health?.Status ?? 'none'}${last ? `; last check said: ${last}` : ''}`;
  };

  /**
   * Compose's `up --wait` can return at once for a container whose health dockerd has not set yet
   * (seen on a loaded machine: it then looks like a container without a healthcheck), so its word
   * is checked: healthy by `deadline` (performance.now() ms), or this throws.
   */
  const untilHealthy = async (agent: string, deadline: number, signal: AbortSignal): Promise<void> => {
    for (;;) {
      const health = await healthOf(agent);
      if (health?.startsWith('healthy')) return;
      if (health === undefined) throw new Error(`${agent} is not running`);
      if (performance.now() >= deadline || signal.aborted) throw new Error(`${agent} is not healthy (${health})`);
      await sleep(HEALTH_POLL_MS);
    }
  };

  /** Resolves the project's name, services and networks from its compose file (`docker compose config`). */
  const init = async (): Promise<ComposeProjectInfo> => {
    // Taken before the load: an edit during it shows as a change at the next check.
    const before = await fingerprint();
    const config = JSON.parse(await compose(['config', '--format', 'json'])) as {
      name: string;
      services?: Record<string, { networks?: Record<string, unknown> | null; network_mode?: string; healthcheck?: { disable?: boolean } }>;
      networks?: Record<string, { name?: string; external?: boolean }>;
    };
    projectName ??= config.name;
    const services = Object.keys(config.services ?? {});
    const used = new Set<string>();
    const infra = new Set(options.infraServices ?? []);
    offHost = false;
    for (const [name, service] of Object.entries(config.services ?? {})) {
      if (infra.has(name)) continue;
      // `host` agents call on loopback and `none` ones call nobody; any other mode (bridge, or another
      // container's namespace) is a container network whose way to the host is `host-gateway`.
      if (service.network_mode !== 'host' && service.network_mode !== 'none') offHost = true;
      if (service.network_mode !== undefined) continue;
      for (const key of Object.keys(service.networks ?? { default: null })) used.add(key);
    }
    networks = [...used].map((key) => config.networks?.[key]?.name ?? `${config.name}_${key}`);
    healthchecked = new Set(services.filter((name) => {
      const check = config.services?.[name]?.healthcheck;
      return check !== undefined && !check.disable;
    }));
    definition = { fingerprint: before, problem: undefined };
    return { name: config.name, services, networks };
  };

  const driver = {
    init,

    async services() {
      return (await init()).services;
    },

    async start(agent: string) {
      // --no-deps: the daemon never starts anything but the agent (infrastructure is always on).
      // Names go after `--`: whatever a name looks like, compose never reads it as an option.
      const up = ['up', '--detach', '--no-deps', '--', agent];
      await besideProbe(options.dockerBin, async (signal) => {
        if (!healthchecked.has(agent)) {
          await compose(up, commandTimeoutMs, signal);
          return;
        }
        const readySeconds = Math.ceil(readyTimeoutMs / 1000);
        const deadline = performance.now() + readyTimeoutMs;
        try {
          await compose([...up.slice(0, -2), '--wait', '--wait-timeout', String(readySeconds), '--', agent], commandTimeoutMs + readyTimeoutMs, signal);
          await untilHealthy(agent, deadline, signal);
        } catch (error) {
          // The engine went down (the probe says so in its place), not the agent's health.
          if (signal.aborted) throw error;
          const health = await healthOf(agent).catch(() => undefined);
          // Not a start that failed but one that never became ready: it must not keep running uncounted.
          if (health === undefined) throw error;
          await driver.stop(agent, options.stopTimeoutMs ?? 10_000);
          throw new DriverError(
            `${agent} did not become healthy within ${readySeconds} s (health: ${health}); stopped it`,
            (error as DriverError).argv ?? [], (error as DriverError).exitCode, (error as DriverError).stderr ?? '', { cause: error },
          );
        }
      });
    },

    async stop(agent: string, timeoutMs: number) {
      const seconds = Math.ceil(timeoutMs / 1000);
      let stopError: unknown;
      try {
        await compose(['stop', '--timeout', String(seconds), '--', agent], timeoutMs + STOP_SLACK_MS);
      } catch (error) {
        stopError = error;
        // A kill is immediate on a healthy engine; do not wait the 120 s meant for starts.
        await compose(['kill', '--', agent], STOP_SLACK_MS).catch((killError: unknown) => {
          stopError = killError;
        });
      }
      // Counted until Docker confirms it is down, whatever the commands said.
      if (await isRunning(agent)) {
        if (stopError instanceof DriverError) throw stopError;
        throw new DriverError(`${agent} is still running after stop and kill`, ['docker', 'compose', 'stop', agent], undefined, '');
      }
    },

    list,

    async unpause(agent: string) {
      await compose(['unpause', '--', agent]);
    },

    /** The project is loaded again (`init`, one process) only when a definition file changed since the last load. */
    async definitionProblem() {
      const now = await fingerprint();
      if (definition?.fingerprint === now) return definition.problem;
      try {
        await init();
      } catch (error) {
        // Compose's verdict on the files stands until they change; a load that timed out (no exit
        // code: a loaded machine) said nothing about them, so the next check loads again.
        const verdict = error instanceof DriverError && error.exitCode === undefined ? '' : now;
        definition = { fingerprint: verdict, problem: (error as Error).message };
      }
      return definition?.problem;
    },

    async *events(signal: AbortSignal) {
      const filters = ['type=container', `label=com.docker.compose.project=${requireProject()}`];
      for await (const [agent, action] of dockerEvents(options.dockerBin, filters, `{{index .Actor.Attributes "${SERVICE_LABEL}"}}\t{{.Action}}`, signal)) {
        if (agent && action) yield { agent, action };
      }
    },

    /** Memory in use by each running service's container (`docker stats`, which takes a second or two), in bytes. */
    async memoryUsage(): Promise<Map<string, number>> {
      const services = new Map((await ps(false, ['{{.ID}}'])).map(([service, id]) => [id ?? '', service]));
      if (services.size === 0) return new Map();
      const stdout = await docker(['stats', '--no-stream', '--format', '{{.Container}}\t{{.MemUsage}}', ...services.keys()], queryTimeoutMs);
      const usage = new Map<string, number>();
      for (const line of stdout.split('\n')) {
        const [id, memory] = line.split('\t');
        const service = services.get(id ?? '');
        // "12.3MiB / 7.7GiB": what the container uses, then its limit.
        const bytes = parseDockerSize(memory?.split('/')[0] ?? '');
        if (service !== undefined && bytes !== undefined) usage.set(service, bytes);
      }
      return usage;
    },

    /**
     * Where containers of this project reach the host: the gateway of each of the agents' networks
     * that exists now, and the address `host-gateway` resolves to on this engine (what
     * `extra_hosts: pool-manager:host-gateway` puts in a container's /etc/hosts). Two docker calls;
     * none, and no address, when every agent runs on the host's network.
     */
    async bridgeAddresses(): Promise<string[]> {
      if (!offHost) return [];
      const existing = (await docker(['network', 'ls', '--format', '{{.Name}}'], queryTimeoutMs)).split('\n').filter((n) => networks.includes(n));
      const out = await docker(['network', 'inspect', '--format', NETWORK_FORMAT, DEFAULT_BRIDGE, ...existing], queryTimeoutMs);
      const gateways = parseNetworkGateways(out, parseLocalAddresses((await readOptional(FIB_TRIE)) ?? ''));
      const hostGateway = configuredHostGateway(await readOptional(DOCKER_DAEMON_JSON)) ?? gateways.get(DEFAULT_BRIDGE) ?? [];
      return [...new Set([...existing.flatMap((name) => gateways.get(name) ?? []), ...hostGateway])];
    },
  } satisfies AgentDriver & Record<string, unknown>;
  return driver;
}

export type ComposeDriver = ReturnType<typeof createComposeDriver>;

/** Docker's name for its default bridge, whose gateway `host-gateway` means unless dockerd is told otherwise. */
const DEFAULT_BRIDGE = 'bridge';
const NETWORK_FORMAT = '{{.Name}}\t{{range .IPAM.Config}}{{.Gateway}} {{end}}\t{{range .IPAM.Config}}{{.Subnet}} {{end}}';
/** Where Debian's dockerd reads `host-gateway-ip` from (its `--host-gateway-ip` flag is not visible through the API). */
export const DOCKER_DAEMON_JSON = '/etc/docker/daemon.json';
/** The kernel's routing tables, which list this host's own addresses (`/32 host LOCAL`), interface up or not. */
const FIB_TRIE = '/proc/net/fib_trie';

/**
 * Each network's gateway addresses from `docker network inspect` lines (name, gateways, subnets).
 * The default bridge's IPAM config carries no gateway (dockerd 20.10 leaves it out): such a network
 * is reached at this host's own addresses inside its subnets, which is where dockerd put the
 * bridge's address (docker0's, whatever `bip` says).
 */
export function parseNetworkGateways(out: string, localAddresses: readonly string[]): Map<string, string[]> {
  const gateways = new Map<string, string[]>();
  for (const line of out.split('\n')) {
    const [name, listed = '', subnets = ''] = line.split('\t');
    if (!name) continue;
    const addresses = listed.split(' ').map((a) => a.replace(/\/\d+$/, '')).filter(Boolean);
    const within = subnets.split(' ').filter(Boolean);
    gateways.set(name, addresses.length > 0 ? addresses : localAddresses.filter((address) => within.some((subnet) => inSubnet(address, subnet))));
  }
  return gateways;
}

/**
 * This host's own IPv4 addresses from /proc/net/fib_trie. Not os.networkInterfaces(): libuv leaves
 * out interfaces without carrier, and docker0 has none while no container is on the default bridge.
 */
export function parseLocalAddresses(fibTrie: string): string[] {
  const local = new Set<string>();
  let leaf: string | undefined;
  for (const line of fibTrie.split('\n')) {
    const node = /\|-- (\d+\.\d+\.\d+\.\d+)$/.exec(line);
    if (node) leaf = node[1];
    else if (leaf !== undefined && /\/32 host LOCAL/.test(line)) local.add(leaf);
  }
  return [...local];
}

function inSubnet(address: string, subnet: string): boolean {
  const [base, bits] = subnet.split('/');
  const width = Number(bits);
  if (base === undefined || !Number.isInteger(width) || width < 0 || width > 32 || !/^\d+\.\d+\.\d+\.\d+$/.test(base)) return false;
  const mask = width === 0 ? 0 : (~0 << (32 - width)) >>> 0;
  return ((ipv4(address) & mask) >>> 0) === ((ipv4(base) & mask) >>> 0);
}

const ipv4 = (address: string) => address.split('.').reduce((n, octet) => (n << 8) + Number(octet), 0) >>> 0;

/** dockerd's `host-gateway-ip` from its daemon.json text, when set. */
export function configuredHostGateway(daemonJson: string | undefined): string[] | undefined {
  if (daemonJson === undefined) return undefined;
  try {
    const address = (JSON.parse(daemonJson) as { 'host-gateway-ip'?: unknown })['host-gateway-ip'];
    return typeof address === 'string' && address !== '' ? [address] : undefined;
  } catch {
    return undefined;
  }
}

const readOptional = (path: string) => readFile(path, 'utf8').catch(() => undefined);

const SIZE_UNITS = new Map(Object.entries({ B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3, TiB: 1024 ** 4, kB: 1e3, KB: 1e3, MB: 1e6, GB: 1e9, TB: 1e12 }));

/** Docker's human sizes (`352KiB`, `1.045GiB`, `12.4 MB`, `0B`) in bytes; undefined for anything else. */
export function parseDockerSize(text: string): number | undefined {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]+)\s*$/.exec(text);
  if (match === null) return undefined;
  const unit = SIZE_UNITS.get(match[2] ?? '');
  return unit === undefined ? undefined : Math.round(Number(match[1]) * unit);
}

/** `docker ps` prints CreatedAt as `2026-11-25 10:50:19 +0000 UTC`. */
function parseDockerTime(text: string): number | undefined {
  const match = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}) ([+-]\d{2})(\d{2})/.exec(text);
  if (!match) return undefined;
  const ms = Date.parse(`${match[1]}T${match[2]}${match[3]}:${match[4]}`);
  return Number.isNaN(ms) ? undefined : ms;
}

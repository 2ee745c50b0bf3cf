import { z } from 'zod';
import { ConfigError } from './env-file.js';
import { AGENT_NAME_PATTERN } from './names.js';

/** The daemon's configuration (SPEC §6), after defaults and environment overrides. */
export interface PoolConfig {
  maxAgents: number;
  port: number;
  /** Addresses the bridge listens on; undefined = loopback plus the agents' Docker network gateways. */
  bind: string[] | undefined;
  evictGraceSeconds: number;
  syncIntervalSeconds: number;
  heartbeatIntervalSeconds: number;
  composeDir: string;
  composeProject: string | undefined;
  poolDir: string;
  maxBodySize: number;
  socketPath: string;
  socketGroup: string | undefined;
  infraServices: string[];
  pinnedAgents: string[];
  stopTimeoutSeconds: number;
  token: string | undefined;
  logFile: string | undefined;
  dockerBin: string;
  /**
   * `compose` (the product on one host), `swarm` (agents as services of a Docker Swarm stack, on
   * several hosts) or `process` (agents as local processes, for trying it without Docker).
   */
  driver: 'compose' | 'swarm' | 'process';
  /** The process driver's roster: agent → command (default `$COMPOSE_DIR/agents.json`). */
  processRoster: string;
  /** The swarm driver's stack (`docker stack deploy ... <stack>`); required with `POOL_DRIVER=swarm`. */
  swarmStack: string | undefined;
  /** Longest busy hold a heartbeat may ask for. */
  busyMaxSeconds: number;
  /** Most distinct agents waiting for a slot at once. */
  queueMax: number;
  /** How long a start waits for a service's healthcheck to pass. */
  readyTimeoutSeconds: number;
  eventLogMaxBytes: number;
  eventLogFiles: number;
}

export { ConfigError, DEFAULT_ENV_FILES, parseEnvFile, socketFromEnvFile } from './env-file.js';

// ---- variables, defaults and validation ----

const int = (min: number, max: number) =>
  z.coerce.number({ error: 'expected a whole number' }).int('expected a whole number').min(min, `expected at least ${min}`).max(max, `expected at most ${max}`);
const seconds = (min: number) => z.coerce.number({ error: 'expected a number of seconds' }).min(min, `expected a number of seconds ≥ ${min}`).max(86400 * 365);
const nameList = z
  .string()
  .transform((text) => text.split(',').map((s) => s.trim()).filter((s) => s !== ''))
  .pipe(z.array(z.string().regex(AGENT_NAME_PATTERN, 'expected comma-separated service names')));
const addressList = z
  .string()
  .transform((text) => text.split(',').map((s) => s.trim()).filter((s) => s !== ''))
  .pipe(z.array(z.union([z.ipv4(), z.ipv6()], 'expected comma-separated IP addresses')).min(1, 'expected at least one address'));
const text = z.string().min(1);

/** Each variable: its schema over the raw string and the default's raw string (undefined = unset). */
const VARIABLES = {
  MAX_AGENTS: [int(1, 10_000), '3'],
  POOL_PORT: [int(0, 65_535), '19000'],
  POOL_BIND: [addressList, undefined],
  EVICT_GRACE_SECONDS: [seconds(0), '60'],
  SYNC_INTERVAL: [seconds(0.1), '15'],
  HEARTBEAT_INTERVAL: [seconds(1), '30'],
  COMPOSE_DIR: [text, undefined],
  COMPOSE_PROJECT: [z.string().regex(/^[a-z0-9][a-z0-9_-]*$/, 'expected a compose project name (lowercase letters, digits, - and _)'), undefined],
  POOL_DIR: [text, undefined],
  MAX_BODY_SIZE: [int(64, 1 << 24), '4096'],
  POOL_SOCKET: [text, '/run/openclaw-pool/pool.sock'],
  POOL_SOCKET_GROUP: [text, undefined],
  INFRA_SERVICES: [nameList, 'gateway,litellm,ollama'],
  PINNED_AGENTS: [nameList, ''],
  STOP_TIMEOUT_SECONDS: [seconds(0), '10'],
  POOL_TOKEN: [text, undefined],
  LOG_FILE: [text, undefined],
  DOCKER_BIN: [text, 'docker'],
  POOL_DRIVER: [z.enum(['compose', 'swarm', 'process'], 'expected compose, swarm or process'), 'compose'],
  PROCESS_ROSTER: [text, undefined],
  // Swarm names its services `<stack>_<service>`: the stack name must be a valid start of one.
  SWARM_STACK: [z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9_-]{0,62}$/, 'expected a stack name (letters, digits, - and _, starting with a letter or digit, at most 63 characters)'), undefined],
  BUSY_MAX_SECONDS: [seconds(0), '3600'],
  QUEUE_MAX: [int(0, 100_000), '100'],
  READY_TIMEOUT_SECONDS: [seconds(1), '120'],
  EVENT_LOG_MAX_BYTES: [int(4096, 2 ** 40), '10485760'],
  EVENT_LOG_FILES: [int(0, 1000), '5'],
} as const satisfies Record<string, readonly [z.ZodType, string | undefined]>;

export type PoolVariable = keyof typeof VARIABLES;
export const POOL_VARIABLES = Object.keys(VARIABLES) as PoolVariable[];

/**
 * Names in a pool.env that are none of ours, with the nearest known variable when one is a likely
 * misspelling (`MAX_AGNETS` → `MAX_AGENTS`). A warning, never an error: the earlier manager's files
 * carry names this daemon does not use, and they must keep loading.
 */
export function unknownVariables(file: Record<string, string>): { readonly name: string; readonly closest: PoolVariable | undefined }[] {
  const known = new Set<string>([...POOL_VARIABLES, ...OTHER_KNOWN_VARIABLES]);
  return Object.keys(file)
    .filter((name) => !known.has(name))
    .map((name) => {
      let closest: PoolVariable | undefined;
      let best = Math.max(2, Math.floor(name.length / 4)) + 1;
      for (const candidate of POOL_VARIABLES) {
        const distance = editDistance(name, candidate);
        if (distance < best) [closest, best] = [candidate, distance];
      }
      return { name, closest };
    });
}

/** The warning line for one unknown variable, as the daemon logs it and doctor shows it. */
export function describeUnknownVariable(variable: { readonly name: string; readonly closest: string | undefined }, source: string): string {
  return `${source}: ${variable.name} is not an openclaw-pool variable; ignored${variable.closest === undefined ? '' : ` (did you mean ${variable.closest}?)`}`;
}

/** Read from pool.env by others than loadConfig: not unknown. */
const OTHER_KNOWN_VARIABLES = ['POOL_ENV', 'DOCKER_HOST', 'DOCKER_CONTEXT', 'DOCKER_CONFIG'];

/** Optimal string alignment distance: a swap of two neighbours (AGNETS) costs one edit. */
function editDistance(a: string, b: string): number {
  const rows = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) rows[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(rows[i - 1]![j]! + 1, rows[i]![j - 1]! + 1, rows[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, rows[i - 2]![j - 2]! + 1);
      rows[i]![j] = d;
    }
  }
  return rows[a.length]![b.length]!;
}

/** Lists may be set to empty on purpose (`PINNED_AGENTS=`); for any other variable empty means unset. */
const EMPTY_MEANS_EMPTY = new Set<PoolVariable>(['INFRA_SERVICES', 'PINNED_AGENTS']);

export interface ConfigSources {
  /** Values read from pool.env, if any. */
  file?: Record<string, string>;
  /** The process environment: overrides the file. */
  env?: Record<string, string | undefined>;
  /** Directory that stands for COMPOSE_DIR when it is not set. */
  cwd: string;
}

export function loadConfig({ file = {}, env = {}, cwd }: ConfigSources): PoolConfig {
  const problems: string[] = [];
  const read = <K extends PoolVariable>(name: K): z.output<(typeof VARIABLES)[K][0]> | undefined => {
    const [schema, fallback] = VARIABLES[name];
    let raw = env[name] ?? file[name];
    if (raw === '' && !EMPTY_MEANS_EMPTY.has(name)) raw = undefined;
    raw ??= fallback;
    if (raw === undefined) return undefined;
    const parsed = schema.safeParse(raw);
    if (parsed.success) return parsed.data as z.output<(typeof VARIABLES)[K][0]>;
    problems.push(`${name}=${JSON.stringify(raw)}: ${parsed.error.issues.map((i) => i.message).join('; ')}`);
    return undefined;
  };

  const composeDir = read('COMPOSE_DIR') ?? cwd;
  const config: PoolConfig = {
    maxAgents: read('MAX_AGENTS') ?? 0,
    port: read('POOL_PORT') ?? 0,
    bind: read('POOL_BIND'),
    evictGraceSeconds: read('EVICT_GRACE_SECONDS') ?? 0,
    syncIntervalSeconds: read('SYNC_INTERVAL') ?? 0,
    heartbeatIntervalSeconds: read('HEARTBEAT_INTERVAL') ?? 0,
    composeDir,
    composeProject: read('COMPOSE_PROJECT'),
    poolDir: read('POOL_DIR') ?? `${composeDir.replace(/\/+$/, '')}/pool`,
    maxBodySize: read('MAX_BODY_SIZE') ?? 0,
    socketPath: read('POOL_SOCKET') ?? '',
    socketGroup: read('POOL_SOCKET_GROUP'),
    infraServices: read('INFRA_SERVICES') ?? [],
    pinnedAgents: read('PINNED_AGENTS') ?? [],
    stopTimeoutSeconds: read('STOP_TIMEOUT_SECONDS') ?? 0,
    token: read('POOL_TOKEN'),
    logFile: read('LOG_FILE'),
    dockerBin: read('DOCKER_BIN') ?? 'docker',
    driver: read('POOL_DRIVER') ?? 'compose',
    processRoster: read('PROCESS_ROSTER') ?? `${composeDir.replace(/\/+$/, '')}/agents.json`,
    swarmStack: read('SWARM_STACK'),
    busyMaxSeconds: read('BUSY_MAX_SECONDS') ?? 0,
    queueMax: read('QUEUE_MAX') ?? 0,
    readyTimeoutSeconds: read('READY_TIMEOUT_SECONDS') ?? 0,
    eventLogMaxBytes: read('EVENT_LOG_MAX_BYTES') ?? 0,
    eventLogFiles: read('EVENT_LOG_FILES') ?? 0,
  };
  if (config.driver === 'swarm' && config.swarmStack === undefined && !problems.some((p) => p.startsWith('SWARM_STACK='))) {
    problems.push('SWARM_STACK is required with POOL_DRIVER=swarm: the name of the stack the agents are deployed in (docker stack deploy -c compose.yaml <name>)');
  }
  const infra = new Set(config.infraServices);
  const pinnedInfra = config.pinnedAgents.filter((name) => infra.has(name));
  if (pinnedInfra.length > 0) {
    problems.push(`PINNED_AGENTS=${JSON.stringify(config.pinnedAgents.join(','))}: ${pinnedInfra.join(', ')} also in INFRA_SERVICES, which are never pooled`);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}

/** What a reload (SIGHUP) cannot apply: the daemon bound, opened or sized these at start-up. */
const FIXED_ON_RELOAD = ['port', 'bind', 'socketPath', 'socketGroup', 'composeDir', 'composeProject', 'poolDir', 'dockerBin', 'maxBodySize', 'driver', 'processRoster', 'swarmStack', 'eventLogMaxBytes', 'eventLogFiles', 'readyTimeoutSeconds'] as const;

/** A reload's configuration: `next` where a reload may change it, `current` elsewhere; `unapplied` names the fields that changed but need a restart. */
export function reloadConfig(current: PoolConfig, next: PoolConfig): { readonly config: PoolConfig; readonly unapplied: readonly string[] } {
  const unapplied = FIXED_ON_RELOAD.filter((key) => JSON.stringify(next[key]) !== JSON.stringify(current[key]));
  return { config: { ...next, ...Object.fromEntries(FIXED_ON_RELOAD.map((key) => [key, current[key]])) }, unapplied };
}

/** The configuration as logs and config views show it: secrets only as `(set)`. */
export function redactConfig(config: PoolConfig): Record<string, unknown> {
  return { ...config, token: config.token === undefined ? undefined : '(set)' };
}

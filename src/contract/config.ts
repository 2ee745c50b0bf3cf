import * as z from 'zod';
import { parseByteSize } from './bytes.js';
import { ConfigError } from './env-file.js';
import { AGENT_NAME_PATTERN } from './names.js';

export { ConfigError, DEFAULT_ENV_FILES, parseEnvFile, socketFromEnvFile } from './env-file.js';

// ---- value schemas over the raw strings of pool.env ----

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
/** A size in bytes with an optional unit (`6G`, `5500M`, `330MiB`, `2147483648`). */
const bytes = z.string().transform((raw, ctx) => {
  const size = parseByteSize(raw);
  if (size !== undefined) return size;
  ctx.addIssue({ code: 'custom', message: 'expected a size in bytes, like 6G, 5500M or 2147483648' });
  return z.NEVER;
});
const underComposeDir = (name: string) => ({ composeDir }: DefaultContext) => `${composeDir.replace(/\/+$/, '')}/${name}`;

export interface DefaultContext {
  /** The directory that stands for COMPOSE_DIR when it is not set. */
  readonly cwd: string;
  /** COMPOSE_DIR as loaded: declared before the variables whose defaults live under it. */
  readonly composeDir: string;
}

/** One pool.env variable: everything the daemon, its reload, its views and the README know of it. */
export interface VariableSpec {
  /** The `PoolConfig` field it sets. */
  readonly field: string;
  /** Parses the raw string; its messages are what an invalid value stops the daemon with. */
  readonly schema: z.ZodType;
  /** The raw value that applies when unset; a function for values derived from the directories; absent: the field stays undefined. */
  readonly default?: string | ((context: DefaultContext) => string);
  /** The README's words for a default that is no plain value (derived, or what unset means). */
  readonly shownDefault?: string;
  /** A reload (SIGHUP) applies a new value. The others were bound, opened or handed out at start-up: a change is logged and waits for a restart. */
  readonly reloadable: boolean;
  /** Shown only as `(set)` wherever the configuration is shown (`redactConfig`: the rpc `config` query, which the SDK and doctor read). */
  readonly secret?: true;
  /** An empty value is an empty list on purpose (`PINNED_AGENTS=`); for any other variable empty means unset. */
  readonly emptyIsValue?: true;
  readonly description: string;
}

/** Every pool.env variable (SPEC §6), in the README's order. */
const VARIABLES = {
  MAX_AGENTS: { field: 'maxAgents', schema: int(1, 10_000), default: '3', reloadable: true, description: 'cap on concurrent agent containers (starting, running and stopping count)' },
  POOL_PORT: { field: 'port', schema: int(0, 65_535), default: '19000', reloadable: false, description: 'port of the HTTP bridge containers call' },
  POOL_BIND: {
    field: 'bind',
    schema: addressList,
    shownDefault: 'loopback, the gateway of each Docker network the agents use, and the address `host-gateway` resolves to (unless every agent is on `network_mode: host`)',
    reloadable: false,
    description: 'addresses the bridge listens on; unset, the list is read from Docker after every reconcile',
  },
  EVICT_GRACE_SECONDS: { field: 'evictGraceSeconds', schema: seconds(0), default: '60', reloadable: true, description: 'protection from eviction after any activity' },
  SYNC_INTERVAL: { field: 'syncIntervalSeconds', schema: seconds(0.1), default: '15', reloadable: true, description: 'seconds between reconciliations with Docker' },
  // Not reloadable: the roster writer takes it once, at start-up.
  HEARTBEAT_INTERVAL: { field: 'heartbeatIntervalSeconds', schema: seconds(1), default: '30', reloadable: false, description: 'seconds between container heartbeats, handed to the shims through roster.json; with `ACTIVITY_MODE=work`, an agent silent for three of them is unresponsive' },
  COMPOSE_DIR: { field: 'composeDir', schema: text, default: ({ cwd }) => cwd, shownDefault: 'working directory', reloadable: false, description: 'the compose project directory' },
  COMPOSE_PROJECT: {
    field: 'composeProject',
    schema: z.string().regex(/^[a-z0-9][a-z0-9_-]*$/, 'expected a compose project name (lowercase letters, digits, - and _)'),
    shownDefault: "compose's own default",
    reloadable: false,
    description: 'the compose project name (`-p`)',
  },
  POOL_DIR: { field: 'poolDir', schema: text, default: underComposeDir('pool'), shownDefault: '`$COMPOSE_DIR/pool`', reloadable: false, description: 'where state, activity marks, roster and events live' },
  MAX_BODY_SIZE: { field: 'maxBodySize', schema: int(64, 1 << 24), default: '4096', reloadable: false, description: 'largest accepted request body, in bytes' },
  POOL_SOCKET: { field: 'socketPath', schema: text, default: '/run/openclaw-pool/pool.sock', reloadable: false, description: 'Unix socket of the host API' },
  POOL_SOCKET_GROUP: { field: 'socketGroup', schema: text, reloadable: false, description: 'group of the socket' },
  INFRA_SERVICES: { field: 'infraServices', schema: nameList, default: 'gateway,litellm,ollama', reloadable: true, emptyIsValue: true, description: 'services never pooled, counted, started or stopped' },
  PINNED_AGENTS: { field: 'pinnedAgents', schema: nameList, default: '', reloadable: true, emptyIsValue: true, description: 'agents never evicted (they still count)' },
  STOP_TIMEOUT_SECONDS: { field: 'stopTimeoutSeconds', schema: seconds(0), default: '10', reloadable: true, description: 'graceful stop before kill' },
  POOL_TOKEN: { field: 'token', schema: text, reloadable: true, secret: true, description: "bearer token required on the bridge's POST endpoints" },
  // A path, no secret: the tokens themselves never enter the configuration (daemon/config.ts reads them into a TokenBook).
  POOL_TOKENS_FILE: {
    field: 'tokensFile',
    schema: text,
    reloadable: true,
    description: 'per-agent tokens: one `agent token` pair per line, mode 0600 (`openclaw-pool tokens add <agent>`); on the bridge a token is its agent, and an entry named `host` is the host',
  },
  // Not reloadable: the logger opens it once, before the daemon starts.
  LOG_FILE: { field: 'logFile', schema: text, reloadable: false, description: 'a file the log lines are also appended to' },
  DOCKER_BIN: { field: 'dockerBin', schema: text, default: 'docker', reloadable: false, description: 'the docker CLI (compose v2 as its plugin)' },
  POOL_DRIVER: {
    field: 'driver',
    schema: z.enum(['compose', 'swarm', 'process'], 'expected compose, swarm or process'),
    default: 'compose',
    reloadable: false,
    description: '`compose` (one host), `swarm` (services of a Docker Swarm stack, several hosts) or `process` (local processes, to try it without Docker)',
  },
  PROCESS_ROSTER: { field: 'processRoster', schema: text, default: underComposeDir('agents.json'), shownDefault: '`$COMPOSE_DIR/agents.json`', reloadable: false, description: "the process driver's roster: agent → command" },
  SWARM_STACK: {
    field: 'swarmStack',
    // Swarm names its services `<stack>_<service>`: the stack name must be a valid start of one.
    schema: z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9_-]{0,62}$/, 'expected a stack name (letters, digits, - and _, starting with a letter or digit, at most 63 characters)'),
    reloadable: false,
    description: "the swarm driver's stack (`docker stack deploy ... <stack>`), required with `POOL_DRIVER=swarm`",
  },
  BUSY_MAX_SECONDS: { field: 'busyMaxSeconds', schema: seconds(0), default: '3600', reloadable: true, description: 'longest busy hold a heartbeat may ask for' },
  QUEUE_MAX: { field: 'queueMax', schema: int(0, 100_000), default: '100', reloadable: true, description: 'most distinct agents waiting for a slot at once' },
  READY_TIMEOUT_SECONDS: { field: 'readyTimeoutSeconds', schema: seconds(1), default: '120', reloadable: false, description: "how long a start waits for a service's healthcheck to pass" },
  EVENT_LOG_MAX_BYTES: { field: 'eventLogMaxBytes', schema: int(4096, 2 ** 40), default: '10485760', reloadable: false, description: 'size past which events.jsonl is rotated' },
  EVENT_LOG_FILES: { field: 'eventLogFiles', schema: int(0, 1000), default: '5', reloadable: false, description: 'rotated event logs kept' },
  MEMORY_BUDGET: {
    field: 'memoryBudget',
    schema: z.union([z.literal('auto'), bytes], 'expected a size in bytes, like 6G or 5500M, or auto'),
    shownDefault: 'off',
    reloadable: true,
    description: "memory the pooled agents may use together (`6G`, `5500M`); `auto`: the host's MemTotal less `MEMORY_RESERVE`",
  },
  MEMORY_RESERVE: { field: 'memoryReserve', schema: bytes, default: '2G', reloadable: true, description: 'with `MEMORY_BUDGET=auto`, what is left to the host and the infrastructure services' },
  MEMORY_PRESSURE_MIN: {
    field: 'memoryPressureMin',
    schema: bytes,
    shownDefault: 'off',
    reloadable: true,
    description: "the pressure guard: while the host's MemAvailable is below this for 3 samples in a row, no new start, and one agent stopped per `SYNC_INTERVAL`",
  },
  AGENT_MEMORY_DEFAULT: { field: 'agentMemoryDefault', schema: bytes, default: '330M', reloadable: true, description: 'expected memory of an agent never measured and without a compose memory limit' },
  // Not reloadable: the roster writer takes it once, at start-up, and the heartbeat shim reads it there.
  ACTIVITY_MODE: {
    field: 'activityMode',
    schema: z.enum(['heartbeat', 'work'], 'expected heartbeat or work'),
    default: 'heartbeat',
    reloadable: false,
    description: '`heartbeat`: every heartbeat is activity; `work`: a plain heartbeat is liveness only, and activity is requests, busy holds, `heartbeat --active`, activity marks and measured CPU or network use',
  },
  ACTIVE_CPU_PERCENT: { field: 'activeCpuPercent', schema: z.coerce.number({ error: 'expected a percentage of one core' }).min(0, 'expected a percentage ≥ 0').max(100_000, 'expected at most 100000 (a thousand cores)'), default: '5', reloadable: true, description: 'with `ACTIVITY_MODE=work`: CPU use between two samples, in percent of one core, that counts as work' },
  ACTIVE_NET_BYTES: { field: 'activeNetBytes', schema: bytes, default: '64K', reloadable: true, description: 'with `ACTIVITY_MODE=work`: bytes received and sent between two samples that count as work (not on `network_mode: host`)' },
  IDLE_STOP_SECONDS: { field: 'idleStopSeconds', schema: seconds(1), shownDefault: 'off', reloadable: true, description: 'stop an agent idle this long (in the activity mode\'s meaning) even when the pool is not full; never pinned, busy or infrastructure' },
  CALLER_POLICY: {
    field: 'callerPolicy',
    schema: z.enum(['agents', 'open'], 'expected agents or open'),
    shownDefault: '`agents` where callers can be identified (the compose driver over the Engine API, or `POOL_TOKENS_FILE`), else `open`',
    reloadable: true,
    description: "`agents`: a container is the agent (or infrastructure service) its address or token says, and may heartbeat and hold busy only itself; `open`: any caller may act for any agent, as before ([callers](#who-is-calling))",
  },
  ACTIVITY_MARKS: {
    field: 'activityMarks',
    schema: z.enum(['on', 'off'], 'expected on or off'),
    default: 'on',
    reloadable: true,
    description: "`off`: the mtimes of `POOL_DIR/activity/<agent>` are not activity (every agent may write every mark: they cannot be attributed)",
  },
} as const satisfies Record<string, VariableSpec>;

type Variables = typeof VARIABLES;
export type PoolVariable = keyof Variables;
export const POOL_VARIABLES = Object.keys(VARIABLES) as PoolVariable[];

/** The daemon's configuration (SPEC §6), after defaults and environment overrides: one field per variable, undefined where unset and without a default. */
export type PoolConfig = {
  -readonly [N in PoolVariable as Variables[N]['field']]: z.output<Variables[N]['schema']> | (Variables[N] extends { default: unknown } ? never : undefined);
};

/** The declarations, read-only: the README's table is checked against them. */
export const POOL_VARIABLE_SPECS: Readonly<Record<PoolVariable, VariableSpec>> = VARIABLES;

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
  const config: Partial<PoolConfig> = {};
  for (const name of POOL_VARIABLES) {
    const spec: VariableSpec = VARIABLES[name];
    let raw = env[name] ?? file[name];
    if (raw === '' && !spec.emptyIsValue) raw = undefined;
    raw ??= typeof spec.default === 'function' ? spec.default({ cwd, composeDir: config.composeDir ?? cwd }) : spec.default;
    const parsed = raw === undefined ? undefined : spec.schema.safeParse(raw);
    if (parsed?.success === false) problems.push(`${name}=${JSON.stringify(raw)}: ${parsed.error.issues.map((i) => i.message).join('; ')}`);
    // An unset field is there too, as undefined: the config view lists every variable.
    else (config as Record<string, unknown>)[spec.field] = parsed?.data;
  }
  if (config.driver === 'swarm' && config.swarmStack === undefined && !problems.some((p) => p.startsWith('SWARM_STACK='))) {
    problems.push('SWARM_STACK is required with POOL_DRIVER=swarm: the name of the stack the agents are deployed in (docker stack deploy -c compose.yaml <name>)');
  }
  const { infraServices = [], pinnedAgents = [] } = config;
  const pinnedInfra = pinnedAgents.filter((name) => infraServices.includes(name));
  if (pinnedInfra.length > 0) {
    problems.push(`PINNED_AGENTS=${JSON.stringify(pinnedAgents.join(','))}: ${pinnedInfra.join(', ')} also in INFRA_SERVICES, which are never pooled`);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  // Every variable with a default set its field; the others may stay undefined.
  return config as PoolConfig;
}

const fieldsWhere = (test: (spec: VariableSpec) => boolean) => POOL_VARIABLES.filter((name) => test(VARIABLES[name])).map((name) => VARIABLES[name].field);
const FIXED_ON_RELOAD = fieldsWhere((spec) => !spec.reloadable);
const SECRETS = fieldsWhere((spec) => spec.secret === true);

/** A reload's configuration: `next` where a reload may change it, `current` elsewhere; `unapplied` names the fields that changed but need a restart. */
export function reloadConfig(current: PoolConfig, next: PoolConfig): { readonly config: PoolConfig; readonly unapplied: readonly string[] } {
  const unapplied = FIXED_ON_RELOAD.filter((field) => JSON.stringify(next[field]) !== JSON.stringify(current[field]));
  return { config: { ...next, ...Object.fromEntries(FIXED_ON_RELOAD.map((field) => [field, current[field]])) }, unapplied };
}

/** The configuration as logs and config views show it: a secret only as `(set)`. */
export function redactConfig(config: PoolConfig): Record<string, unknown> {
  return { ...config, ...Object.fromEntries(SECRETS.map((field) => [field, config[field] === undefined ? undefined : '(set)'])) };
}

import { z } from 'zod';
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
  /** `compose` (the product) or `process` (agents as local processes, for trying it without Docker). */
  driver: 'compose' | 'process';
  /** The process driver's roster: agent → command (default `$COMPOSE_DIR/agents.json`). */
  processRoster: string;
  /** Longest busy hold a heartbeat may ask for. */
  busyMaxSeconds: number;
  /** Most distinct agents waiting for a slot at once. */
  queueMax: number;
  /** How long a start waits for a service's healthcheck to pass. */
  readyTimeoutSeconds: number;
  eventLogMaxBytes: number;
  eventLogFiles: number;
}

export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

// ---- the file format: systemd's EnvironmentFile= syntax, which the same pool.env serves ----

/**
 * Parses `KEY=VALUE` lines as systemd's `EnvironmentFile=` reads them: `#` and `;` start comment
 * lines, values may be single- or double-quoted (double quotes take backslash escapes), a trailing
 * backslash continues the line, and there are no inline comments. A leading `export ` is accepted
 * for files once sourced by the earlier bash manager.
 */
export function parseEnvFile(text: string, source = 'pool.env'): Record<string, string> {
  const values: Record<string, string> = {};
  const problems: string[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    let line = lines[i] ?? '';
    // Unquoted continuation lines join before parsing, as systemd does.
    while (line.endsWith('\\') && !/^\s*[#;]/.test(line) && i + 1 < lines.length) {
      line = line.slice(0, -1) + (lines[++i] ?? '');
    }
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#') || trimmed.startsWith(';')) continue;
    const match = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(trimmed);
    if (!match) {
      problems.push(`${source}:${lineNo}: expected KEY=VALUE, got ${JSON.stringify(trimmed)}`);
      continue;
    }
    const [, key, raw] = match as unknown as [string, string, string];
    const value = unquote(raw);
    if (value === undefined) {
      problems.push(`${source}:${lineNo}: ${key} has an unterminated quote`);
      continue;
    }
    values[key] = value;
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return values;
}

function unquote(raw: string): string | undefined {
  if (raw.startsWith("'")) {
    const end = raw.indexOf("'", 1);
    return end === -1 ? undefined : raw.slice(1, end);
  }
  if (raw.startsWith('"')) {
    let out = '';
    for (let i = 1; i < raw.length; i++) {
      const ch = raw[i];
      if (ch === '"') return out;
      if (ch === '\\' && i + 1 < raw.length) out += raw[++i];
      else out += ch;
    }
    return undefined;
  }
  return raw.trimEnd();
}

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
  POOL_DRIVER: [z.enum(['compose', 'process'], 'expected compose or process'), 'compose'],
  PROCESS_ROSTER: [text, undefined],
  BUSY_MAX_SECONDS: [seconds(0), '3600'],
  QUEUE_MAX: [int(0, 100_000), '100'],
  READY_TIMEOUT_SECONDS: [seconds(1), '120'],
  EVENT_LOG_MAX_BYTES: [int(4096, 2 ** 40), '10485760'],
  EVENT_LOG_FILES: [int(0, 1000), '5'],
} as const satisfies Record<string, readonly [z.ZodType, string | undefined]>;

export type PoolVariable = keyof typeof VARIABLES;
export const POOL_VARIABLES = Object.keys(VARIABLES) as PoolVariable[];

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
    busyMaxSeconds: read('BUSY_MAX_SECONDS') ?? 0,
    queueMax: read('QUEUE_MAX') ?? 0,
    readyTimeoutSeconds: read('READY_TIMEOUT_SECONDS') ?? 0,
    eventLogMaxBytes: read('EVENT_LOG_MAX_BYTES') ?? 0,
    eventLogFiles: read('EVENT_LOG_FILES') ?? 0,
  };
  const infra = new Set(config.infraServices);
  const pinnedInfra = config.pinnedAgents.filter((name) => infra.has(name));
  if (pinnedInfra.length > 0) {
    problems.push(`PINNED_AGENTS=${JSON.stringify(config.pinnedAgents.join(','))}: ${pinnedInfra.join(', ')} also in INFRA_SERVICES, which are never pooled`);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}

import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { ConfigError, POOL_VARIABLES, type PoolVariable, formatWireTime, parseEnvFile, unknownVariables } from '../contract/index.js';
import type { Install } from './plan.js';
import { parseEnvironmentLines } from './unit-file.js';

/** The first line of a pool.env that migrate wrote: how a later run tells its own file from install.sh's. */
export const MIGRATED_HEADER = '# Migrated from the bash pool manager by `openclaw-pool migrate`';
export const SOCKET_GROUP = 'openclaw-pool';
const SECRET_NAME = /TOKEN|SECRET|PASSWORD|KEY/i;
const KNOWN = new Set<string>(POOL_VARIABLES);

/**
 * The new pool.env's values from the old pool.env and the old unit's Environment=, a line for each
 * (kept, changed, ignored, added); problems for what cannot be carried over.
 */
export function planVariables(
  install: Install,
  unit: ReadonlyMap<string, readonly string[]>,
  workingDir: string | undefined,
  lines: string[],
  problems: string[],
): { values: Map<PoolVariable, string>; composeDir: string | undefined } {
  const oldEnvPath = join(install.from, 'pool.env');
  // systemd's rule: what EnvironmentFile= sets overrides Environment=.
  const fromUnit = parseEnvironmentLines(unit.get('Service.Environment') ?? []);
  let fromFile: Record<string, string> = {};
  try {
    fromFile = install.poolEnv ? parseEnvFile(install.poolEnv.text, oldEnvPath) : {};
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    problems.push(...error.problems);
  }
  const old = new Map<string, { value: string; origin: string }>();
  for (const [name, value] of Object.entries(fromUnit)) old.set(name, { value, origin: " (from the old unit's Environment=)" });
  for (const [name, value] of Object.entries(fromFile)) old.set(name, { value, origin: '' });

  // The paths first: the other values may refer to them ($POOL_DIR/pool.log), as the bash manager's did.
  const known = new Map<string, string>([...old].map(([name, { value }]) => [name, value]));
  const expand = (name: string): string | undefined => {
    const value = known.get(name) as string;
    const expanded = expandShellReferences(value, known);
    if (typeof expanded === 'string') return expanded;
    problems.push(`${name}=${JSON.stringify(value)}: refers to ${expanded.missing}, which neither the old pool.env nor the old unit sets (the bash manager's shell expanded it; systemd does not): write the value out in ${oldEnvPath}`);
    return undefined;
  };
  const values = new Map<PoolVariable, string>();
  const composeDir = placeComposeDir(known.has('COMPOSE_DIR') ? expand('COMPOSE_DIR') : undefined, workingDir, install.from, lines, problems);
  if (composeDir !== undefined) values.set('COMPOSE_DIR', composeDir);
  known.set('COMPOSE_DIR', composeDir ?? '');
  placePoolDir(known.has('POOL_DIR') ? expand('POOL_DIR') : undefined, workingDir ?? composeDir, install.from, lines, problems);
  values.set('POOL_DIR', install.from);
  known.set('POOL_DIR', install.from);

  for (const [name, { value, origin }] of old) {
    if (name === 'COMPOSE_DIR' || name === 'POOL_DIR') continue;
    if (!KNOWN.has(name)) {
      const closest = unknownVariables({ [name]: value })[0]?.closest;
      lines.push(`ignore ${name}=${shown(name, value)}: not used by openclaw-pool${closest === undefined ? '' : ` (did you mean ${closest}?)`}`);
      continue;
    }
    const expanded = expand(name);
    if (expanded === undefined) continue;
    values.set(name as PoolVariable, expanded);
    lines.push(expanded === value ? `keep ${name}=${shown(name, value)}${origin}` : `change ${name}: ${value} (expanded by the bash manager's shell) → ${shown(name, expanded)}`);
  }
  if (!values.has('POOL_SOCKET_GROUP')) {
    values.set('POOL_SOCKET_GROUP', SOCKET_GROUP);
    lines.push(`add POOL_SOCKET_GROUP=${SOCKET_GROUP}: the socket's group (usermod -aG ${SOCKET_GROUP} <user> to use poolctl without sudo)`);
  }
  if (!values.has('POOL_BIND')) {
    lines.push('change POOL_BIND: unset → loopback and the Docker gateways the agents use (a socat TCP-LISTEN takes every interface; set POOL_BIND=0.0.0.0 for that)');
  }
  return { values, composeDir };
}

function placeComposeDir(value: string | undefined, workingDir: string | undefined, from: string, lines: string[], problems: string[]): string | undefined {
  if (value !== undefined && isAbsolute(value)) {
    lines.push(`keep COMPOSE_DIR=${value}`);
    return value;
  }
  if (value !== undefined) {
    if (workingDir === undefined) {
      problems.push(`COMPOSE_DIR=${value} is relative and the old unit sets no WorkingDirectory=: write the absolute path in ${join(from, 'pool.env')}`);
      return undefined;
    }
    const absolute = resolve(workingDir, value);
    lines.push(`change COMPOSE_DIR: ${value} (relative to the old unit's WorkingDirectory) → ${absolute}`);
    return absolute;
  }
  if (workingDir !== undefined) {
    lines.push(`change COMPOSE_DIR: unset (the old unit's WorkingDirectory) → ${workingDir}, written explicitly`);
    return workingDir;
  }
  if (basename(from) === 'pool') {
    lines.push(`change COMPOSE_DIR: unset (the directory above POOL_DIR, as POOL_DIR's default has it) → ${dirname(from)}, written explicitly`);
    return dirname(from);
  }
  problems.push(`COMPOSE_DIR is not set, the old unit sets no WorkingDirectory= and ${from} is not <project>/pool: set COMPOSE_DIR in ${join(from, 'pool.env')}`);
  return undefined;
}

function placePoolDir(value: string | undefined, base: string | undefined, from: string, lines: string[], problems: string[]): void {
  if (value === undefined) {
    lines.push(`change POOL_DIR: unset → ${from}, written explicitly`);
    return;
  }
  const absolute = base === undefined ? value : resolve(base, value);
  if (absolute !== from) problems.push(`POOL_DIR=${value} in ${join(from, 'pool.env')} is not the directory given with --from (${from})`);
  else lines.push(value === from ? `keep POOL_DIR=${value}` : `change POOL_DIR: ${value} → ${from}, written as an absolute path`);
}

/**
 * The bash manager `source`d its pool.env, so `POOL_DIR=$COMPOSE_DIR/pool` worked there; systemd
 * reads it literally. References to variables the old files set are expanded; any other is named.
 */
function expandShellReferences(value: string, vars: ReadonlyMap<string, string>): string | { missing: string } {
  let missing: string | undefined;
  const expanded = value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (_, braced: string | undefined, bare: string | undefined) => {
    const name = (braced ?? bare) as string;
    const found = vars.get(name);
    // One level only: a value that itself refers on is named rather than guessed at.
    if (found === undefined || found.includes('$')) missing ??= name;
    return found ?? '';
  });
  return missing === undefined ? expanded : { missing };
}

export function renderPoolEnv(values: ReadonlyMap<string, string>, oldEnvPath: string, backupDir: string, now: number, show: (name: string, value: string) => string): string {
  const header = [
    `${MIGRATED_HEADER} at ${formatWireTime(now)} from`,
    `# ${oldEnvPath}; the original is in ${backupDir}/pool.env.`,
    '# Each variable is documented in /opt/openclaw-pool/pool.env.example; `systemctl reload openclaw-pool` applies a change.',
  ];
  return `${[...header, ...[...values].map(([name, value]) => `${name}=${envValue(show(name, value))}`)].join('\n')}\n`;
}

/** A value as parseEnvFile and systemd's EnvironmentFile= read it back unchanged. */
export function envValue(value: string): string {
  return /^[A-Za-z0-9_./:,@%+=-]*$/.test(value) ? value : `"${value.replace(/[\\"]/g, '\\$&')}"`;
}

export function shown(name: string, value: string): string {
  return SECRET_NAME.test(name) && value !== '' ? `(set, ${value.length} characters)` : value;
}

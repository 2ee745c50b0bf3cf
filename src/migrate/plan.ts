import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { ConfigError, POOL_VARIABLES, type PoolVariable, formatWireTime, loadConfig, parseEnvFile, unknownVariables } from '../contract/index.js';
import { parseAutostart } from '../core/index.js';
import { parseState } from '../store/index.js';
import { type Action, renderShell } from './actions.js';
import { type Layout, UNIT_NAME } from './layout.js';
import { execProgram, parseEnvironmentLines, parseUnit } from './unit-file.js';

/** A file of the old POOL_DIR as migrate read it (never through a symlink). */
export interface OldFile {
  readonly text: string;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
}

/** Everything migrate looks at before it decides; read by `readInstall`, or built by a test. */
export interface Install {
  readonly layout: Layout;
  /** The bash manager's POOL_DIR (--from), absolute. */
  readonly from: string;
  readonly poolEnv: OldFile | undefined;
  readonly autostart: OldFile | undefined;
  readonly state: OldFile | undefined;
  /** The unit file at `layout.unit`, whoever wrote it. */
  readonly unit: string | undefined;
  /** Files in `layout.unitDropInDir`. */
  readonly unitDropIns: readonly { readonly name: string; readonly text: string }[];
  /** What `systemctl is-active` / `is-enabled` say of it. */
  readonly unitActive: string;
  readonly unitEnabled: string;
  readonly shippedUnit: string | undefined;
  /** `layout.poolEnv`, if there. */
  readonly configuredPoolEnv: string | undefined;
  /** The runtime drop-in an interrupted run may have left. */
  readonly dropInLeft: boolean;
  /** Earlier migrations' backup directories, oldest first, with the files each holds. */
  readonly backups: readonly { readonly name: string; readonly files: readonly string[] }[];
}

export type MigrationPlan =
  /** `old-config`: the old files cannot become a valid pool.env (exit 78); `not-ready`: something else is missing (exit 1). */
  | { readonly outcome: 'refused'; readonly reason: 'old-config' | 'not-ready'; readonly lines: readonly string[]; readonly problems: readonly string[] }
  | { readonly outcome: 'done'; readonly lines: readonly string[] }
  | { readonly outcome: 'migrate'; readonly lines: readonly string[]; readonly actions: readonly Action[]; readonly backupDir: string };

/** The first line of a pool.env that migrate wrote: how a later run tells its own file from install.sh's. */
export const MIGRATED_HEADER = '# Migrated from the bash pool manager by `openclaw-pool migrate`';
export const SOCKET_GROUP = 'openclaw-pool';
/** The unit stays as it is, but stops stopping anything: see `stopKeepingAgents`. */
export const NEUTRAL_DROP_IN = '[Service]\nExecStop=\nExecStopPost=\nRestart=no\n';
const SECRET_NAME = /TOKEN|SECRET|PASSWORD|KEY/i;
const KNOWN = new Set<string>(POOL_VARIABLES);

/**
 * Decides how to take over an install of the bash pool manager, from what `readInstall` found:
 * what is kept, changed and ignored (one line each), and the steps that do it. Pure: the clock is
 * `now`, and the same facts always give the same plan, which is what makes a second run see that
 * the first one finished, and finish one that was interrupted.
 */
export function planMigration(install: Install, now: number): MigrationPlan {
  const { layout } = install;
  const unitIsOurs = install.unit !== undefined && (install.unit === install.shippedUnit || isOurUnit(install.unit));
  if (unitIsOurs && install.configuredPoolEnv !== undefined && install.poolEnv === undefined) return planFinish(install);
  const foreignUnit = unitIsOurs ? undefined : install.unit;
  if (foreignUnit === undefined && !install.poolEnv && !install.state && !install.autostart) {
    return refused('not-ready', [], [`${install.from} holds no pool.env, state.json or autostart.txt, and ${layout.unit} is not the bash manager's: nothing to migrate`]);
  }

  const lines: string[] = [];
  const problems: string[] = [];
  const unit = parseUnit(foreignUnit ?? '');
  const workingDir = last(unit.get('Service.WorkingDirectory'))?.replace(/^-/, '');
  const oldEnvPath = join(install.from, 'pool.env');
  for (const file of (unit.get('Service.EnvironmentFile') ?? []).map((f) => f.replace(/^-/, ''))) {
    if (file !== oldEnvPath) problems.push(`the old unit reads EnvironmentFile=${file}, not ${oldEnvPath}: put those settings into ${oldEnvPath}, or run migrate --from the directory that holds it`);
  }

  const { values, composeDir } = planVariables(install, unit, workingDir, lines, problems);
  const user = last(unit.get('Service.User'));
  if (user !== undefined && user !== 'root' && user !== '0') {
    lines.push(`change User=${user}: openclaw-pool runs as root (it drives Docker); for poolctl: usermod -aG ${SOCKET_GROUP} ${user}`);
  }

  let socket = '';
  if (problems.length === 0) {
    try {
      socket = resolve('/', loadConfig({ file: Object.fromEntries(values), cwd: composeDir ?? '/' }).socketPath);
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      problems.push(...error.problems);
    }
  }
  const running = describeFiles(install, lines);
  if (problems.length > 0) return refused('old-config', lines, problems);

  const reuse = unitIsOurs ? install.backups.at(-1) : undefined;
  const backupDir = reuse ? join(layout.backupRoot, reuse.name) : join(layout.backupRoot, freshName(install, now));
  const kept = new Set(reuse?.files ?? []);
  // Drop-ins apply to any unit of that name: the old one's would change ours (an ExecStop= of its own).
  const oldDropIns = foreignUnit === undefined ? [] : install.unitDropIns;
  const configuredIsOurs = install.configuredPoolEnv?.startsWith(MIGRATED_HEADER) ?? false;
  const saved = (name: string, from: string, text: string | undefined): Action[] =>
    text === undefined || kept.has(name) ? [] : [{ kind: 'save', from, to: join(backupDir, name), text, mode: 0o600 }];

  if (install.poolEnv) lines.push(`move pool.env → ${layout.poolEnv} (containers can write ${install.from}); COMPOSE_DIR and POOL_DIR written explicitly, mode 0640, root`);
  else lines.push(`write ${layout.poolEnv}: the old install had no pool.env (its defaults and the unit's settings, written explicitly)`);
  if (install.configuredPoolEnv !== undefined && !configuredIsOurs) lines.push(`replace ${layout.poolEnv}, written by install.sh or by hand (backup in ${backupDir}/etc-pool.env)`);
  if (foreignUnit !== undefined) {
    lines.push(`replace ${layout.unit}: it runs ${execProgram(last(unit.get('Service.ExecStart')) ?? '') || 'nothing'} (backup in ${backupDir}/${UNIT_NAME})`);
    lines.push(
      install.unitActive === 'active'
        ? "stop the old manager: systemctl kill --signal=SIGKILL, its ExecStop=, ExecStopPost= and Restart= switched off first (its own stop would stop the agents: never systemctl stop); the agents keep running, the bridge is down for a few seconds"
        : `note the old unit is ${install.unitActive}: there is no old manager to stop`,
    );
    for (const { name } of oldDropIns) lines.push(`move ${join(layout.unitDropInDir, name)} → ${backupDir}/dropin-${name}: the old unit's drop-in would apply to openclaw-pool's`);
  } else if (install.unit === undefined) {
    lines.push(`install ${layout.unit}; no old unit was there: if the bash manager runs outside systemd, kill -9 it before (a TERM trap could stop the agents)`);
  } else {
    lines.push(`keep ${layout.unit}: already openclaw-pool's`);
  }
  if (!unitIsOurs && install.shippedUnit === undefined) {
    return refused('not-ready', lines, [`${layout.shippedUnit} is missing: run scripts/install.sh first (it installs openclaw-pool and leaves the old unit to this command)`]);
  }
  lines.push(`add ${layout.pathsConf}: POOL_DIR writable for the service (the unit keeps /home read-only)`);
  lines.push(`enable and start ${UNIT_NAME}; it takes over ${running.length > 0 ? running.join(', ') : 'the running agents'} without restarting them`);
  lines.push(`back up to ${backupDir}/: what a rollback needs, and ROLLBACK (sh ${backupDir}/ROLLBACK goes back)`);

  const envText = renderPoolEnv(values, oldEnvPath, backupDir, now, (_, value) => value);
  const envShown = renderPoolEnv(values, oldEnvPath, backupDir, now, shown);
  const actions: Action[] = [
    { kind: 'mkdir', path: backupDir, mode: 0o700 },
    ...saved(UNIT_NAME, layout.unit, foreignUnit),
    ...saved('pool.env', oldEnvPath, install.poolEnv?.text),
    ...saved('state.json', join(install.from, 'state.json'), install.state?.text),
    ...saved('autostart.txt', join(install.from, 'autostart.txt'), install.autostart?.text),
    ...saved('etc-pool.env', layout.poolEnv, configuredIsOurs ? undefined : install.configuredPoolEnv),
    ...oldDropIns.flatMap(({ name, text }) => saved(`dropin-${name}`, join(layout.unitDropInDir, name), text)),
    ...(kept.has('ROLLBACK') ? [] : [{ kind: 'write', path: join(backupDir, 'ROLLBACK'), text: rollbackScript(install, backupDir, foreignUnit !== undefined || kept.has(UNIT_NAME), oldDropIns, configuredIsOurs, now), mode: 0o600 } as const]),
    { kind: 'mkdir', path: layout.configDir, mode: 0o755 },
    { kind: 'write', path: layout.poolEnv, text: envText, mode: 0o640, shown: envShown },
    ...(foreignUnit !== undefined || install.dropInLeft ? stopKeepingAgents(layout) : []),
    ...oldDropIns.map(({ name }): Action => ({ kind: 'remove', path: join(layout.unitDropInDir, name) })),
    { kind: 'node', script: layout.writePathsConf, args: [layout.poolEnv, layout.pathsConf] },
    ...(unitIsOurs ? [] : [{ kind: 'install', from: layout.shippedUnit, to: layout.unit, mode: 0o644 } as const]),
    { kind: 'systemctl', args: ['daemon-reload'] },
    // reenable, not enable: it also drops the old unit's [Install] links when they differ from ours.
    ...(unitIsOurs && install.unitEnabled === 'enabled' ? [] : [{ kind: 'systemctl', args: ['reenable', UNIT_NAME] } as const]),
    ...(unitIsOurs && install.unitActive === 'active' ? [] : [{ kind: 'systemctl', args: ['start', UNIT_NAME] } as const]),
    { kind: 'check-agents', socket, agents: running },
    // Last: until the new daemon is up, the old file is where a rollback is simplest.
    ...(install.poolEnv ? [{ kind: 'remove', path: oldEnvPath } as const] : []),
  ];
  return { outcome: 'migrate', lines, actions, backupDir };
}

/**
 * The new pool.env's values from the old pool.env and the old unit's Environment=, a line for each
 * (kept, changed, ignored, added); problems for what cannot be carried over.
 */
function planVariables(
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

/** Our unit and /etc pool.env are in place and the old pool.env is gone: at most a start is left. */
function planFinish(install: Install): MigrationPlan {
  const { layout } = install;
  const lines = [`keep ${layout.unit}: openclaw-pool's`, `keep ${layout.poolEnv}`, `keep ${install.from}: no pool.env left to move`];
  let socket: string;
  try {
    socket = resolve('/', loadConfig({ file: parseEnvFile(install.configuredPoolEnv ?? '', layout.poolEnv), cwd: '/' }).socketPath);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    return refused('old-config', lines, error.problems);
  }
  const actions: Action[] = [];
  if (install.dropInLeft) {
    lines.push(`remove ${layout.dropIn}, left by an interrupted run`);
    actions.push(...cleanDropIn(layout), { kind: 'systemctl', args: ['daemon-reload'] });
  }
  if (install.unitActive !== 'active') {
    lines.push(`start ${UNIT_NAME}: it is ${install.unitActive}`);
    actions.push({ kind: 'systemctl', args: ['start', UNIT_NAME] }, { kind: 'check-agents', socket, agents: runningAgents(install.state) });
  }
  const backup = install.backups.at(-1);
  if (actions.length === 0) {
    return { outcome: 'done', lines: [...lines, `done: already migrated${backup ? ` (backup in ${join(layout.backupRoot, backup.name)})` : ''}; nothing to do`] };
  }
  return { outcome: 'migrate', lines, actions, backupDir: backup ? join(layout.backupRoot, backup.name) : layout.backupRoot };
}

/**
 * The old unit is left in place but stops stopping anything, then its processes are killed: after
 * a kill systemd still runs ExecStopPost= (and ExecStop= too where the kill counts as success,
 * SuccessExitStatus=), either of which may stop the agents, and Restart= would bring the old
 * manager back. The systemd suite saw an ExecStopPost= stop the agents without this. The drop-in
 * is a runtime one, gone at reboot, and is removed as soon as the kill is done.
 */
function stopKeepingAgents(layout: Layout): Action[] {
  return [
    { kind: 'mkdir', path: layout.dropInDir, mode: 0o755 },
    { kind: 'write', path: layout.dropIn, text: NEUTRAL_DROP_IN, mode: 0o644 },
    { kind: 'systemctl', args: ['daemon-reload'] },
    { kind: 'kill', unit: UNIT_NAME },
    { kind: 'systemctl', args: ['reset-failed', UNIT_NAME] },
    ...cleanDropIn(layout),
  ];
}

function cleanDropIn(layout: Layout): Action[] {
  return [
    { kind: 'remove', path: layout.dropIn },
    { kind: 'rmdir', path: layout.dropInDir },
  ];
}

/** The sh script that puts the bash manager back, agents still running; kept beside the backup. */
function rollbackScript(
  install: Install,
  backupDir: string,
  hasOldUnit: boolean,
  oldDropIns: Install['unitDropIns'],
  configuredIsOurs: boolean,
  now: number,
): string {
  const { layout } = install;
  const restoreConfigured: Action =
    install.configuredPoolEnv !== undefined && !configuredIsOurs
      ? { kind: 'install', from: join(backupDir, 'etc-pool.env'), to: layout.poolEnv, mode: 0o640 }
      : { kind: 'remove', path: layout.poolEnv };
  const wasEnabled = install.unitEnabled === 'enabled';
  const sections: [string, Action[]][] = [
    ['Stop openclaw-pool, never with systemctl stop (that stops the agents): its stop commands and restarts off, then SIGKILL.', stopKeepingAgents(layout)],
    [
      'Put the old files back.',
      [
        ...(hasOldUnit
          ? [{ kind: 'install', from: join(backupDir, UNIT_NAME), to: layout.unit, mode: 0o644 } as const]
          : [{ kind: 'systemctl', args: ['disable', UNIT_NAME] } as const, { kind: 'remove', path: layout.unit } as const]),
        ...(install.poolEnv
          ? [{ kind: 'install', from: join(backupDir, 'pool.env'), to: join(install.from, 'pool.env'), mode: install.poolEnv.mode & 0o7777, owner: { uid: install.poolEnv.uid, gid: install.poolEnv.gid } } as const]
          : []),
        restoreConfigured,
        { kind: 'remove', path: layout.pathsConf },
        ...oldDropIns.map(({ name }): Action => ({ kind: 'install', from: join(backupDir, `dropin-${name}`), to: join(layout.unitDropInDir, name), mode: 0o644 })),
        { kind: 'rmdir', path: layout.unitDropInDir },
      ],
    ],
    [
      hasOldUnit ? 'Start the bash manager again.' : 'Reload systemd.',
      [
        { kind: 'systemctl', args: ['daemon-reload'] },
        ...(hasOldUnit ? [{ kind: 'systemctl', args: [wasEnabled ? 'reenable' : 'disable', UNIT_NAME] } as const] : []),
        ...(hasOldUnit && install.unitActive === 'active' ? [{ kind: 'systemctl', args: ['start', UNIT_NAME] } as const] : []),
      ],
    ],
  ];
  const header = [
    '#!/bin/sh',
    `# Rolls back \`openclaw-pool migrate --from ${install.from}\` of ${formatWireTime(now)}: the bash pool`,
    '# manager takes over again and the agents keep running. Run as root: sh ROLLBACK',
    "# state.json stays as openclaw-pool left it (the bash manager's shape); the one from before is beside this file.",
    'set -eu',
  ];
  return `${[...header, ...sections.flatMap(([comment, actions]) => ['', `# ${comment}`, ...actions.map(renderShell)])].join('\n')}\n`;
}

/** Says what happens to autostart.txt and state.json (both stay in POOL_DIR); returns the agents state.json has in the pool. */
function describeFiles(install: Install, lines: string[]): string[] {
  const { from } = install;
  if (install.autostart) {
    const list = parseAutostart(install.autostart.text);
    lines.push(`keep autostart.txt: ${list.agents.join(', ') || 'no agents'} (stays in ${from}, read there)`);
    for (const bad of list.invalid) lines.push(`ignore autostart.txt line ${bad.line} ${JSON.stringify(bad.text)}: not an agent name`);
  } else {
    lines.push(`note no autostart.txt in ${from}: no agent is started at start-up`);
  }
  if (!install.state) {
    lines.push(`note no state.json in ${from}: the daemon adopts the running agents from Docker`);
    return [];
  }
  try {
    const { state, ignored } = parseState(install.state.text);
    const names = [...state.agents.keys()];
    lines.push(`keep state.json: ${names.length} running agent${names.length === 1 ? '' : 's'}${names.length > 0 ? ` (${names.join(', ')})` : ''}, loaded as is`);
    for (const name of ignored) lines.push(`ignore state.json entry ${name}: its status is not a pooled one`);
    return names;
  } catch (error) {
    lines.push(`change state.json: unreadable (${(error as Error).message}); the daemon moves it aside and rebuilds the state from Docker`);
    return [];
  }
}

function runningAgents(state: OldFile | undefined): string[] {
  try {
    return state ? [...parseState(state.text).state.agents.keys()] : [];
  } catch {
    return [];
  }
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

function renderPoolEnv(values: ReadonlyMap<string, string>, oldEnvPath: string, backupDir: string, now: number, show: (name: string, value: string) => string): string {
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

function shown(name: string, value: string): string {
  return SECRET_NAME.test(name) && value !== '' ? `(set, ${value.length} characters)` : value;
}

function isOurUnit(text: string): boolean {
  const program = execProgram(last(parseUnit(text).get('Service.ExecStart')) ?? '');
  return program === '/usr/local/bin/openclaw-pool' || program.startsWith('/opt/openclaw-pool/');
}

/** A new backup directory's name: the time, made unique against earlier ones. */
function freshName(install: Install, now: number): string {
  const base = formatWireTime(now).replace(/[-:]/g, '');
  const taken = new Set(install.backups.map((b) => b.name));
  let name = base;
  for (let n = 2; taken.has(name); n++) name = `${base}-${n}`;
  return name;
}

function last<T>(values: readonly T[] | undefined): T | undefined {
  return values?.at(-1);
}

function refused(reason: 'old-config' | 'not-ready', lines: readonly string[], problems: readonly string[]): MigrationPlan {
  return { outcome: 'refused', reason, lines, problems };
}

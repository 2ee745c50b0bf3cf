import { join, resolve } from 'node:path';
import { ConfigError, type PoolVariable, loadConfig, parseEnvFile } from '../contract/index.js';
import { parseAutostart } from '../core/index.js';
import { parseState } from '../store/index.js';
import type { Action } from './actions.js';
import { type Layout, UNIT_NAME } from './layout.js';
import { cleanDropIn, describeTakeover, planTakeover, takeoverActions } from './takeover.js';
import { execProgram, lastSetting, parseUnit } from './unit-file.js';
import { SOCKET_GROUP, planVariables } from './variables.js';

export { envValue } from './variables.js';

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
  const { values, socket } = carryOver(install, unit, lines, problems);
  const running = describeFiles(install, lines);
  if (problems.length > 0) return refused('old-config', lines, problems);

  const takeover = planTakeover(install, unitIsOurs, now);
  describeTakeover(takeover, unit, lines);
  if (!unitIsOurs && install.shippedUnit === undefined) {
    return refused('not-ready', lines, [`${layout.shippedUnit} is missing: run scripts/install.sh first (it installs openclaw-pool and leaves the old unit to this command)`]);
  }
  lines.push(`add ${layout.pathsConf}: POOL_DIR writable for the service (the unit keeps /home read-only)`);
  lines.push(`enable and start ${UNIT_NAME}; it takes over ${running.length > 0 ? running.join(', ') : 'the running agents'} without restarting them`);
  lines.push(`back up to ${takeover.backupDir}/: what a rollback needs, and ROLLBACK (sh ${takeover.backupDir}/ROLLBACK goes back)`);
  return { outcome: 'migrate', lines, actions: takeoverActions(takeover, values, socket, running), backupDir: takeover.backupDir };
}

/**
 * What the old unit and pool.env carry over: the new pool.env's values, and the socket the new
 * daemon will answer on ('' when there are problems), with a line or a problem for each setting.
 */
function carryOver(
  install: Install,
  unit: ReadonlyMap<string, readonly string[]>,
  lines: string[],
  problems: string[],
): { values: Map<PoolVariable, string>; socket: string } {
  const workingDir = lastSetting(unit, 'Service.WorkingDirectory')?.replace(/^-/, '');
  const oldEnvPath = join(install.from, 'pool.env');
  for (const file of (unit.get('Service.EnvironmentFile') ?? []).map((f) => f.replace(/^-/, ''))) {
    if (file !== oldEnvPath) problems.push(`the old unit reads EnvironmentFile=${file}, not ${oldEnvPath}: put those settings into ${oldEnvPath}, or run migrate --from the directory that holds it`);
  }

  const { values, composeDir } = planVariables(install, unit, workingDir, lines, problems);
  const user = lastSetting(unit, 'Service.User');
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
  return { values, socket };
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

function isOurUnit(text: string): boolean {
  const program = execProgram(lastSetting(parseUnit(text), 'Service.ExecStart') ?? '');
  return program === '/usr/local/bin/openclaw-pool' || program.startsWith('/opt/openclaw-pool/');
}

function refused(reason: 'old-config' | 'not-ready', lines: readonly string[], problems: readonly string[]): MigrationPlan {
  return { outcome: 'refused', reason, lines, problems };
}

import { join } from 'node:path';
import { type PoolVariable, formatWireTime } from '../contract/index.js';
import { type Action, renderShell } from './actions.js';
import { type Layout, UNIT_NAME } from './layout.js';
import type { Install } from './plan.js';
import { execProgram, lastSetting } from './unit-file.js';
import { MIGRATED_HEADER, renderPoolEnv, shown } from './variables.js';

/** The unit stays as it is, but stops stopping anything: see `stopKeepingAgents`. */
export const NEUTRAL_DROP_IN = '[Service]\nExecStop=\nExecStopPost=\nRestart=no\n';

/** What a migration that goes ahead is decided on, beyond the install itself. */
export interface Takeover {
  readonly install: Install;
  /** The unit in place when it is not openclaw-pool's (the bash manager's, or anyone's). */
  readonly foreignUnit: string | undefined;
  readonly unitIsOurs: boolean;
  readonly backupDir: string;
  /** What an earlier run already saved in `backupDir` (it is reused when our unit is in place). */
  readonly kept: ReadonlySet<string>;
  readonly oldDropIns: Install['unitDropIns'];
  /** The pool.env in /etc is one a migration wrote. */
  readonly configuredIsOurs: boolean;
  readonly oldEnvPath: string;
  readonly now: number;
}

export function planTakeover(install: Install, unitIsOurs: boolean, now: number): Takeover {
  const { layout } = install;
  const foreignUnit = unitIsOurs ? undefined : install.unit;
  const reuse = unitIsOurs ? install.backups.at(-1) : undefined;
  return {
    install,
    foreignUnit,
    unitIsOurs,
    backupDir: reuse ? join(layout.backupRoot, reuse.name) : join(layout.backupRoot, freshName(install, now)),
    kept: new Set(reuse?.files ?? []),
    // Drop-ins apply to any unit of that name: the old one's would change ours (an ExecStop= of its own).
    oldDropIns: foreignUnit === undefined ? [] : install.unitDropIns,
    configuredIsOurs: install.configuredPoolEnv?.startsWith(MIGRATED_HEADER) ?? false,
    oldEnvPath: join(install.from, 'pool.env'),
    now,
  };
}

/** The lines that say what happens to pool.env and to the unit in place (`unit`: the old one, parsed). */
export function describeTakeover(t: Takeover, unit: ReadonlyMap<string, readonly string[]>, lines: string[]): void {
  const { install, backupDir, foreignUnit } = t;
  const { layout } = install;
  if (install.poolEnv) lines.push(`move pool.env → ${layout.poolEnv} (containers can write ${install.from}); COMPOSE_DIR and POOL_DIR written explicitly, mode 0640, root`);
  else lines.push(`write ${layout.poolEnv}: the old install had no pool.env (its defaults and the unit's settings, written explicitly)`);
  if (install.configuredPoolEnv !== undefined && !t.configuredIsOurs) lines.push(`replace ${layout.poolEnv}, written by install.sh or by hand (backup in ${backupDir}/etc-pool.env)`);
  if (foreignUnit !== undefined) {
    lines.push(`replace ${layout.unit}: it runs ${execProgram(lastSetting(unit, 'Service.ExecStart') ?? '') || 'nothing'} (backup in ${backupDir}/${UNIT_NAME})`);
    lines.push(
      install.unitActive === 'active'
        ? "stop the old manager: systemctl kill --signal=SIGKILL, its ExecStop=, ExecStopPost= and Restart= switched off first (its own stop would stop the agents: never systemctl stop); the agents keep running, the bridge is down for a few seconds"
        : `note the old unit is ${install.unitActive}: there is no old manager to stop`,
    );
    for (const { name } of t.oldDropIns) lines.push(`move ${join(layout.unitDropInDir, name)} → ${backupDir}/dropin-${name}: the old unit's drop-in would apply to openclaw-pool's`);
  } else if (install.unit === undefined) {
    lines.push(`install ${layout.unit}; no old unit was there: if the bash manager runs outside systemd, kill -9 it before (a TERM trap could stop the agents)`);
  } else {
    lines.push(`keep ${layout.unit}: already openclaw-pool's`);
  }
}

/** The steps, in order: back up, write the new pool.env, stop the old manager keeping its agents, install and start ours, check the agents. */
export function takeoverActions(t: Takeover, values: ReadonlyMap<PoolVariable, string>, socket: string, running: readonly string[]): Action[] {
  const { install, backupDir, kept, foreignUnit, unitIsOurs, oldEnvPath } = t;
  const { layout } = install;
  const saved = (name: string, from: string, text: string | undefined): Action[] =>
    text === undefined || kept.has(name) ? [] : [{ kind: 'save', from, to: join(backupDir, name), text, mode: 0o600 }];
  const envText = renderPoolEnv(values, oldEnvPath, backupDir, t.now, (_, value) => value);
  const envShown = renderPoolEnv(values, oldEnvPath, backupDir, t.now, shown);
  return [
    { kind: 'mkdir', path: backupDir, mode: 0o700 },
    ...saved(UNIT_NAME, layout.unit, foreignUnit),
    ...saved('pool.env', oldEnvPath, install.poolEnv?.text),
    ...saved('state.json', join(install.from, 'state.json'), install.state?.text),
    ...saved('autostart.txt', join(install.from, 'autostart.txt'), install.autostart?.text),
    ...saved('etc-pool.env', layout.poolEnv, t.configuredIsOurs ? undefined : install.configuredPoolEnv),
    ...t.oldDropIns.flatMap(({ name, text }) => saved(`dropin-${name}`, join(layout.unitDropInDir, name), text)),
    ...(kept.has('ROLLBACK') ? [] : [{ kind: 'write', path: join(backupDir, 'ROLLBACK'), text: rollbackScript(t), mode: 0o600 } as const]),
    { kind: 'mkdir', path: layout.configDir, mode: 0o755 },
    { kind: 'write', path: layout.poolEnv, text: envText, mode: 0o640, shown: envShown },
    ...(foreignUnit !== undefined || install.dropInLeft ? stopKeepingAgents(layout) : []),
    ...t.oldDropIns.map(({ name }): Action => ({ kind: 'remove', path: join(layout.unitDropInDir, name) })),
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
}

/**
 * The old unit is left in place but stops stopping anything, then its processes are killed: after
 * a kill systemd still runs ExecStopPost= (and ExecStop= too where the kill counts as success,
 * SuccessExitStatus=), either of which may stop the agents, and Restart= would bring the old
 * manager back. The systemd suite saw an ExecStopPost= stop the agents without this. The drop-in
 * is a runtime one, gone at reboot, and is removed as soon as the kill is done.
 */
export function stopKeepingAgents(layout: Layout): Action[] {
  return [
    { kind: 'mkdir', path: layout.dropInDir, mode: 0o755 },
    { kind: 'write', path: layout.dropIn, text: NEUTRAL_DROP_IN, mode: 0o644 },
    { kind: 'systemctl', args: ['daemon-reload'] },
    { kind: 'kill', unit: UNIT_NAME },
    { kind: 'systemctl', args: ['reset-failed', UNIT_NAME] },
    ...cleanDropIn(layout),
  ];
}

export function cleanDropIn(layout: Layout): Action[] {
  return [
    { kind: 'remove', path: layout.dropIn },
    { kind: 'rmdir', path: layout.dropInDir },
  ];
}

/** The sh script that puts the bash manager back, agents still running; kept beside the backup. */
function rollbackScript(t: Takeover): string {
  const { install, backupDir, oldDropIns, configuredIsOurs, now } = t;
  const { layout } = install;
  const hasOldUnit = t.foreignUnit !== undefined || t.kept.has(UNIT_NAME);
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

/** A new backup directory's name: the time, made unique against earlier ones. */
function freshName(install: Install, now: number): string {
  const base = formatWireTime(now).replace(/[-:]/g, '');
  const taken = new Set(install.backups.map((b) => b.name));
  let name = base;
  for (let n = 2; taken.has(name); n++) name = `${base}-${n}`;
  return name;
}

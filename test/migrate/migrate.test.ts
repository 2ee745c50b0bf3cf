import { execFile } from 'node:child_process';
import { chmod, mkdir, readFile, readdir, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { loadConfig, parseEnvFile } from '../../src/contract/index.js';
import { type Action, renderShell } from '../../src/migrate/actions.js';
import { runMigrate } from '../../src/migrate/cli.js';
import { systemLayout } from '../../src/migrate/layout.js';
import { type Install, type OldFile, envValue, planMigration } from '../../src/migrate/plan.js';
import { useTempDir } from '../support/tmp.js';

const run = promisify(execFile);
const NOW = Date.parse('2026-02-28T05:17:04Z');
const HOME = '/home/alice/openclaw';
const POOL = `${HOME}/pool`;
const SHIPPED = '[Service]\nType=notify\nExecStart=/usr/local/bin/openclaw-pool\n';
const BASH_STATE = JSON.stringify({
  agents: {
    ceo: { status: 'running', started_at: '2026-02-28T05:00:00Z', last_active: '2026-02-28T05:10:00Z', requested_by: 'autostart' },
    cto: { status: 'running', started_at: '2026-02-28T05:01:00Z', last_active: '2026-02-28T05:09:00Z', requested_by: 'ceo' },
  },
});

/** The bash manager's unit, as its users wrote it: a TERM trap and an ExecStop= that stop the agents. */
function bashUnit(home: string, extra: string[] = []): string {
  return [
    '[Unit]',
    'Description=OpenClaw agent pool manager (bash + socat)',
    '[Service]',
    `WorkingDirectory=${home}`,
    `EnvironmentFile=${home}/pool/pool.env`,
    `ExecStart=${home}/pool-manager.sh`,
    'ExecStop=/usr/bin/docker compose stop',
    'Restart=always',
    ...extra,
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ].join('\n');
}

const file = (text: string): OldFile => ({ text, mode: 0o644, uid: 1000, gid: 1000 });

function install(overrides: Partial<Install> = {}): Install {
  return {
    layout: systemLayout('/'),
    from: POOL,
    poolEnv: file('MAX_AGENTS=3\nPOOL_PORT=19000\n'),
    autostart: file('ceo\ncto\nsoftware-engineer\n'),
    state: file(BASH_STATE),
    unit: bashUnit(HOME),
    unitDropIns: [],
    unitActive: 'active',
    unitEnabled: 'enabled',
    shippedUnit: SHIPPED,
    configuredPoolEnv: undefined,
    dropInLeft: false,
    backups: [],
    ...overrides,
  };
}

function migratePlan(overrides: Partial<Install> = {}) {
  const plan = planMigration(install(overrides), NOW);
  if (plan.outcome !== 'migrate') throw new Error(`expected a migration, got ${plan.outcome}: ${JSON.stringify(plan)}`);
  return plan;
}

const writeTo = (actions: readonly Action[], path: string) => actions.find((a): a is Extract<Action, { kind: 'write' }> => a.kind === 'write' && a.path === path);

describe('planMigration: what it says of each old setting', () => {
  it.each([
    ['a known variable is kept', 'MAX_AGENTS=3\n', undefined, 'keep MAX_AGENTS=3'],
    ['a variable openclaw-pool does not know is ignored', 'MAX_AGENTS=3\nSOCAT_OPTS=fork,reuseaddr\n', undefined, 'ignore SOCAT_OPTS=fork,reuseaddr: not used by openclaw-pool'],
    ['a misspelt variable is ignored, naming the one meant', 'MAX_AGNETS=1\n', undefined, 'ignore MAX_AGNETS=1: not used by openclaw-pool (did you mean MAX_AGENTS?)'],
    ['an unset COMPOSE_DIR becomes the old WorkingDirectory', 'MAX_AGENTS=3\n', undefined, `change COMPOSE_DIR: unset (the old unit's WorkingDirectory) → ${HOME}, written explicitly`],
    ['a relative COMPOSE_DIR is made absolute', 'COMPOSE_DIR=.\n', undefined, `change COMPOSE_DIR: . (relative to the old unit's WorkingDirectory) → ${HOME}`],
    ['an absolute COMPOSE_DIR is kept', `COMPOSE_DIR=${HOME}\n`, undefined, `keep COMPOSE_DIR=${HOME}`],
    ['an unset POOL_DIR becomes the --from directory', 'MAX_AGENTS=3\n', undefined, `change POOL_DIR: unset → ${POOL}, written explicitly`],
    ['a POOL_DIR written the bash way is expanded', 'POOL_DIR=$COMPOSE_DIR/pool\n', undefined, `keep POOL_DIR=${POOL}`],
    ['a reference to POOL_DIR is expanded as the shell did', 'LOG_FILE=${POOL_DIR}/pool.log\n', undefined, `change LOG_FILE: \${POOL_DIR}/pool.log (expanded by the bash manager's shell) → ${POOL}/pool.log`],
    ['a token is kept without being shown', 'POOL_TOKEN=s3cret-token\n', undefined, 'keep POOL_TOKEN=(set, 12 characters)'],
    ['the socket group is added', 'MAX_AGENTS=3\n', undefined, 'add POOL_SOCKET_GROUP=openclaw-pool: the socket\'s group (usermod -aG openclaw-pool <user> to use poolctl without sudo)'],
    ["the old unit's Environment= is kept, the file winning", 'MAX_AGENTS=3\n', bashUnit(HOME, ['Environment=MAX_AGENTS=9 "PINNED_AGENTS=ceo"']), "keep PINNED_AGENTS=ceo (from the old unit's Environment=)"],
    ['a User= of the old unit is told how to keep poolctl', 'MAX_AGENTS=3\n', bashUnit(HOME, ['User=alice']), 'change User=alice: openclaw-pool runs as root (it drives Docker); for poolctl: usermod -aG openclaw-pool alice'],
  ])('%s', (_, poolEnv, unit, line) => {
    expect(migratePlan({ poolEnv: file(poolEnv), ...(unit && { unit }) }).lines).toContain(line);
  });

  it.each([
    ['running agents of state.json', {}, 'keep state.json: 2 running agents (ceo, cto), loaded as is'],
    ['autostart.txt', {}, `keep autostart.txt: ceo, cto, software-engineer (stays in ${POOL}, read there)`],
    ['an unreadable state.json', { state: file('{"agents": [') }, 'change state.json: unreadable'],
    ['a missing autostart.txt', { autostart: undefined }, `note no autostart.txt in ${POOL}: no agent is started at start-up`],
    ['the move of pool.env out of POOL_DIR', {}, `move pool.env → /etc/openclaw-pool/pool.env (containers can write ${POOL}); COMPOSE_DIR and POOL_DIR written explicitly, mode 0640, root`],
    ['the replaced unit', {}, `replace /etc/systemd/system/openclaw-pool.service: it runs ${HOME}/pool-manager.sh (backup in /var/lib/openclaw-pool/migrated-from-bash/20260228T051704Z/openclaw-pool.service)`],
    ['an old unit that is not running', { unitActive: 'inactive' }, 'note the old unit is inactive: there is no old manager to stop'],
    ['an old drop-in', { unitDropIns: [{ name: 'override.conf', text: '[Service]\nExecStop=/x\n' }] }, '/etc/systemd/system/openclaw-pool.service.d/override.conf → /var/lib/openclaw-pool/migrated-from-bash/20260228T051704Z/dropin-override.conf'],
  ])('tells of %s', (_, overrides, line) => {
    expect(migratePlan(overrides).lines.filter((l) => l.includes(line))).toHaveLength(1);
  });

  it('writes a pool.env the daemon reads back: the old values, both paths explicit, the socket group', () => {
    const plan = migratePlan({ poolEnv: file('MAX_AGENTS=2\nINFRA_SERVICES=gateway,litellm\nPINNED_AGENTS="ceo, cto"\nOLD_THING=1\n') });
    const written = writeTo(plan.actions, '/etc/openclaw-pool/pool.env');
    expect(written?.mode).toBe(0o640);
    const values = parseEnvFile(written?.text ?? '');
    expect(values).not.toHaveProperty('OLD_THING');
    expect(loadConfig({ file: values, cwd: '/' })).toMatchObject({ maxAgents: 2, composeDir: HOME, poolDir: POOL, socketGroup: 'openclaw-pool', infraServices: ['gateway', 'litellm'], pinnedAgents: ['ceo', 'cto'] });
  });

  it.each(['plain', 'two words', 'quote " and backslash \\', "it's", ''])('writes the value %j so that pool.env reads it back unchanged', (value) => {
    expect(parseEnvFile(`X=${envValue(value)}\n`)).toEqual({ X: value });
  });
});

describe('planMigration: refusals change nothing and name the cause', () => {
  it.each([
    ['an invalid value', { poolEnv: file('MAX_AGENTS=lots\n') }, 'old-config', 'MAX_AGENTS="lots": expected a whole number'],
    ['a line that is not KEY=VALUE', { poolEnv: file('MAX_AGENTS 3\n') }, 'old-config', 'expected KEY=VALUE'],
    ['a POOL_DIR other than --from', { poolEnv: file('POOL_DIR=/srv/elsewhere\n') }, 'old-config', `POOL_DIR=/srv/elsewhere in ${POOL}/pool.env is not the directory given with --from`],
    ['a reference to a variable nobody sets', { poolEnv: file('LOG_FILE=$HOME/pool.log\n') }, 'old-config', 'refers to HOME'],
    ['a pool.env elsewhere than in POOL_DIR', { unit: bashUnit(HOME).replace(`EnvironmentFile=${HOME}/pool/pool.env`, 'EnvironmentFile=/etc/default/pool') }, 'old-config', 'the old unit reads EnvironmentFile=/etc/default/pool'],
    ['no way to tell COMPOSE_DIR', { from: '/srv/state', poolEnv: file('POOL_DIR=/srv/state\n'), unit: bashUnit(HOME).replace(/WorkingDirectory=.*\n/, '').replace(/EnvironmentFile=.*\n/, '') }, 'old-config', 'COMPOSE_DIR is not set'],
    ['no shipped unit (install.sh not run)', { shippedUnit: undefined }, 'not-ready', 'run scripts/install.sh first'],
    ['nothing of the bash manager', { poolEnv: undefined, autostart: undefined, state: undefined, unit: undefined }, 'not-ready', 'nothing to migrate'],
  ] as const)('refuses %s', (_, overrides, reason, problem) => {
    const plan = planMigration(install(overrides), NOW);
    expect(plan).toMatchObject({ outcome: 'refused', reason });
    expect(plan.outcome === 'refused' && plan.problems.join('\n')).toContain(problem);
  });
});

describe('planMigration: the steps', () => {
  const kinds = (actions: readonly Action[]) => actions.map((a) => (a.kind === 'systemctl' ? `systemctl ${a.args[0]}` : a.kind));

  it('switches the old unit\'s stop commands and restarts off before killing it, and installs ours only after', () => {
    const { actions } = migratePlan();
    const steps = kinds(actions);
    const dropIn = actions.findIndex((a) => a.kind === 'write' && a.path.endsWith('50-openclaw-pool-migrate.conf'));
    expect(writeTo(actions, actions[dropIn]?.kind === 'write' ? actions[dropIn].path : '')?.text).toBe('[Service]\nExecStop=\nExecStopPost=\nRestart=no\n');
    const order = [dropIn, steps.indexOf('systemctl daemon-reload'), steps.indexOf('kill'), steps.indexOf('systemctl reset-failed'), steps.indexOf('install'), steps.lastIndexOf('systemctl daemon-reload'), steps.indexOf('systemctl start')];
    expect(order.every((index) => index >= 0)).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
  });

  it.each([
    ['an active old unit', {}],
    ['an inactive one', { unitActive: 'inactive' }],
    ['a run that finds our unit in place', { unit: SHIPPED }],
  ])('never runs systemctl stop or restart, in the steps or in ROLLBACK, for %s', (_, overrides) => {
    const { actions } = migratePlan(overrides);
    const commands = actions.map(renderShell).join('\n').split('\n').filter((line) => !line.startsWith('#'));
    expect(commands.join('\n')).toContain('systemctl kill');
    expect(commands.join('\n')).not.toMatch(/systemctl (stop|restart)\b/);
    expect(actions.some((a) => a.kind === 'systemctl' && ['stop', 'restart'].includes(a.args[0] ?? ''))).toBe(false);
  });

  it('removes the old pool.env last, once the new daemon answered with the agents state.json had', () => {
    const { actions } = migratePlan();
    expect(actions.slice(-2)).toEqual([
      { kind: 'check-agents', socket: '/run/openclaw-pool/pool.sock', agents: ['ceo', 'cto'] },
      { kind: 'remove', path: `${POOL}/pool.env` },
    ]);
  });

  it('keeps install.sh\'s pool.env in the backup before replacing it', () => {
    const plan = migratePlan({ configuredPoolEnv: 'COMPOSE_DIR=/srv/openclaw\n' });
    expect(plan.actions).toContainEqual(expect.objectContaining({ kind: 'save', to: `${plan.backupDir}/etc-pool.env`, text: 'COMPOSE_DIR=/srv/openclaw\n' }));
  });

  it('sees a finished migration and has nothing to do', () => {
    const plan = planMigration(install({ unit: SHIPPED, poolEnv: undefined, configuredPoolEnv: 'MAX_AGENTS=3\n', backups: [{ name: '20260228T051704Z', files: ['ROLLBACK'] }] }), NOW);
    expect(plan).toMatchObject({ outcome: 'done' });
    expect(plan.lines.at(-1)).toBe('done: already migrated (backup in /var/lib/openclaw-pool/migrated-from-bash/20260228T051704Z); nothing to do');
  });

  it('finishes a run interrupted after our unit went in: the same backup, no second copy of the old unit, start and move', () => {
    const backups = [{ name: '20260228T051704Z', files: ['ROLLBACK', 'openclaw-pool.service', 'pool.env', 'state.json'] }];
    const plan = migratePlan({ unit: SHIPPED, unitActive: 'inactive', configuredPoolEnv: undefined, dropInLeft: true, backups });
    expect(plan.backupDir).toBe('/var/lib/openclaw-pool/migrated-from-bash/20260228T051704Z');
    expect(plan.actions.filter((a) => a.kind === 'save' || (a.kind === 'write' && a.path.endsWith('ROLLBACK')))).toEqual([
      expect.objectContaining({ kind: 'save', to: `${plan.backupDir}/autostart.txt` }),
    ]);
    expect(kinds(plan.actions)).toEqual(expect.arrayContaining(['kill', 'systemctl start', 'check-agents', 'remove']));
    expect(kinds(plan.actions)).not.toContain('install');
  });
});

// ---- the command on a copy of an install: temporary directories for /, a fake systemctl ----

/** A systemctl that keeps the unit's state in a file and records every call (one a line). */
const FAKE_SYSTEMCTL = `#!/bin/sh
dir=$(dirname "$0")
echo "$*" >>"$dir/calls"
quiet=; if [ "$1" = -q ]; then quiet=1; shift; fi
state=$(cat "$dir/active")
case "$1" in
  is-active) [ -n "$quiet" ] || echo "$state"; [ "$state" = active ] ;;
  is-enabled) echo enabled ;;
  kill) echo failed >"$dir/active" ;;
  reset-failed) [ "$state" != failed ] || echo inactive >"$dir/active" ;;
  start) if [ -e "$dir/fail-start" ]; then echo "Job for openclaw-pool.service failed." >&2; exit 1; fi; echo active >"$dir/active" ;;
esac
`;
/** Stands in for the shipped write-paths-conf.mjs, which needs the built daemon beside it. */
const FAKE_PATHS_CONF = `import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
const [, , envFile, dropIn] = process.argv;
mkdirSync(dirname(dropIn), { recursive: true });
writeFileSync(dropIn, '[Service]\\n# from ' + envFile + '\\n');
`;

describe('openclaw-pool migrate on a copy of an install', () => {
  const tempDir = useTempDir();

  async function oldInstall() {
    const dir = await tempDir();
    const root = join(dir, 'root');
    const home = join(dir, 'home/alice/openclaw');
    const pool = join(home, 'pool');
    const bin = join(dir, 'bin');
    const layout = systemLayout(root);
    await Promise.all([pool, bin, join(root, 'etc/systemd/system'), join(root, 'opt/openclaw-pool/systemd')].map((d) => mkdir(d, { recursive: true })));
    await writeFile(join(pool, 'pool.env'), 'MAX_AGENTS=3\nSOCAT_OPTS=fork\n', { mode: 0o644 });
    await writeFile(join(pool, 'autostart.txt'), 'ceo\ncto\n');
    await writeFile(join(pool, 'state.json'), BASH_STATE);
    await writeFile(layout.unit, bashUnit(home));
    await writeFile(layout.shippedUnit, SHIPPED);
    await writeFile(layout.writePathsConf, FAKE_PATHS_CONF);
    await writeFile(join(bin, 'systemctl'), FAKE_SYSTEMCTL);
    await chmod(join(bin, 'systemctl'), 0o755);
    await writeFile(join(bin, 'active'), 'active\n');
    const out: string[] = [];
    const err: string[] = [];
    const migrate = async (...args: string[]) => {
      out.length = 0;
      err.length = 0;
      await writeFile(join(bin, 'calls'), '');
      const code = await runMigrate(['--from', pool, ...args], {
        stdout: (text) => out.push(text),
        stderr: (text) => err.push(text),
        env: { OPENCLAW_POOL_ROOT: root, OPENCLAW_POOL_SYSTEMCTL: join(bin, 'systemctl') },
        poolStatus: async () => ['ceo', 'cto'],
      });
      return { code, stdout: out.join(''), stderr: err.join(''), calls: (await readFile(join(bin, 'calls'), 'utf8')).split('\n').filter(Boolean) };
    };
    /** Every file below the install's directories: path → mode and content. */
    const snapshot = async () => {
      const files = new Map<string, string>();
      for (const top of [root, join(dir, 'home')]) {
        for (const entry of await readdir(top, { recursive: true, withFileTypes: true })) {
          const path = join(entry.parentPath, entry.name);
          files.set(path, entry.isFile() ? `${(await stat(path)).mode.toString(8)} ${await readFile(path, 'utf8')}` : 'dir');
        }
      }
      return files;
    };
    /** A run that must leave every file as it was and ask systemctl nothing but is-active and is-enabled. */
    const migrateChangingNothing = async (...args: string[]) => {
      const before = await snapshot();
      const result = await migrate(...args);
      expect(result.calls).toEqual(['is-active openclaw-pool.service', 'is-enabled openclaw-pool.service']);
      expect(await snapshot()).toEqual(before);
      return result;
    };
    return { root, home, pool, bin, layout, migrate, migrateChangingNothing };
  }

  it('--dry-run prints the plan and the commands, and touches no file and no unit', async () => {
    const { migrateChangingNothing } = await oldInstall();
    const result = await migrateChangingNothing('--dry-run');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('keep MAX_AGENTS=3');
    expect(result.stdout).toContain('ignore SOCAT_OPTS=fork: not used by openclaw-pool');
    expect(result.stdout).toContain('systemctl kill --kill-whom=all --signal=SIGKILL openclaw-pool.service');
  });

  it('moves pool.env to /etc, keeps the backup, replaces the unit by kill and start, and a second run is a no-op', async () => {
    const { migrate, migrateChangingNothing, layout, pool } = await oldInstall();
    const first = await migrate();
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(first.calls.filter((c) => !c.startsWith('is-'))).toEqual([
      'daemon-reload',
      'kill --kill-whom=all --signal=SIGKILL openclaw-pool.service',
      'reset-failed openclaw-pool.service',
      'daemon-reload',
      'reenable openclaw-pool.service',
      'start openclaw-pool.service',
    ]);
    expect((await stat(layout.poolEnv)).mode & 0o777).toBe(0o640);
    expect(parseEnvFile(await readFile(layout.poolEnv, 'utf8'))).toMatchObject({ MAX_AGENTS: '3', POOL_DIR: pool, POOL_SOCKET_GROUP: 'openclaw-pool' });
    expect(await readFile(layout.unit, 'utf8')).toBe(SHIPPED);
    await expect(stat(join(pool, 'pool.env'))).rejects.toThrow('ENOENT');
    expect(await readdir(pool)).toEqual(['autostart.txt', 'state.json']);
    const [backup] = await readdir(layout.backupRoot);
    expect(await readdir(join(layout.backupRoot, backup!))).toEqual(['ROLLBACK', 'autostart.txt', 'openclaw-pool.service', 'pool.env', 'state.json']);
    await expect(stat(layout.dropIn)).rejects.toThrow('ENOENT');

    const second = await migrateChangingNothing();
    expect(second.code).toBe(0);
    expect(second.stdout).toContain('done: already migrated');
  });

  it('stops at a failed start with the way back, and a second run completes it into the same backup', async () => {
    const { migrate, bin, pool, layout } = await oldInstall();
    await writeFile(join(bin, 'fail-start'), '');
    const failed = await migrate();
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain('failed: systemctl start openclaw-pool.service: exited with 1: Job for openclaw-pool.service failed.');
    expect(failed.stderr).toMatch(/sh \S+\/migrated-from-bash\/\d{8}T\d{6}Z\/ROLLBACK/);
    expect(await readFile(join(pool, 'pool.env'), 'utf8')).toBe('MAX_AGENTS=3\nSOCAT_OPTS=fork\n');

    await run('rm', [join(bin, 'fail-start')]);
    const again = await migrate();
    expect(again.code).toBe(0);
    expect(again.calls).toContain('start openclaw-pool.service');
    expect(again.calls.some((c) => c.startsWith('kill'))).toBe(false);
    expect(await readdir(layout.backupRoot)).toHaveLength(1);
    await expect(stat(join(pool, 'pool.env'))).rejects.toThrow('ENOENT');
  });

  it('ROLLBACK puts the old unit and pool.env back and removes what migrate added', async () => {
    const { migrate, home, pool, layout, bin } = await oldInstall();
    expect((await migrate()).code).toBe(0);
    const [backup] = await readdir(layout.backupRoot);
    await writeFile(join(bin, 'calls'), '');
    await run('sh', [join(layout.backupRoot, backup!, 'ROLLBACK')], { env: { ...process.env, PATH: `${bin}:${process.env.PATH}` } });
    expect(await readFile(layout.unit, 'utf8')).toBe(bashUnit(home));
    expect(await readFile(join(pool, 'pool.env'), 'utf8')).toBe('MAX_AGENTS=3\nSOCAT_OPTS=fork\n');
    for (const gone of [layout.poolEnv, layout.pathsConf, layout.dropIn]) await expect(stat(gone)).rejects.toThrow('ENOENT');
    expect((await readFile(join(bin, 'calls'), 'utf8')).split('\n').filter((c) => c !== '' && !c.includes('is-active'))).toEqual([
      'daemon-reload', 'kill --kill-whom=all --signal=SIGKILL openclaw-pool.service', 'reset-failed openclaw-pool.service', 'daemon-reload', 'reenable openclaw-pool.service', 'start openclaw-pool.service',
    ]);
  });

  it('exits 78 on an invalid old value, naming it, with nothing changed', async () => {
    const { migrateChangingNothing, pool } = await oldInstall();
    await writeFile(join(pool, 'pool.env'), 'MAX_AGENTS=0\n');
    const result = await migrateChangingNothing();
    expect(result.code).toBe(78);
    expect(result.stderr).toContain('MAX_AGENTS="0": expected at least 1');
  });

  it('does not follow a pool.env that a container replaced with a symlink', async () => {
    const { migrate, pool } = await oldInstall();
    await run('rm', [join(pool, 'pool.env')]);
    await symlink('/etc/shadow', join(pool, 'pool.env'));
    const result = await migrate();
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`${pool}/pool.env is a symbolic link; not reading it`);
  });

  it.each([
    [[], 2, '--from POOL_DIR is required'],
    [['--from'], 2, "Option '--from <value>' argument missing"],
    [['--from', '/nonexistent/pool'], 1, '/nonexistent/pool is not a directory'],
  ])('answers %j with exit %i', async (argv, code, message) => {
    const err: string[] = [];
    expect(await runMigrate(argv, { stdout: () => {}, stderr: (t) => err.push(t), env: {} })).toBe(code);
    expect(err.join('')).toContain(message);
  });
});

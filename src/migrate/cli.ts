import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { execa } from 'execa';
import { createPoolClient } from '../../sdk/client.js';
import { renderShell } from './actions.js';
import { StepError, type Systemctl, UnsafeFileError, executeMigration, readInstall } from './execute.js';
import { systemLayout } from './layout.js';
import { planMigration } from './plan.js';

export const MIGRATE_USAGE = `Usage: openclaw-pool migrate --from POOL_DIR [--dry-run]

Takes over an install of the earlier bash pool manager in place, with its agents left running. It
reads POOL_DIR's pool.env, autostart.txt and state.json and the old openclaw-pool.service, prints
what it keeps, changes and ignores, then moves pool.env to /etc/openclaw-pool/pool.env, replaces
the unit (the old manager is killed, never stopped: its stop stops the agents) and starts
openclaw-pool, which adopts the running agents. What a rollback needs is kept in
/var/lib/openclaw-pool/migrated-from-bash/<time>/, with a ROLLBACK script. Run scripts/install.sh
first. Running it again is safe: a finished migration is left alone, an interrupted one completed.

Options:
  --from POOL_DIR  the bash manager's POOL_DIR, e.g. /home/alice/openclaw/pool
  --dry-run        print the plan and the commands it would run; change nothing
  -h, --help       print this help

Exit codes: 0 done or nothing to do, 1 failed, 2 usage, 78 the old configuration is invalid.`;

const EXIT_FAILED = 1;
const EXIT_USAGE = 2;
const EXIT_CONFIG = 78;

export interface MigrateIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  /** OPENCLAW_POOL_ROOT (the root of /etc, /run, /opt and /var/lib) and OPENCLAW_POOL_SYSTEMCTL are for tests. */
  readonly env: NodeJS.ProcessEnv;
  /** The running agents the daemon on a socket lists (default: asked over the socket with the SDK). */
  readonly poolStatus?: (socket: string) => Promise<readonly string[]>;
}

const processIo: MigrateIo = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  env: process.env,
};

/** `openclaw-pool migrate ...`: returns the exit code; every error becomes a message and a code here. */
export async function runMigrate(argv: readonly string[], io: MigrateIo = processIo): Promise<number> {
  const say = (line: string) => io.stdout(`${line}\n`);
  const complain = (line: string) => io.stderr(`openclaw-pool migrate: ${line}\n`);
  let args;
  try {
    args = parseArgs({ args: [...argv], options: { from: { type: 'string' }, 'dry-run': { type: 'boolean' }, help: { type: 'boolean', short: 'h' } }, strict: true }).values;
  } catch (error) {
    complain(`${(error as Error).message}\n\n${MIGRATE_USAGE}`);
    return EXIT_USAGE;
  }
  if (args.help) {
    say(MIGRATE_USAGE);
    return 0;
  }
  if (args.from === undefined || args.from === '') {
    complain(`--from POOL_DIR is required\n\n${MIGRATE_USAGE}`);
    return EXIT_USAGE;
  }
  const from = resolve(args.from);
  if (!(await stat(from).then((s) => s.isDirectory(), () => false))) {
    complain(`${from} is not a directory (--from names the bash manager's POOL_DIR)`);
    return EXIT_FAILED;
  }
  const root = io.env.OPENCLAW_POOL_ROOT || '/';
  if (root === '/' && !args['dry-run'] && process.geteuid?.() !== 0) {
    complain('run it as root (it replaces a systemd unit and writes /etc/openclaw-pool); --dry-run works as any user that can read the files');
    return EXIT_FAILED;
  }
  const systemctl = systemctlAt(io.env.OPENCLAW_POOL_SYSTEMCTL || 'systemctl');
  const layout = systemLayout(root);

  let install;
  try {
    install = await readInstall(from, layout, systemctl);
  } catch (error) {
    if (!(error instanceof UnsafeFileError) && !(error as NodeJS.ErrnoException).code) throw error;
    complain((error as Error).message);
    return EXIT_FAILED;
  }
  const plan = planMigration(install, Date.now());
  plan.lines.forEach(say);
  if (plan.outcome === 'refused') {
    for (const problem of plan.problems) complain(problem);
    complain('nothing was changed');
    return plan.reason === 'old-config' ? EXIT_CONFIG : EXIT_FAILED;
  }
  if (plan.outcome === 'done') return 0;
  if (args['dry-run']) {
    say('\ndry run: nothing was changed. Without --dry-run these steps run:');
    for (const action of plan.actions) say(renderShell(action));
    return 0;
  }

  // Every file migrate makes starts private; its final mode is set explicitly once written.
  const umask = process.umask(0o077);
  say('');
  try {
    const warnings = await executeMigration(plan.actions, { systemctl, poolStatus: io.poolStatus ?? poolStatus, log: say, sleep: (ms) => sleep(ms) });
    for (const warning of warnings) complain(`warning: ${warning}`);
    say(`done: openclaw-pool runs with ${layout.poolEnv}; what a rollback needs is in ${plan.backupDir} (sh ${plan.backupDir}/ROLLBACK)`);
    return 0;
  } catch (error) {
    if (!(error instanceof StepError)) throw error;
    complain(`failed: ${error.message}`);
    complain(`migrate stopped no agent (it never runs systemctl stop). The new daemon's log: journalctl -u openclaw-pool. Run the same command again to continue from here, or go back to the bash manager with: sh ${plan.backupDir}/ROLLBACK`);
    return EXIT_FAILED;
  } finally {
    process.umask(umask);
  }
}

function systemctlAt(bin: string): Systemctl {
  return async (args) => {
    const result = await execa(bin, args, { reject: false, stdin: 'ignore' });
    if (result.exitCode === undefined) throw Object.assign(new Error(`${bin}: ${result.shortMessage}`), { code: 'ENOENT' });
    return { exitCode: result.exitCode, stdout: result.stdout, stderr: result.stderr };
  };
}

async function poolStatus(socketPath: string): Promise<string[]> {
  const pool = createPoolClient({ socketPath });
  try {
    return (await pool.status()).running.map((agent) => agent.id);
  } finally {
    pool.close();
  }
}

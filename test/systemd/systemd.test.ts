import { execFile } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { execa } from 'execa';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, parseEnvFile } from '../../src/contract/index.js';
import { POOLCTL } from '../support/cli.js';
import { type ComposeProject, agentService, createComposeProject, requireDocker } from '../support/docker.js';
import { type SpawnedDaemon, daemonEnv, spawnDaemon } from '../support/spawn-daemon.js';

const run = promisify(execFile);
const ROOT = new URL('../..', import.meta.url).pathname;
const UNIT = join(ROOT, 'systemd/openclaw-pool.service');
const STOP_SCRIPT = join(ROOT, 'systemd/systemd-stop');
const docker = await requireDocker();
const analyzer = await execa('systemd-analyze', ['--version'], { reject: false });
if (analyzer.failed) console.warn('SKIPPED: systemd-analyze is not installed; the unit is not linted');

/** `[Section] Key=value` lines of a unit file. */
function unitKeys(text: string): Map<string, string[]> {
  const keys = new Map<string, string[]>();
  let section = '';
  for (const line of text.split('\n')) {
    const header = /^\[(.+)\]$/.exec(line.trim());
    if (header) section = header[1]!;
    const pair = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
    if (pair) keys.set(`${section}.${pair[1]}`, [...(keys.get(`${section}.${pair[1]}`) ?? []), pair[2]!]);
  }
  return keys;
}

describe('the systemd unit and the install script', () => {
  let stage: string;
  beforeAll(async () => {
    stage = await mkdtemp(join(tmpdir(), 'pool-stage-'));
    await run('bash', [join(ROOT, 'scripts/install.sh'), '--no-start', '--compose-dir', '/srv/agents'], { env: { ...process.env, DESTDIR: stage } });
  }, 120_000);
  afterAll(async () => {
    await rm(stage, { recursive: true, force: true });
  });

  it.each([
    ['Unit.After', 'docker.service network-online.target'],
    ['Unit.Requires', 'docker.service'],
    ['Service.Type', 'notify'],
    ['Service.NotifyAccess', 'all'],
    ['Service.ExecStart', '/usr/local/bin/openclaw-pool'],
    ['Service.Restart', 'on-failure'],
    ['Service.RestartSec', '10'],
    ['Service.RuntimeDirectory', 'openclaw-pool'],
    ['Service.ExecReload', "/bin/sh -c 'kill -HUP $MAINPID'"],
    ['Service.ExecStop', '/usr/local/lib/openclaw-pool/systemd-stop'],
    ['Service.RestartPreventExitStatus', '78'],
    ['Service.KillMode', 'mixed'],
    ['Service.ProtectHome', 'read-only'],
    ['Install.WantedBy', 'multi-user.target'],
  ])('sets %s=%s', async (key, value) => {
    expect(unitKeys(await readFile(UNIT, 'utf8')).get(key)).toEqual([value]);
  });

  it('names pool.env in POOL_ENV, not EnvironmentFile= (whose copies would override the file on every reload)', async () => {
    const keys = unitKeys(await readFile(UNIT, 'utf8'));
    expect(keys.get('Service.Environment')).toContain('POOL_ENV=/etc/openclaw-pool/pool.env');
    expect(keys.has('Service.EnvironmentFile')).toBe(false);
  });

  it('stages the drop-in that makes POOL_DIR writable, and systemd/ under /opt for the migration', async () => {
    expect(await readFile(join(stage, 'etc/systemd/system/openclaw-pool.service.d/paths.conf'), 'utf8')).toMatch(/^\[Service\]\nReadWritePaths=-\/srv\/agents\/pool$/m);
    expect(await readFile(join(stage, 'opt/openclaw-pool/systemd/openclaw-pool.service'), 'utf8')).toBe(await readFile(UNIT, 'utf8'));
  });

  it.skipIf(analyzer.failed)('passes systemd-analyze verify against the installed files', async () => {
    const rendered = join(stage, 'openclaw-pool.service');
    const text = (await readFile(UNIT, 'utf8')).replaceAll('/usr/local/', `${stage}/usr/local/`).replaceAll('/etc/openclaw-pool/', `${stage}/etc/openclaw-pool/`);
    await writeFile(rendered, text);
    const verify = await execa('systemd-analyze', ['verify', rendered], { reject: false });
    expect(`${verify.stdout}${verify.stderr}`).toBe('');
    expect(verify.exitCode).toBe(0);
  });

  it('installs runnable commands and a pool.env that the daemon accepts', async () => {
    expect((await run(join(stage, 'usr/local/bin/poolctl'), ['--version'])).stdout.trim()).toBe('0.1.0');
    expect((await run(join(stage, 'usr/local/bin/openclaw-pool'), ['--version'])).stdout.trim()).toBe('openclaw-pool 0.1.0');
    const config = loadConfig({ cwd: '/', file: parseEnvFile(await readFile(join(stage, 'etc/openclaw-pool/pool.env'), 'utf8')) });
    expect(config).toMatchObject({ composeDir: '/srv/agents', socketGroup: 'openclaw-pool', socketPath: '/run/openclaw-pool/pool.sock' });
  });

  it('keeps an existing pool.env on a reinstall', async () => {
    await writeFile(join(stage, 'etc/openclaw-pool/pool.env'), 'MAX_AGENTS=7\n');
    await run('bash', [join(ROOT, 'scripts/install.sh'), '--no-start'], { env: { ...process.env, DESTDIR: stage } });
    expect(await readFile(join(stage, 'etc/openclaw-pool/pool.env'), 'utf8')).toBe('MAX_AGENTS=7\n');
  }, 120_000);

  it('applies --compose-dir to an existing pool.env: its COMPOSE_DIR line is replaced, the rest and the mode kept, the drop-in follows', async () => {
    const envFile = join(stage, 'etc/openclaw-pool/pool.env');
    await writeFile(envFile, '# mine\nMAX_AGENTS=7\nCOMPOSE_DIR=/srv/old\n#COMPOSE_DIR=/commented\nINFRA_SERVICES=db\n', { mode: 0o640 });
    await chmod(envFile, 0o640);
    const { stdout } = await run('bash', [join(ROOT, 'scripts/install.sh'), '--no-start', '--compose-dir', '/home/alice/openclaw'], { env: { ...process.env, DESTDIR: stage } });
    expect(stdout).toContain('COMPOSE_DIR=/home/alice/openclaw (--compose-dir) replacing its COMPOSE_DIR line');
    expect(await readFile(envFile, 'utf8')).toBe('# mine\nMAX_AGENTS=7\nCOMPOSE_DIR=/home/alice/openclaw\n#COMPOSE_DIR=/commented\nINFRA_SERVICES=db\n');
    expect((await stat(envFile)).mode & 0o777).toBe(0o640);
    expect(await readFile(join(stage, 'etc/systemd/system/openclaw-pool.service.d/paths.conf'), 'utf8')).toContain('ReadWritePaths=-/home/alice/openclaw/pool\n');

    await writeFile(envFile, 'MAX_AGENTS=7\nPOOL_DIR=/home/alice/state\n');
    await run('bash', [join(ROOT, 'scripts/install.sh'), '--no-start', '--compose-dir', '/home/bob/openclaw'], { env: { ...process.env, DESTDIR: stage } });
    expect(await readFile(envFile, 'utf8')).toBe('MAX_AGENTS=7\nPOOL_DIR=/home/alice/state\n\n# Set by install.sh --compose-dir:\nCOMPOSE_DIR=/home/bob/openclaw\n');
    expect(await readFile(join(stage, 'etc/systemd/system/openclaw-pool.service.d/paths.conf'), 'utf8')).toContain('ReadWritePaths=-/home/alice/state\n');
  }, 120_000);

  it("refuses a Node older than 20.19 (Debian bookworm's is 18) before installing anything", async () => {
    const bin = await mkdtemp(join(tmpdir(), 'pool-node18-'));
    try {
      await writeFile(join(bin, 'node'), '#!/bin/sh\n[ "$1" = --version ] && { echo v18.19.0; exit 0; }\nexit 1\n', { mode: 0o755 });
      const other = join(bin, 'stage');
      const result = await execa('bash', [join(ROOT, 'scripts/install.sh'), '--no-start'], { env: { ...process.env, DESTDIR: other, PATH: `${bin}:${process.env.PATH}` }, reject: false });
      expect(result.exitCode).toBe(1);
      expect(result.stderr).toContain('Node >= 20.19 is needed (found: v18.19.0)');
      await expect(stat(other)).rejects.toThrow(/ENOENT/);
    } finally {
      await rm(bin, { recursive: true, force: true });
    }
  });

  it("leaves an earlier manager's unit of the same name alone, with no drop-in, and points to the migration", async () => {
    const other = await mkdtemp(join(tmpdir(), 'pool-stage-'));
    try {
      const oldUnit = '[Service]\nExecStart=/home/alice/openclaw/pool/pool-manager.sh\n';
      await mkdir(join(other, 'etc/systemd/system'), { recursive: true });
      await writeFile(join(other, 'etc/systemd/system/openclaw-pool.service'), oldUnit);
      const { stdout } = await run('bash', [join(ROOT, 'scripts/install.sh'), '--no-start', '--compose-dir', '/home/alice/openclaw'], { env: { ...process.env, DESTDIR: other } });
      expect(stdout).toContain("an earlier pool manager's openclaw-pool.service is installed; to take it over with its agents running: sudo openclaw-pool migrate --from <its POOL_DIR> (see README: Upgrading from the bash pool manager)");
      expect(await readFile(join(other, 'etc/systemd/system/openclaw-pool.service'), 'utf8')).toBe(oldUnit);
      await expect(stat(join(other, 'etc/systemd/system/openclaw-pool.service.d'))).rejects.toThrow(/ENOENT/);
      // Everything else is installed, the unit too, for the migration to put in place.
      expect((await run(join(other, 'usr/local/bin/openclaw-pool'), ['--version'])).stdout.trim()).toBe('openclaw-pool 0.1.0');
      expect(await readFile(join(other, 'opt/openclaw-pool/systemd/openclaw-pool.service'), 'utf8')).toBe(await readFile(UNIT, 'utf8'));
      expect(await readFile(join(other, 'etc/openclaw-pool/pool.env'), 'utf8')).toContain('COMPOSE_DIR=/home/alice/openclaw\n');
    } finally {
      await rm(other, { recursive: true, force: true });
    }
  }, 120_000);
});

describe.skipIf(!docker)('stop versus restart: the ExecStop script with a real daemon (SPEC §8)', () => {
  let project: ComposeProject;
  let dir: string;
  let daemon: SpawnedDaemon | undefined;
  beforeAll(async () => {
    project = await createComposeProject(Object.fromEntries(['ceo', 'cto', 'gateway'].map((n) => [n, agentService()])));
    return () => project.remove();
  });
  afterEach(async () => {
    await daemon?.kill();
    await project.compose('down', '-t', '0');
    await rm(dir, { recursive: true, force: true });
  });

  /** A `systemctl` that reports the given job for the unit, as `systemctl list-jobs` would during it. */
  async function startDaemonWithJob(job: string | undefined) {
    dir = await mkdtemp(join(tmpdir(), 'pool-'));
    await writeFile(join(dir, 'systemctl'), `#!/bin/sh\n${job ? `echo "42 openclaw-pool.service ${job} running"` : ''}\n`);
    await chmod(join(dir, 'systemctl'), 0o755);
    const socket = join(dir, 's.sock');
    daemon = spawnDaemon(project.dir, daemonEnv(project, dir));
    await daemon.ready(20_000);
    await run(process.execPath, [POOLCTL, 'start', 'ceo', '--socket', socket]);
    await run(process.execPath, [POOLCTL, 'start', 'cto', '--socket', socket]);
    const stop = () => run('sh', [STOP_SCRIPT], { env: { ...process.env, PATH: `${dir}:${process.env.PATH}`, POOLCTL, POOL_SOCKET: socket } });
    return { stop };
  }
  const running = async () => (await project.containers()).filter((c) => c.state === 'running').map((c) => c.service).sort();

  it('on a stop job, stops every pooled agent and then the daemon, which exits 0', async () => {
    const { stop } = await startDaemonWithJob('stop');
    const { stdout } = await stop();
    expect(stdout).toContain('stop job; stopping the pooled agents');
    expect(await daemon!.exited).toBe(0);
    expect(await running()).toEqual([]);
  });

  it.each([
    { job: 'restart', said: 'restart job' },
    { job: undefined, said: 'no job' },
  ])('on $said (a restart, or a crash), leaves the daemon to SIGTERM and the agents running', async ({ job, said }) => {
    const { stop } = await startDaemonWithJob(job);
    expect((await stop()).stdout).toContain(`${said}; leaving the agents running`);
    daemon!.child.kill('SIGTERM');
    expect(await daemon!.exited).toBe(0);
    expect(await running()).toEqual(['ceo', 'cto']);
  });

  it('on a stop job after the daemon died, exits 0 and touches nothing', async () => {
    const { stop } = await startDaemonWithJob('stop');
    await daemon!.kill();
    await stop();
    expect(await running()).toEqual(['ceo', 'cto']);
  });
});

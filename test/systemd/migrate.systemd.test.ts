import { chmod, mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../support/daemon.js';
import { agentService, requireDocker } from '../support/docker.js';
import { type HomeComposeProject, type SystemdBox, createHomeComposeProject, installInBox, startSystemdBox } from '../support/systemd.js';

/**
 * `openclaw-pool migrate` on a copy of an install of the earlier bash manager, with its agents
 * running, under a real systemd: the old unit (a bash loop whose TERM trap, like its ExecStop= and
 * ExecStopPost=, would stop the agents), then install.sh, a dry run, the migration, a second run
 * and the ROLLBACK.
 * The tests run in order on one box, each from the state the previous one left.
 */
const docker = await requireDocker();
const UNIT = 'openclaw-pool';
const UNIT_FILE = '/etc/systemd/system/openclaw-pool.service';
const BACKUPS = '/var/lib/openclaw-pool/migrated-from-bash';
const started = Date.now();

/** Stands in for pool-manager.sh: starts the autostart agents, writes its state.json, and on TERM stops them. */
function bashManager(name: string): string {
  return `#!/bin/bash
cd "$(dirname "$0")"
trap 'touch trap-ran; docker compose -p ${name} stop; exit 0' TERM
agents=()
while read -r agent; do docker compose -p ${name} up -d "$agent" && agents+=("$agent"); done < pool/autostart.txt
now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
entries=$(for a in "\${agents[@]}"; do printf '"%s":{"status":"running","started_at":"%s","last_active":"%s","requested_by":"autostart"},' "$a" "$now" "$now"; done)
printf '{"agents":{%s}}\\n' "\${entries%,}" > pool/state.json
echo "pool-manager: serving on :$POOL_PORT (socat)"
while :; do sleep 1 & wait $!; done
`;
}

function bashUnit(dir: string): string {
  return `[Unit]
Description=OpenClaw agent pool manager (bash + socat)
After=docker.service
Requires=docker.service

[Service]
WorkingDirectory=${dir}
EnvironmentFile=${dir}/pool/pool.env
ExecStart=${dir}/pool-manager.sh
ExecStop=/bin/sh -c 'touch execstop-ran; docker compose stop'
ExecStopPost=/bin/sh -c 'touch execstoppost-ran; docker compose stop'
Restart=always
RestartSec=1

[Install]
WantedBy=multi-user.target
`;
}

const OLD_POOL_ENV = `# pool manager settings
MAX_AGENTS=3
POOL_PORT=19000
POOL_BIND=127.0.0.1
EVICT_GRACE_SECONDS=60
INFRA_SERVICES=gateway
SOCAT_BIN=/usr/bin/socat
`;

describe.skipIf(!docker)('openclaw-pool migrate from the bash manager, with its agents running', () => {
  let box: SystemdBox;
  let project: HomeComposeProject;
  let pool: string;
  let agentsAtStart: Map<string, string>;
  let backup: string;

  beforeAll(async () => {
    project = await createHomeComposeProject(Object.fromEntries(['ceo', 'cto', 'cfo', 'gateway'].map((name) => [name, agentService()])));
    pool = join(project.dir, 'pool');
    await writeFile(join(project.dir, 'pool-manager.sh'), bashManager(project.name));
    await chmod(join(project.dir, 'pool-manager.sh'), 0o755);
    await mkdir(pool);
    await writeFile(join(pool, 'pool.env'), OLD_POOL_ENV);
    await writeFile(join(pool, 'autostart.txt'), '# started at boot\nceo\ncto\n');
    box = await startSystemdBox({ binds: [project.dir], users: [project.user] });
    const setup = await box.sh(`cat > ${UNIT_FILE} && systemctl daemon-reload && systemctl enable --now ${UNIT}`, { input: bashUnit(project.dir) });
    expect(setup, setup.stderr).toMatchObject({ exitCode: 0 });
    await eventually(async () => expect(await readFile(join(pool, 'state.json'), 'utf8')).toContain('"cto"'), 60_000, 200);
    expect(await project.running()).toEqual(['ceo', 'cto']);
    agentsAtStart = await project.starts();
  });
  afterAll(async () => {
    await box?.remove();
    await project?.remove();
    console.log(`systemd suite: ${new URL(import.meta.url).pathname.split('/').pop()} took ${((Date.now() - started) / 1000).toFixed(1)} s`);
  });

  const show = async (property: string) => (await box.exec(['systemctl', 'show', '--property', property, '--value', UNIT])).stdout;
  const migrate = (...args: string[]) => box.exec(['openclaw-pool', 'migrate', '--from', pool, ...args], { timeout: 120_000 });
  /** Every file migrate may touch, with its mode and checksum. */
  const systemFiles = async () =>
    (await box.sh(`for d in /etc/systemd/system /etc/openclaw-pool /var/lib/openclaw-pool /run/systemd/system ${pool}/pool.env; do
      [ -e "$d" ] && find "$d" \\( -type f -o -type l \\) -exec stat -c '%n %a %U' {} \\; -exec sha256sum {} \\;
    done | sort`)).stdout;
  /** None of the old manager's TERM trap, ExecStop= and ExecStopPost= ran, and no agent was restarted. */
  const agentsUntouched = async () => {
    expect(await project.starts()).toEqual(agentsAtStart);
    for (const marker of ['trap-ran', 'execstop-ran', 'execstoppost-ran']) await expect(stat(join(project.dir, marker))).rejects.toThrow('ENOENT');
  };

  it('install.sh leaves the old unit as it is, running, and points at migrate', async () => {
    const oldPid = await show('MainPID');
    const { stdout } = await installInBox(box, { composeDir: project.dir });
    expect(stdout).toContain('an earlier pool manager\'s openclaw-pool.service is installed; to take it over with its agents running: sudo openclaw-pool migrate --from <its POOL_DIR>');
    expect(await show('ExecStart')).toContain(`${project.dir}/pool-manager.sh`);
    expect(await show('MainPID')).toBe(oldPid);
    await agentsUntouched();
  });

  it('--dry-run says what it keeps, changes and ignores, and changes nothing', async () => {
    const before = await systemFiles();
    const oldPid = await show('MainPID');
    const result = await migrate('--dry-run');
    expect(result, result.stderr).toMatchObject({ exitCode: 0 });
    for (const line of [
      'keep MAX_AGENTS=3',
      'ignore SOCAT_BIN=/usr/bin/socat: not used by openclaw-pool',
      `change COMPOSE_DIR: unset (the old unit's WorkingDirectory) → ${project.dir}, written explicitly`,
      `keep autostart.txt: ceo, cto (stays in ${pool}, read there)`,
      'keep state.json: 2 running agents (ceo, cto), loaded as is',
      `move pool.env → /etc/openclaw-pool/pool.env (containers can write ${pool}); COMPOSE_DIR and POOL_DIR written explicitly, mode 0640, root`,
      'replace /etc/openclaw-pool/pool.env, written by install.sh or by hand',
    ]) expect(result.stdout).toContain(line);
    expect(await systemFiles()).toBe(before);
    expect(await show('MainPID')).toBe(oldPid);
    await agentsUntouched();
  });

  it('takes over with the agents running: the new unit is active and lists them, pool.env is in /etc, the backup kept', async () => {
    const result = await migrate();
    expect(result, `${result.stdout}\n${result.stderr}`).toMatchObject({ exitCode: 0 });
    expect(result.stderr).toBe('');
    expect(await show('ExecStart')).toContain('/usr/local/bin/openclaw-pool');
    expect(await show('ActiveState')).toBe('active');
    expect(await show('UnitFileState')).toBe('enabled');
    const status = JSON.parse((await box.exec(['poolctl', 'status', '--json'])).stdout) as { running: { id: string; requested_by: string }[] };
    expect(status.running.map((a) => a.id).sort()).toEqual(['ceo', 'cto']);
    await agentsUntouched();

    expect((await box.exec(['stat', '-c', '%a %U', '/etc/openclaw-pool/pool.env'])).stdout).toBe('640 root');
    const env = (await box.exec(['cat', '/etc/openclaw-pool/pool.env'])).stdout.split('\n');
    expect(env).toEqual(expect.arrayContaining([`COMPOSE_DIR=${project.dir}`, `POOL_DIR=${pool}`, 'MAX_AGENTS=3', 'POOL_SOCKET_GROUP=openclaw-pool']));
    expect((await readdir(pool)).filter((name) => name.endsWith('.env'))).toEqual([]);
    const backups = (await box.exec(['ls', BACKUPS])).stdout.split('\n');
    expect(backups).toHaveLength(1);
    backup = `${BACKUPS}/${backups[0]}`;
    expect((await box.exec(['ls', backup])).stdout.split('\n')).toEqual(['ROLLBACK', 'autostart.txt', 'etc-pool.env', 'openclaw-pool.service', 'pool.env', 'state.json']);
    expect((await box.exec(['cat', `${backup}/pool.env`])).stdout).toBe(OLD_POOL_ENV.trimEnd());
    // The runtime drop-in that switched the old stop off is gone: it would switch ours off too.
    expect(await show('DropInPaths')).toBe('/etc/systemd/system/openclaw-pool.service.d/paths.conf');
  });

  it('a second run sees it is done and changes nothing', async () => {
    const before = await systemFiles();
    const pid = await show('MainPID');
    const result = await migrate();
    expect(result, result.stderr).toMatchObject({ exitCode: 0 });
    expect(result.stdout).toContain('done: already migrated');
    expect(await systemFiles()).toBe(before);
    expect(await show('MainPID')).toBe(pid);
  });

  it('ROLLBACK brings the bash manager back, with the agents still running', async () => {
    const result = await box.exec(['sh', `${backup}/ROLLBACK`], { timeout: 60_000 });
    expect(result, `${result.stdout}\n${result.stderr}`).toMatchObject({ exitCode: 0 });
    expect(await show('ExecStart')).toContain(`${project.dir}/pool-manager.sh`);
    expect(await show('ActiveState')).toBe('active');
    expect(await show('DropInPaths')).toBe('');
    expect(await readFile(join(pool, 'pool.env'), 'utf8')).toBe(OLD_POOL_ENV);
    expect((await box.exec(['cat', '/etc/openclaw-pool/pool.env'])).stdout).toContain('# Set by install.sh:');
    // The old manager's `docker compose up -d` of a running agent leaves its container as it is.
    await eventually(async () => expect((await box.journal(UNIT)).split('\n').filter((line) => line === 'pool-manager: serving on :19000 (socat)')).toHaveLength(2), 30_000, 200);
    await agentsUntouched();
  });
});

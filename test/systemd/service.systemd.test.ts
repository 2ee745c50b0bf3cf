import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../support/daemon.js';
import { agentService, requireDocker } from '../support/docker.js';
import { type HomeComposeProject, type SystemdBox, createHomeComposeProject, installInBox, setPoolEnv, startSystemdBox } from '../support/systemd.js';

/**
 * scripts/install.sh and openclaw-pool.service under a real systemd (PID 1 of a container, driving
 * this machine's Docker), with the compose project where the earlier manager's users keep it:
 * /home/<user>/openclaw, POOL_DIR /home/<user>/openclaw/pool (SPEC §8). The tests run in order on
 * one box, each starting from the state the previous one left.
 */
const docker = await requireDocker();
const UNIT = 'openclaw-pool';
const started = Date.now();
/** Each check is a docker exec or two: poll gently, other suites share this 2-core machine. */
const POLL_MS = 250;

describe.skipIf(!docker)('openclaw-pool.service under systemd, installed by install.sh, with the project under /home', () => {
  let box: SystemdBox;
  let project: HomeComposeProject;
  let installOutput: string;

  beforeAll(async () => {
    // busybox agents on the host network: nothing reaches the bridge in these tests, and the daemon
    // binds 127.0.0.1 of the box's own network namespace (POOL_BIND), so nothing collides.
    project = await createHomeComposeProject(Object.fromEntries(['ceo', 'cto', 'cfo', 'designer', 'gateway'].map((name) => [name, agentService()])));
    box = await startSystemdBox({ binds: [project.dir], users: [project.user] });
    installOutput = (
      await installInBox(box, {
        composeDir: project.dir,
        // DOCKER_BIN named: the daemon then reads Docker through that CLI, not the Engine API, and
        // keeps a `docker events` child, which the kill -9 test needs to show KillMode=mixed at work.
        poolEnv: { MAX_AGENTS: '3', POOL_BIND: '127.0.0.1', INFRA_SERVICES: 'gateway', DOCKER_BIN: '/usr/bin/docker' },
        env: { SUDO_USER: project.user },
      })
    ).stdout;
  });
  afterAll(async () => {
    await box?.remove();
    await project?.remove();
    console.log(`systemd suite: ${new URL(import.meta.url).pathname.split('/').pop()} took ${((Date.now() - started) / 1000).toFixed(1)} s`);
  });

  const show = async (property: string) => (await box.exec(['systemctl', 'show', '--property', property, '--value', UNIT])).stdout;
  const ok = async (argv: string[]) => {
    const result = await box.exec(argv);
    expect(result, `${argv.join(' ')}: ${result.stderr}`).toMatchObject({ exitCode: 0 });
    return result.stdout;
  };
  /** Processes in the unit's cgroup (systemd tracks them in the unified hierarchy, cgroup v2 or hybrid). */
  const cgroupPids = async () => {
    const cgroup = await show('ControlGroup');
    if (cgroup === '') return [];
    const { stdout } = await box.sh(`cat /sys/fs/cgroup/unified${cgroup}/cgroup.procs 2>/dev/null || cat /sys/fs/cgroup${cgroup}/cgroup.procs 2>/dev/null`);
    return stdout.split('\n').filter(Boolean).map(Number);
  };
  const roster = async () => JSON.parse(await readFile(join(project.dir, 'pool/roster.json'), 'utf8')) as { running: string[]; slots_total: number };

  it('is active and enabled after install.sh, POOL_DIR under /home made writable by the drop-in', async () => {
    expect(installOutput).toContain('install: started;');
    expect(installOutput).toContain(`usermod -aG openclaw-pool ${project.user} `);
    expect(await show('ActiveState')).toBe('active');
    expect(await show('UnitFileState')).toBe('enabled');
    expect(await show('DropInPaths')).toBe('/etc/systemd/system/openclaw-pool.service.d/paths.conf');
    expect((await ok(['cat', '/etc/systemd/system/openclaw-pool.service.d/paths.conf'])).split('\n')).toContain(`ReadWritePaths=-${project.dir}/pool`);
    // Written by the daemon under ProtectHome=read-only: only the drop-in lets it.
    await eventually(async () => expect((await roster()).slots_total).toBe(3), 10_000, POLL_MS);
  });

  it("journalctl -u openclaw-pool shows the daemon's lines", async () => {
    await eventually(async () => {
      const journal = await box.journal(UNIT);
      expect(journal).toContain('openclaw-pool 0.1.0 starting (config: /etc/openclaw-pool/pool.env)');
      expect(journal).toMatch(/ready: 3 slots, 3 free; bridge on http:\/\/127\.0\.0\.1:19000/);
    }, 10_000, POLL_MS);
  });

  it('systemctl status shows the occupancy ("3 of 3 slots used")', async () => {
    for (const agent of ['ceo', 'cto', 'cfo']) await ok(['poolctl', 'start', agent]);
    expect(await project.running()).toEqual(['ceo', 'cfo', 'cto']);
    await eventually(async () => expect(await show('StatusText')).toMatch(/^3 of 3 slots used/), 10_000, POLL_MS);
    expect((await box.exec(['systemctl', 'status', '--no-pager', UNIT])).stdout).toMatch(/Status: "3 of 3 slots used/);
  });

  it('systemctl restart keeps the agents running, and poolctl works as soon as it returns', async () => {
    const before = await project.starts();
    const pid = await show('MainPID');
    // Type=notify: restart returns once the daemon said READY=1, after its socket listens.
    const result = await box.sh(`systemctl restart ${UNIT} && poolctl status`);
    expect(result, result.stderr).toMatchObject({ exitCode: 0 });
    expect(result.stdout).toMatch(/ceo/);
    expect(await show('MainPID')).not.toBe(pid);
    expect(await project.starts()).toEqual(before);
    expect(await box.journal(UNIT)).toContain('restart job; leaving the agents running');
  });

  it('systemctl reload applies a lowered MAX_AGENTS from pool.env and evicts down to the cap', async () => {
    await setPoolEnv(box, { MAX_AGENTS: '2' });
    const pid = await show('MainPID');
    await ok(['systemctl', 'reload', UNIT]);
    await eventually(async () => {
      const status = JSON.parse(await ok(['poolctl', 'status', '--json'])) as { slots_total: number; running: unknown[] };
      expect(status.slots_total).toBe(2);
      expect(status.running).toHaveLength(2);
      expect(await project.running()).toHaveLength(2);
      expect((await roster()).slots_total).toBe(2);
    }, 30_000, POLL_MS);
    expect(await show('MainPID')).toBe(pid);
    expect(await box.journal(UNIT)).toContain('reloaded configuration: MAX_AGENTS=2');
    // Back from RELOADING=1 to active once the reload is done.
    await eventually(async () => expect(await show('ActiveState')).toBe('active'), 10_000, POLL_MS);
    await eventually(async () => expect(await show('StatusText')).toMatch(/^2 of 2 slots used/), 10_000, POLL_MS);
  });

  it('after kill -9 of the main process, nothing of it is left, and it is back after RestartSec with NRestarts=1', async () => {
    const agents = await project.running();
    const pid = Number(await show('MainPID'));
    const before = await cgroupPids();
    // The daemon's `docker events` child (DOCKER_BIN is named, above), which KillMode=process used to leave behind.
    expect(before.length).toBeGreaterThan(1);
    const killedAt = Date.now();
    // The shell's kill: the box, like a minimal host, has no /bin/kill.
    await ok(['sh', '-c', `kill -9 ${pid}`]);
    await eventually(async () => {
      expect(await show('SubState')).toBe('auto-restart');
      expect(await cgroupPids()).toEqual([]);
    }, 10_000, POLL_MS);
    await eventually(async () => {
      expect(await show('ActiveState')).toBe('active');
      expect(await show('NRestarts')).toBe('1');
    }, 30_000, POLL_MS);
    expect(Date.now() - killedAt).toBeGreaterThanOrEqual(9_500);
    const after = await cgroupPids();
    expect(after).toContain(Number(await show('MainPID')));
    expect(after.filter((p) => before.includes(p))).toEqual([]);
    expect(await project.running()).toEqual(agents);
    await ok(['poolctl', 'status']);
  });

  it('poolctl doctor, run by a member of the openclaw-pool group, reports the 0640 pool.env it cannot read instead of crashing', async () => {
    await ok(['usermod', '-aG', 'openclaw-pool', project.user]);
    expect(await ok(['stat', '-c', '%a %U:%G', '/etc/openclaw-pool/pool.env'])).toBe('640 root:root');
    const doctor = await box.exec(['poolctl', 'doctor'], { user: project.user });
    const output = `${doctor.stdout}\n${doctor.stderr}`;
    expect(output).not.toMatch(/unexpected error|^\s+at /m);
    expect(output).toMatch(/pool\.env/);
    expect(output).toMatch(/permission denied|cannot read|not readable/i);
    // As a member it reaches the daemon through the 0660 socket.
    expect((await box.exec(['poolctl', 'status'], { user: project.user })).exitCode).toBe(0);
  });

  it('when enabled, it comes up at boot', async () => {
    await box.restart();
    await eventually(async () => expect(await show('ActiveState')).toBe('active'), 30_000, POLL_MS);
    expect(await show('NRestarts')).toBe('0');
    await ok(['poolctl', 'status']);
  });

  it('systemctl stop stops the pooled agents, then the daemon', async () => {
    for (const agent of ['ceo', 'cto']) await ok(['poolctl', 'start', agent]);
    expect(await project.running()).toEqual(['ceo', 'cto']);
    await ok(['systemctl', 'stop', UNIT]);
    expect(await show('ActiveState')).toBe('inactive');
    expect(await project.running()).toEqual([]);
    const journal = await box.journal(UNIT);
    const lastRun = journal.slice(journal.lastIndexOf('starting (config:'));
    expect(lastRun).toContain('stop job; stopping the pooled agents');
    expect(lastRun).not.toContain('agents keep running');
  });
});

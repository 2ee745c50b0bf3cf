import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../support/daemon.js';
import { agentService, requireDocker } from '../support/docker.js';
import { type HomeComposeProject, type SystemdBox, createHomeComposeProject, installInBox, setPoolEnv, startSystemdBox } from '../support/systemd.js';

/**
 * What a wrong pool.env does under systemd: the unit is Type=notify, so `systemctl start/restart`
 * fail when the daemon exits before READY=1, and exit 78 (RestartPreventExitStatus) means no
 * restart loop, the journal saying what to fix. Tests run in order on one box, each restoring a
 * valid pool.env at its end.
 */
const docker = await requireDocker();
const UNIT = 'openclaw-pool';
const started = Date.now();
/** Each check is a docker exec or two: poll gently, other suites share this 2-core machine. */
const POLL_MS = 250;
/** RestartSec=10 and a margin: a restart loop would have restarted by then. */
const LONGER_THAN_RESTART_SEC = 12_000;

describe.skipIf(!docker)('openclaw-pool.service with a wrong pool.env', () => {
  let box: SystemdBox;
  let project: HomeComposeProject;
  let valid: Record<string, string>;

  beforeAll(async () => {
    project = await createHomeComposeProject(Object.fromEntries(['ceo', 'cto', 'gateway'].map((name) => [name, agentService()])));
    box = await startSystemdBox({ binds: [project.dir], users: [project.user] });
    valid = { MAX_AGENTS: '2', POOL_BIND: '127.0.0.1', INFRA_SERVICES: 'gateway', COMPOSE_DIR: project.dir };
    await installInBox(box, { composeDir: project.dir, poolEnv: valid });
  });
  afterAll(async () => {
    await box?.remove();
    await project?.remove();
    console.log(`systemd suite: ${new URL(import.meta.url).pathname.split('/').pop()} took ${((Date.now() - started) / 1000).toFixed(1)} s`);
  });

  const show = async (property: string) => (await box.exec(['systemctl', 'show', '--property', property, '--value', UNIT])).stdout;
  const systemctl = (...args: string[]) => box.exec(['systemctl', ...args, UNIT]);
  /** The journal since the last start of the daemon. */
  const lastRun = async () => {
    const journal = await box.journal(UNIT);
    return journal.slice(journal.lastIndexOf('Starting openclaw-pool.service'));
  };
  const restoreValid = async () => {
    await setPoolEnv(box, valid);
    expect(await systemctl('restart')).toMatchObject({ exitCode: 0 });
    expect(await show('ActiveState')).toBe('active');
  };

  /** Failed with status 78, and still so (no restart) after longer than RestartSec. */
  const expectFailedWithoutLoop = async () => {
    expect(await show('ActiveState')).toBe('failed');
    expect(await show('ExecMainStatus')).toBe('78');
    await new Promise((resolve) => setTimeout(resolve, LONGER_THAN_RESTART_SEC));
    expect(await show('ActiveState')).toBe('failed');
    expect(await show('NRestarts')).toBe('0');
    expect(await lastRun()).not.toContain('Scheduled restart job');
  };

  it('is running with the valid pool.env', async () => {
    expect(await show('ActiveState')).toBe('active');
  });

  it('an invalid pool.env: systemctl restart and start fail, the journal names the variable, and it stays failed without a restart loop', async () => {
    await setPoolEnv(box, { MAX_AGENTS: 'lots' });
    const restart = await systemctl('restart');
    expect(restart.exitCode).not.toBe(0);
    expect(restart.stderr).toContain('openclaw-pool.service');
    await expectFailedWithoutLoop();
    await eventually(async () => expect(await lastRun()).toMatch(/MAX_AGENTS/), 5_000, POLL_MS);
    expect((await systemctl('start')).exitCode).not.toBe(0);
    expect(await show('ActiveState')).toBe('failed');
    await restoreValid();
  });

  it('a missing COMPOSE_DIR is named in the journal, exits 78 and does not loop', async () => {
    const missing = `/home/${project.user}/no-such-project`;
    // POOL_DIR stays where the drop-in makes it writable, so the only fault is COMPOSE_DIR.
    await setPoolEnv(box, { COMPOSE_DIR: missing, POOL_DIR: `${project.dir}/pool` });
    expect((await systemctl('restart')).exitCode).not.toBe(0);
    await expectFailedWithoutLoop();
    const journal = await lastRun();
    expect(journal).toContain(missing);
    expect(journal).not.toMatch(/docker not found/);
    await restoreValid();
  });

  it('a misspelt variable is warned about, naming the known one, and the daemon runs', async () => {
    await setPoolEnv(box, { MAX_AGNETS: '1' });
    expect(await systemctl('restart')).toMatchObject({ exitCode: 0 });
    expect(await show('ActiveState')).toBe('active');
    await eventually(async () => expect((await lastRun()).split('\n').find((line) => line.includes('MAX_AGNETS'))).toMatch(/MAX_AGENTS/), 5_000, POLL_MS);
    await box.sh("sed -i '/^MAX_AGNETS=/d' /etc/openclaw-pool/pool.env");
    await restoreValid();
  });
});

import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DriverError, UnknownAgentError } from '../../src/contract/errors.js';
import { createProcessDriver } from '../../src/drivers/process.js';
import { eventually } from '../support/daemon.js';

interface Stat {
  readonly state: string;
  readonly ppid: number;
  readonly pgrp: number;
  readonly startTime: number;
}

/** proc(5), read independently of the driver's own parser. */
function procStat(pid: number): Stat | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { state: fields[0] ?? '?', ppid: Number(fields[1]), pgrp: Number(fields[2]), startTime: Number(fields[19]) };
  } catch {
    return undefined;
  }
}

/** Alive means not exited: an unreaped zombie is gone for our purposes. */
function alive(pid: number): boolean {
  const s = procStat(pid);
  return s !== undefined && s.state !== 'Z' && s.state !== 'X';
}

function groupMembers(pgid: number): number[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .map(Number)
    .filter((pid) => procStat(pid)?.pgrp === pgid && alive(pid));
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    return '';
  }
}

async function rejection(promise: Promise<unknown>): Promise<DriverError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(DriverError);
  return error as DriverError;
}

type AgentSpec = { command: unknown; env?: Record<string, string>; cwd?: string };

const scratchDirs: string[] = [];
/** Process groups a test started itself or saw in a pid file: killed after it if any member is left. */
const leftovers: number[] = [];

/** Kills whatever process groups a test left behind: its own, and the agents by their pid files (only a pid that is still the recorded process). */
afterEach(async () => {
  for (const pgid of leftovers.splice(0)) {
    // A pgid cannot be handed out again while any member of the group lives, so members left mean ours.
    if (pgid === process.pid || groupMembers(pgid).length === 0) continue;
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
  for (const dir of scratchDirs.splice(0)) {
    const stateDir = join(dir, 'state');
    const entries = await readdir(stateDir).catch(() => [] as string[]);
    for (const entry of entries.filter((e) => e.endsWith('.pid'))) {
      try {
        const { pid, startTime } = JSON.parse(await readFile(join(stateDir, entry), 'utf8')) as { pid: number; startTime: number };
        if (pid !== process.pid && procStat(pid)?.startTime === startTime) process.kill(-pid, 'SIGKILL');
      } catch {
        // Not ours, or already gone.
      }
    }
    await rm(dir, { recursive: true, force: true });
  }
});

/** A roster at `<dir>/conf/roster.json` and a state dir at `<dir>/state`. */
async function setup(agents: Record<string, AgentSpec> | string) {
  const dir = await mkdtemp(join(tmpdir(), 'pool-proc-'));
  scratchDirs.push(dir);
  const confDir = join(dir, 'conf');
  const stateDir = join(dir, 'state');
  await mkdir(confDir);
  const rosterPath = join(confDir, 'roster.json');
  const writeRoster = (roster: Record<string, AgentSpec> | string) =>
    writeFile(rosterPath, typeof roster === 'string' ? roster : JSON.stringify({ agents: roster }));
  await writeRoster(agents);
  const driver = createProcessDriver({ rosterPath, stateDir });
  const pidFile = async (agent: string) => {
    const record = JSON.parse(await readFile(join(stateDir, `${agent}.pid`), 'utf8')) as { pid: number; startTime: number };
    leftovers.push(record.pid);
    return record;
  };
  const hasPidFile = (agent: string) => stat(join(stateDir, `${agent}.pid`)).then(() => true, () => false);
  return { dir, confDir, stateDir, rosterPath, driver, writeRoster, pidFile, hasPidFile };
}

const sleeper = (extra = '') => ({ command: ['sh', '-c', `${extra}exec sleep 60`] });

describe('the process driver', () => {
  it('runs the command with AGENT_ID and the roster env, in its cwd, with its output in the agent log', async () => {
    const t = await setup({
      ceo: { command: ['sh', '-c', 'echo "$AGENT_ID $FOO" > out.txt; echo hello from $AGENT_ID; exec sleep 60'], env: { FOO: 'bar' }, cwd: 'work' },
    });
    await mkdir(join(t.confDir, 'work'));
    await t.driver.start('ceo');

    const out = await eventually(() => readFile(join(t.confDir, 'work', 'out.txt'), 'utf8'), 5_000, 20);
    expect(out).toBe('ceo bar\n');
    expect(await readFile(join(t.stateDir, 'logs', 'ceo.log'), 'utf8')).toContain('hello from ceo');
    const { pid, startTime } = await t.pidFile('ceo');
    expect(procStat(pid)).toMatchObject({ startTime, pgrp: pid });
    expect(alive(pid)).toBe(true);
  });

  it('leaves a running agent alone when it is started again, even concurrently', async () => {
    const t = await setup({ ceo: sleeper('echo started >> starts.txt; ') });
    await Promise.all([t.driver.start('ceo'), t.driver.start('ceo')]);
    const first = await t.pidFile('ceo');
    await t.driver.start('ceo');

    expect(await t.pidFile('ceo')).toEqual(first);
    expect(await readFile(join(t.confDir, 'starts.txt'), 'utf8')).toBe('started\n');
  });

  it('lists running agents with their start time, an agent that died as not running, and a stopped one not at all', async () => {
    const t = await setup({ ceo: sleeper(), cto: sleeper(), cfo: sleeper() });
    const before = Date.now();
    await Promise.all([t.driver.start('ceo'), t.driver.start('cto'), t.driver.start('cfo')]);
    await t.driver.stop('cto', 5_000);
    const cfo = await t.pidFile('cfo');
    process.kill(-cfo.pid, 'SIGKILL');
    await eventually(() => expect(alive(cfo.pid), 'cfo to die').toBe(false), 5_000, 20);

    const listed = (await t.driver.list()).sort((a, b) => a.agent.localeCompare(b.agent));
    expect(listed).toEqual([
      { agent: 'ceo', running: true, startedAt: expect.any(Number) },
      { agent: 'cfo', running: false },
    ]);
    expect(listed[0]!.startedAt).toBeGreaterThanOrEqual(before - 1_000);
    expect(listed[0]!.startedAt).toBeLessThanOrEqual(Date.now());
  });

  it('stops an agent that exits on SIGTERM without waiting for the timeout', async () => {
    const t = await setup({ ceo: sleeper() });
    await t.driver.start('ceo');
    const { pid } = await t.pidFile('ceo');

    const begun = Date.now();
    await t.driver.stop('ceo', 10_000);
    expect(Date.now() - begun).toBeLessThan(2_000);
    expect(alive(pid)).toBe(false);
    expect(await t.hasPidFile('ceo')).toBe(false);
    expect(await t.driver.list()).toEqual([]);
  });

  it('kills an agent that ignores SIGTERM once the timeout has passed, its whole process group with it', async () => {
    const t = await setup({ stubborn: { command: ['sh', '-c', "trap '' TERM; sleep 60 & while :; do sleep 0.1; done"] } });
    await t.driver.start('stubborn');
    const { pid } = await t.pidFile('stubborn');
    const child = await eventually(() => {
      const background = groupMembers(pid).find((p) => cmdline(p) === 'sleep 60');
      expect(background, 'the background sleep').toBeDefined();
      return background!;
    }, 5_000, 20);

    const begun = Date.now();
    await t.driver.stop('stubborn', 500);
    const took = Date.now() - begun;
    expect(took).toBeGreaterThanOrEqual(500);
    expect(took).toBeLessThan(3_000);
    expect(alive(pid)).toBe(false);
    expect(alive(child)).toBe(false);
    expect(groupMembers(pid)).toEqual([]);
    expect(await t.hasPidFile('stubborn')).toBe(false);
  });

  it('waits for the rest of the group to finish shutting down when the leader exits at once', async () => {
    // The leader (outer sh) dies on SIGTERM; the inner sh takes ~0.5 s to shut down gracefully.
    const inner = `trap "sleep 0.5; echo done > done.txt; exit 0" TERM; while :; do sleep 0.1; done`;
    const t = await setup({ ceo: { command: ['sh', '-c', `sh -c '${inner}' & wait`] } });
    await t.driver.start('ceo');
    const { pid } = await t.pidFile('ceo');
    await eventually(() => expect(groupMembers(pid).some((p) => cmdline(p).startsWith('sh -c trap')), 'the inner shell').toBe(true), 5_000, 20);

    await t.driver.stop('ceo', 10_000);
    expect(await readFile(join(t.confDir, 'done.txt'), 'utf8')).toBe('done\n');
    expect(groupMembers(pid)).toEqual([]);
  });

  it('resolves at once when stopping an agent that is not running', async () => {
    const t = await setup({ ceo: sleeper() });
    const begun = Date.now();
    await t.driver.stop('ceo', 10_000);
    await t.driver.start('ceo');
    await t.driver.stop('ceo', 10_000);
    await t.driver.stop('ceo', 10_000);
    expect(Date.now() - begun).toBeLessThan(3_000);
  });

  it('fails to start a command that exits at once, with what it printed and its exit code', async () => {
    const t = await setup({ ceo: { command: ['sh', '-c', 'echo "config file missing" >&2; exit 3'] } });
    await mkdir(join(t.stateDir, 'logs'), { recursive: true });
    await writeFile(join(t.stateDir, 'logs', 'ceo.log'), 'output of an earlier run\n');

    const error = await rejection(t.driver.start('ceo'));
    expect(error.message).toContain('config file missing');
    expect(error.message).toContain('code 3');
    expect(error.stderr).toBe('config file missing');
    expect(error.exitCode).toBe(3);
    expect(error.argv).toEqual(['sh', '-c', 'echo "config file missing" >&2; exit 3']);
    expect(await t.hasPidFile('ceo')).toBe(false);
    expect((await t.driver.list()).filter((o) => o.running)).toEqual([]);
  });

  it('fails to start a missing binary, naming it', async () => {
    const t = await setup({ ceo: { command: ['/nonexistent/agent-bin', '--serve'] } });
    const error = await rejection(t.driver.start('ceo'));
    expect(error.message).toContain('/nonexistent/agent-bin not found');
    expect(error.argv).toEqual(['/nonexistent/agent-bin', '--serve']);
    expect(await t.hasPidFile('ceo')).toBe(false);
  });

  it('fails to start a file that is not executable, naming it', async () => {
    const t = await setup({ ceo: { command: ['./agent.sh'] } });
    await writeFile(join(t.confDir, 'agent.sh'), '#!/bin/sh\nexec sleep 60\n');
    await chmod(join(t.confDir, 'agent.sh'), 0o644);
    const error = await rejection(t.driver.start('ceo'));
    expect(error.message).toContain('./agent.sh is not executable');
  });

  it('refuses to start an agent that is not in the roster', async () => {
    const t = await setup({ ceo: sleeper() });
    for (const agent of ['nobody', 'constructor']) {
      // Not Docker's failure, nor the roster's: a name of its own kind, as the pool's own refusal is.
      const error = await t.driver.start(agent).then(() => undefined, (e: unknown) => e);
      expect(error).toBeInstanceOf(UnknownAgentError);
      expect(error).toMatchObject({ agent, known: ['ceo'], where: t.rosterPath });
      expect((error as Error).message).toContain(`unknown agent "${agent}" (not in ${t.rosterPath})`);
    }
  });

  it('reads the roster again on each call, so edits take effect', async () => {
    const t = await setup({ ceo: sleeper() });
    expect(await t.driver.services()).toEqual(['ceo']);
    await t.writeRoster({ ceo: sleeper(), cto: sleeper() });
    expect(await t.driver.services()).toEqual(['ceo', 'cto']);
    await t.driver.start('cto');
    expect(await t.driver.list()).toEqual([{ agent: 'cto', running: true, startedAt: expect.any(Number) }]);
  });

  it('lists a pid file whose process is gone as not running, and starts the agent over it', async () => {
    const t = await setup({ ceo: sleeper() });
    const gone = spawnSync('true').pid;
    expect(alive(gone)).toBe(false);
    await mkdir(t.stateDir, { recursive: true });
    await writeFile(join(t.stateDir, 'ceo.pid'), JSON.stringify({ pid: gone, startTime: 1 }));

    expect(await t.driver.list()).toEqual([{ agent: 'ceo', running: false }]);
    await t.driver.start('ceo');
    const { pid } = await t.pidFile('ceo');
    expect(pid).not.toBe(gone);
    expect(alive(pid)).toBe(true);
    expect(await t.driver.list()).toEqual([{ agent: 'ceo', running: true, startedAt: expect.any(Number) }]);
  });

  it('tells a reused pid from the agent by its start time, and never signals the process that now has it', async () => {
    const t = await setup({ ceo: sleeper() });
    const self = procStat(process.pid)!;
    await mkdir(t.stateDir, { recursive: true });
    const pidFile = join(t.stateDir, 'ceo.pid');

    // The right start time makes this test runner look like the agent: the start time is what tells them apart.
    await writeFile(pidFile, JSON.stringify({ pid: process.pid, startTime: self.startTime }));
    expect(await t.driver.list()).toEqual([{ agent: 'ceo', running: true, startedAt: expect.any(Number) }]);

    await writeFile(pidFile, JSON.stringify({ pid: process.pid, startTime: self.startTime - 1 }));
    expect(await t.driver.list()).toEqual([{ agent: 'ceo', running: false }]);
    const signalled: string[] = [];
    const onTerm = () => signalled.push('SIGTERM');
    process.on('SIGTERM', onTerm);
    try {
      await t.driver.stop('ceo', 1_000);
    } finally {
      process.off('SIGTERM', onTerm);
    }
    expect(signalled).toEqual([]);
    expect(await t.hasPidFile('ceo')).toBe(false);

    await writeFile(pidFile, JSON.stringify({ pid: process.pid, startTime: self.startTime + 1 }));
    await t.driver.start('ceo');
    const { pid } = await t.pidFile('ceo');
    expect(pid).not.toBe(process.pid);
    expect(alive(pid)).toBe(true);
  });

  it('treats a pid file naming a zombie (exited, not yet reaped) as not running, and stops it at once', async () => {
    const t = await setup({ ceo: sleeper() });
    // `sleep 60` never reaps the `sleep 0` it inherited from the shell it replaced.
    const parent = spawn('sh', ['-c', 'sleep 0 & exec sleep 60'], { detached: true, stdio: 'ignore' });
    parent.on('error', () => {});
    leftovers.push(parent.pid!);
    const zombie = await eventually(() => {
      const found = readdirSync('/proc').filter((e) => /^\d+$/.test(e)).map(Number).find((p) => procStat(p)?.ppid === parent.pid && procStat(p)?.state === 'Z');
      expect(found, 'a zombie').toBeDefined();
      return found!;
    }, 5_000, 20);
    await mkdir(t.stateDir, { recursive: true });
    await writeFile(join(t.stateDir, 'ceo.pid'), JSON.stringify({ pid: zombie, startTime: procStat(zombie)!.startTime }));

    expect(await t.driver.list()).toEqual([{ agent: 'ceo', running: false }]);
    const begun = Date.now();
    await t.driver.stop('ceo', 5_000);
    expect(Date.now() - begun).toBeLessThan(1_000);
    expect(await t.hasPidFile('ceo')).toBe(false);
  });

  it('treats a torn pid file as not running', async () => {
    const t = await setup({ ceo: sleeper() });
    await mkdir(t.stateDir, { recursive: true });
    await writeFile(join(t.stateDir, 'ceo.pid'), '{"pid": 12');
    expect(await t.driver.list()).toEqual([{ agent: 'ceo', running: false }]);
    await t.driver.start('ceo');
    expect(alive((await t.pidFile('ceo')).pid)).toBe(true);
  });

  it('lets a second driver over the same state dir (a restarted daemon) see and stop what the first started', async () => {
    const t = await setup({ ceo: sleeper(), cto: sleeper() });
    await t.driver.start('ceo');
    const first = await t.pidFile('ceo');
    const [listedBefore] = await t.driver.list();

    const restarted = createProcessDriver({ rosterPath: t.rosterPath, stateDir: t.stateDir });
    expect(await restarted.list()).toEqual([listedBefore]);
    await restarted.start('ceo');
    expect(await t.pidFile('ceo')).toEqual(first);
    await restarted.stop('ceo', 5_000);
    expect(alive(first.pid)).toBe(false);
    expect(await t.driver.list()).toEqual([]);
  });
});

describe('an invalid process roster', () => {
  it.each([
    { problem: 'bad JSON', roster: '{"agents": {', says: 'is not valid JSON' },
    { problem: 'a bad agent name', roster: JSON.stringify({ agents: { 'bad name': { command: ['true'] } } }), says: 'agents["bad name"]: invalid agent name "bad name"' },
    { problem: 'a command that is a string', roster: JSON.stringify({ agents: { ceo: { command: 'sleep 60' } } }), says: 'agents.ceo.command: command must be an argv array' },
    { problem: 'an empty command', roster: JSON.stringify({ agents: { ceo: { command: [] } } }), says: 'agents.ceo.command: command must name a program' },
    { problem: 'a misspelt field', roster: JSON.stringify({ agents: { ceo: { cmd: ['true'] } } }), says: 'agents.ceo' },
    { problem: 'env setting AGENT_ID', roster: JSON.stringify({ agents: { ceo: { command: ['true'], env: { AGENT_ID: 'cfo' } } } }), says: 'may not set AGENT_ID' },
    { problem: 'no agents field', roster: JSON.stringify({ ceo: { command: ['true'] } }), says: 'agents: agents must be an object' },
  ])('with $problem is rejected with an error naming the file and the problem', async ({ roster, says }) => {
    const t = await setup(roster);
    for (const call of [() => t.driver.services(), () => t.driver.start('ceo')]) {
      const error = await rejection(call());
      expect(error.message).toContain(t.rosterPath);
      expect(error.message).toContain(says);
    }
    expect(await t.hasPidFile('ceo')).toBe(false);
  });

  it('that is missing is rejected with an error naming the file', async () => {
    const t = await setup({});
    await rm(t.rosterPath);
    const error = await rejection(t.driver.services());
    expect(error.message).toContain(`process roster ${t.rosterPath} cannot be read`);
  });
});

import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DoctorReport } from '../../src/contract/index.js';
import { poolctl } from '../support/cli.js';
import { requireDocker } from '../support/docker.js';
import { type TestDaemon, startTestDaemon } from '../support/daemon.js';
import { useTempDir } from '../support/tmp.js';

const docker = await requireDocker();
const tempDir = useTempDir();

/** `PASS  docker  engine 20.10.24` → the verdict and detail of each check, in order. */
function lines(stdout: string): { verdict: string; check: string; detail: string }[] {
  return stdout
    .trim()
    .split('\n')
    .slice(0, -1)
    .map((line) => {
      const match = /^(PASS|WARN|FAIL|SKIP) {2}(\S+(?: \S+)?) +(.*)$/.exec(line);
      if (match === null) throw new Error(`not a check line: ${JSON.stringify(line)}`);
      return { verdict: match[1]!, check: match[2]!.trim(), detail: match[3]! };
    });
}

const lineOf = (stdout: string, check: string) => lines(stdout).filter((l) => l.check === check);

describe('poolctl doctor without a daemon', () => {
  /** A pool.env in a fresh directory; the compose project is never read when the file is invalid. */
  const envFile = async (text: string) => {
    const dir = await tempDir();
    const file = join(dir, 'pool.env');
    await writeFile(file, text);
    return { dir, file };
  };

  it('fails on an invalid pool.env, one line naming each variable, and skips what needs it', async () => {
    const { dir, file } = await envFile('');
    await writeFile(file, `MAX_AGENTS=lots\nEVICT_GRACE_SECONDS=-1\nPOOL_SOCKET=${dir}/s.sock\n`);
    const run = await poolctl(['doctor', '--config', file]);
    expect(run.code).toBe(1);
    expect(lineOf(run.stdout, 'pool.env')).toEqual([
      { verdict: 'FAIL', check: 'pool.env', detail: 'MAX_AGENTS="lots": expected a whole number' },
      { verdict: 'FAIL', check: 'pool.env', detail: expect.stringMatching(/^EVICT_GRACE_SECONDS="-1": /) },
    ]);
    expect(lineOf(run.stdout, 'sizing')).toEqual([{ verdict: 'SKIP', check: 'sizing', detail: 'needs a valid pool.env' }]);
    expect(run.stdout.trim().split('\n').at(-1)).toMatch(/^\d+ failed, \d+ warnings?$/);
    expect(run.stdout).not.toMatch(/\x1b\[/);
  });

  it('fails when --config names a file that does not exist', async () => {
    const run = await poolctl(['doctor', '--config', '/nonexistent/pool.env']);
    expect(run.code).toBe(1);
    expect(lineOf(run.stdout, 'pool.env')[0]).toMatchObject({ verdict: 'FAIL', detail: expect.stringContaining('/nonexistent/pool.env: no such file') });
  });

  it('under POOL_DRIVER=process skips the Docker checks, saying so, and reads the process roster', async () => {
    const { dir, file } = await envFile('');
    await writeFile(join(dir, 'agents.json'), JSON.stringify({ agents: { ceo: { command: ['sleep', '60'] }, cto: { command: ['sleep', '60'] } } }));
    await writeFile(file, `POOL_DRIVER=process\nCOMPOSE_DIR=${dir}\nPOOL_SOCKET=${dir}/s.sock\nINFRA_SERVICES=\n`);
    const run = await poolctl(['doctor', '--config', file, '--json']);
    const report = DoctorReport.parse(JSON.parse(run.stdout));
    const byCheck = Object.fromEntries(report.checks.map((c) => [c.check, c]));
    for (const check of ['docker', 'compose', 'infrastructure']) expect(byCheck[check]).toMatchObject({ verdict: 'skip', detail: 'POOL_DRIVER=process: Docker is not used' });
    expect(byCheck.project).toMatchObject({ verdict: 'pass', detail: expect.stringContaining('2 agents (ceo, cto)') });
    expect(byCheck.sizing?.detail).toContain('POOL_DRIVER=process: agents are not measured');
    // Nothing listens on that socket.
    expect(byCheck.daemon?.verdict).toBe('fail');
    expect(report.ok).toBe(false);
    expect(run.code).toBe(1);
  });
});

describe.skipIf(!docker)('poolctl doctor and poolctl metrics against a real daemon on real Docker', () => {
  let p: TestDaemon;
  /** The daemon's own settings as a pool.env anyone may read, with `extra` lines after them (later lines win). */
  const envFile = async (extra: (dir: string) => string = () => '') => {
    const dir = await tempDir();
    await chmod(dir, 0o755);
    const file = join(dir, 'pool.env');
    const settings = {
      COMPOSE_DIR: p.project.dir,
      COMPOSE_PROJECT: p.project.name,
      POOL_DIR: p.poolDir,
      POOL_SOCKET: p.socketPath,
      INFRA_SERVICES: 'gateway,litellm',
      MAX_AGENTS: '2',
      POOL_BIND: '127.0.0.1',
      POOL_PORT: '0',
    };
    await writeFile(file, `${Object.entries(settings).map(([k, v]) => `${k}=${v}`).join('\n')}\n${extra(dir)}`);
    await chmod(file, 0o644);
    return file;
  };

  let socketDir: string;
  beforeAll(async () => {
    // As /run/openclaw-pool is: anyone may look at the socket, only its group may use it.
    socketDir = await mkdtemp(join(tmpdir(), 'pool-'));
    await chmod(socketDir, 0o755);
    p = await startTestDaemon({ env: { MAX_AGENTS: '2' }, socketPath: join(socketDir, 's.sock') });
    await p.client.request('cfo');
  });
  afterAll(async () => {
    await p?.stop();
    await rm(socketDir, { recursive: true, force: true });
  });

  it('passes a healthy setup, one line per check, and exits 0', async () => {
    const file = await envFile();
    const run = await poolctl(['doctor', '--config', file]);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const port = new URL(p.url).port;
    expect(lines(run.stdout)).toEqual([
      { verdict: 'PASS', check: 'pool.env', detail: file },
      { verdict: 'PASS', check: 'docker', detail: expect.stringMatching(/^engine \d+\.\d+/) },
      { verdict: 'PASS', check: 'compose', detail: expect.stringMatching(/^compose v?2\./) },
      { verdict: 'PASS', check: 'project', detail: `${p.project.name}: 8 agents (ceo, cfo, cto, designer, legal, marketing, qa, software-engineer)` },
      { verdict: 'PASS', check: 'infrastructure', detail: 'gateway, litellm running' },
      { verdict: 'PASS', check: 'socket', detail: expect.stringMatching(new RegExp(`^${p.socketPath} mode 0660, gid \\d+$`)) },
      { verdict: 'PASS', check: 'daemon', detail: expect.stringMatching(/^ok: version \S+, up \d+ s, docker ok$/) },
      { verdict: 'PASS', check: 'bridge', detail: `127.0.0.1:${port} (listening)` },
      { verdict: 'PASS', check: 'pool dir', detail: `${p.poolDir} is writable` },
      {
        verdict: 'PASS',
        check: 'sizing',
        detail: expect.stringMatching(/^suggested MEMORY_BUDGET=\d+M \(MemTotal .* − MEMORY_RESERVE 2 GiB, what MEMORY_BUDGET=auto computes; it fits \d+ agents? at .* per agent \(mean of 1 measured\)\); MEMORY_BUDGET unset: only MAX_AGENTS=2 limits the pool$/),
      },
    ]);
    expect(run.stdout.trim().split('\n').at(-1)).toBe('ok');
  });

  it('prints the same report as JSON, with the figures behind the MEMORY_BUDGET suggestion', async () => {
    const run = await poolctl(['doctor', '--config', await envFile(), '--json']);
    expect(run.code).toBe(0);
    const report = DoctorReport.parse(JSON.parse(run.stdout));
    expect(report.ok).toBe(true);
    expect(report.checks.map((c) => c.verdict)).toEqual(Array(10).fill('pass'));
    const sizing = report.sizing!;
    expect(sizing).toMatchObject({ measured_agents: 1, max_agents: 2, configured_budget: null, reserve_bytes: 2 * 1024 ** 3 });
    expect(sizing.per_agent_bytes).toBeGreaterThan(0);
    expect(sizing.suggested_budget_bytes).toBe(sizing.total_bytes - sizing.reserve_bytes);
    expect(sizing.fits_agents).toBe(Math.floor(sizing.suggested_budget_bytes / sizing.per_agent_bytes));
  });

  it('warns about infrastructure services missing from the project, and still exits 0', async () => {
    const run = await poolctl(['doctor', '--config', await envFile(() => 'INFRA_SERVICES=gateway,litellm,ollama\n')]);
    expect(run.code).toBe(0);
    expect(lineOf(run.stdout, 'infrastructure')).toEqual([
      { verdict: 'WARN', check: 'infrastructure', detail: 'ollama not in the compose project (INFRA_SERVICES)' },
    ]);
    expect(run.stdout.trim().split('\n').at(-1)).toBe('ok, 1 warning');
  });

  it('fails when the daemon is not running there, and takes the bridge addresses from pool.env', async () => {
    const file = await envFile((dir) => `POOL_SOCKET=${dir}/gone.sock\n`);
    const run = await poolctl(['doctor', '--config', file]);
    expect(run.code).toBe(1);
    expect(lineOf(run.stdout, 'socket')[0]).toMatchObject({ verdict: 'FAIL', detail: expect.stringContaining(`${join(file, '..', 'gone.sock')} does not exist`) });
    expect(lineOf(run.stdout, 'daemon')[0]).toMatchObject({ verdict: 'FAIL', detail: expect.stringContaining('cannot reach the openclaw-pool daemon') });
    expect(lineOf(run.stdout, 'bridge')[0]).toMatchObject({ verdict: 'PASS', detail: expect.stringContaining('from pool.env; the daemon is not running') });
  });

  it('fails, saying what to do, for a user who may not use the socket', async () => {
    const run = await poolctl(['doctor', '--config', await envFile()], { user: 'nobody' });
    expect(run.code).toBe(1);
    expect(lineOf(run.stdout, 'daemon')[0]).toMatchObject({ verdict: 'FAIL', detail: expect.stringContaining('permission denied') });
    // The compose project's directory is private to root too: said as such, not as "spawn docker EACCES".
    expect(lineOf(run.stdout, 'project')[0]).toMatchObject({ verdict: 'FAIL', detail: expect.stringContaining(`permission denied running docker in ${p.project.dir}`) });
    expect(lineOf(run.stdout, 'socket')[0]?.verdict).toBe('PASS');
  });

  it("uses the running daemon's configuration for a socket-group member who may not read pool.env", async () => {
    const file = await envFile();
    await chmod(file, 0o600);
    // The socket is 0660 root:root here: group root stands for POOL_SOCKET_GROUP.
    const run = await poolctl(['doctor', '--config', file, '--socket', p.socketPath], { user: 'nobody', group: 'root' });
    expect(run.stderr).not.toMatch(/unexpected|EACCES/);
    expect(lineOf(run.stdout, 'pool.env')).toEqual([
      { verdict: 'WARN', check: 'pool.env', detail: `${file}: cannot read it (permission denied); the checks below use the configuration the running daemon reports` },
    ]);
    expect(lineOf(run.stdout, 'daemon')[0]?.verdict).toBe('PASS');
    expect(lineOf(run.stdout, 'bridge')[0]).toMatchObject({ verdict: 'PASS', detail: expect.stringContaining('(listening)') });
    expect(lineOf(run.stdout, 'pool dir')[0]?.detail).toContain(p.poolDir);
  });

  it('skips what needs pool.env for a user who may read neither it nor ask the daemon', async () => {
    const file = await envFile();
    await chmod(file, 0o600);
    const run = await poolctl(['doctor', '--config', file, '--socket', p.socketPath], { user: 'nobody' });
    expect(lineOf(run.stdout, 'pool.env')[0]?.detail).toBe(`${file}: cannot read it (permission denied); run 'sudo poolctl doctor' to check pool.env: the checks that need it are skipped`);
    for (const check of ['project', 'bridge', 'pool dir', 'sizing']) {
      expect(lineOf(run.stdout, check)[0]).toMatchObject({ verdict: 'SKIP', detail: "run 'sudo poolctl doctor' to check pool.env" });
    }
    expect(lineOf(run.stdout, 'daemon')[0]).toMatchObject({ verdict: 'FAIL', detail: expect.stringContaining('permission denied') });
  });

  it('warns when the bridge would listen on every interface without POOL_TOKEN', async () => {
    const run = await poolctl(['doctor', '--config', await envFile((dir) => `POOL_SOCKET=${dir}/gone.sock\nPOOL_BIND=0.0.0.0\nPOOL_PORT=19000\n`)]);
    expect(lineOf(run.stdout, 'bridge')[0]).toMatchObject({ verdict: 'WARN', detail: expect.stringContaining('0.0.0.0:19000') });
  });

  it('poolctl metrics prints what GET /metrics serves, read over the socket, or its families as JSON', async () => {
    const run = await poolctl(['metrics', '--socket', p.socketPath]);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('# TYPE openclaw_pool_slots_total gauge\nopenclaw_pool_slots_total 2\n');
    expect(run.stdout).toMatch(/^openclaw_pool_requests_total\{operation="request",outcome="started"\} [1-9]/m);
    const json = await poolctl(['metrics', '--socket', p.socketPath, '--json']);
    const families = JSON.parse(json.stdout) as { name: string; values: { value: number }[] }[];
    const agents = families.find((f) => f.name === 'openclaw_pool_agents') as { values: { value: number; labels: { state: string } }[] } | undefined;
    expect(Object.fromEntries(agents?.values.map((v) => [v.labels.state, v.value]) ?? [])).toEqual({ starting: 0, running: 1, stopping: 0, paused: 0 });
  });
});

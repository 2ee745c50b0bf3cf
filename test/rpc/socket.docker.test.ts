import { spawn } from 'node:child_process';
import { stat, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/contract/index.js';
import { createDaemon } from '../../src/daemon/daemon.js';
import { DriverError, ForbiddenAgentError, PoolFullError, UnknownAgentError, createPoolClient } from '../../sdk/index.js';
import { DaemonUnreachableError } from '../../sdk/index.js';
import { requireDocker } from '../support/docker.js';
import { type TestDaemon, startTestDaemon } from '../support/daemon.js';

const docker = await requireDocker();

describe.skipIf(!docker)('tRPC over the Unix socket: the same operations as the bridge', () => {
  let p: TestDaemon;
  beforeAll(async () => {
    p = await startTestDaemon({ env: { MAX_AGENTS: '2' } });
  });
  afterAll(async () => {
    await p?.stop();
  });

  it('creates the socket with mode 0660', async () => {
    expect((await stat(p.socketPath)).mode & 0o777).toBe(0o660);
  });

  it('requests, reports and releases agents with the bridge’s reply objects', async () => {
    const c = p.client;
    expect(await c.request('cfo', { requestedBy: 'script' })).toEqual({ status: 'started', agent: 'cfo' });
    expect(await c.request('cfo')).toEqual({ status: 'already_running', agent: 'cfo' });
    expect(await c.heartbeat('cfo')).toEqual({ status: 'ok' });
    expect(await c.available()).toEqual({ agents: ['cfo'] });
    expect((await c.status()).running).toMatchObject([{ id: 'cfo', requested_by: 'script', state: 'running' }]);
    expect(await c.health()).toMatchObject({ status: 'ok', docker: 'ok' });
    expect(await c.release('cfo')).toEqual({ status: 'stopped', agent: 'cfo' });
    expect(await p.runningInDocker()).toEqual([]);
  });

  it('throws typed errors a script can instanceof, with their data', async () => {
    const c = p.client;
    await expect(c.request('gateway')).rejects.toBeInstanceOf(ForbiddenAgentError);
    const unknown = await c.request('janitor').catch((e: unknown) => e);
    expect(unknown).toBeInstanceOf(UnknownAgentError);
    expect((unknown as UnknownAgentError).known).toContain('ceo');
    await c.request('ceo');
    await c.request('cto');
    await expect(c.request('qa')).rejects.toBeInstanceOf(PoolFullError);
    expect(await p.runningInDocker()).toEqual(['ceo', 'cto']);
  });

  it('carries Docker’s argv, exit code and stderr in a DriverError', async () => {
    await writeFile(join(p.project.dir, 'compose.override.yaml'), JSON.stringify({ services: { legal: { image: 'openclaw-pool/absent:1' } } }));
    await p.client.release('ceo');
    const error = await p.client.request('legal').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DriverError);
    expect(error).toMatchObject({ exitCode: 1, argv: expect.arrayContaining(['compose', 'up', 'legal']), stderr: expect.stringMatching(/absent/) });
  });

  it('says the daemon is unreachable when nothing listens on the socket', async () => {
    const c = createPoolClient({ socketPath: join(tmpdir(), 'no-such-pool.sock') });
    await expect(c.status()).rejects.toBeInstanceOf(DaemonUnreachableError);
    c.close();
  });
});

describe.skipIf(!docker)('socket start-up rules', () => {
  it('refuses to start beside a live daemon on the same socket, naming it', async () => {
    const first = await startTestDaemon();
    try {
      const config = { ...first.config, port: 0 };
      const second = createDaemon({ config, log: { info() {}, error() {} } });
      await expect(second.start()).rejects.toThrow(`another openclaw-pool daemon is already listening on ${first.socketPath}`);
      await second.stop('test');
      expect((await first.client.health()).status).toBe('ok');
    } finally {
      await first.stop();
    }
  });

  it('replaces a stale socket left by a dead process', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pool-'));
    const socketPath = join(dir, 's.sock');
    const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(socketPath)}, () => console.log('up'))`]);
    await new Promise((resolve) => child.stdout.once('data', resolve));
    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('exit', resolve));
    expect((await stat(socketPath)).isSocket()).toBe(true);
    const p = await startTestDaemon({ socketPath });
    try {
      expect((await p.client.health()).status).toBe('ok');
    } finally {
      await p.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses a socket path too long for a Unix socket, saying what to do', async () => {
    const config = loadConfig({ cwd: '/tmp', env: { POOL_SOCKET: `/tmp/${'x'.repeat(120)}.sock` } });
    const daemon = createDaemon({ config, log: { info() {}, error() {} } });
    await expect(daemon.start()).rejects.toThrow(/is 1\d\d bytes; Unix sockets allow at most 107: set POOL_SOCKET to a shorter path/);
    await daemon.stop('test');
  });
});

describe.skipIf(!docker)('port start-up rules', () => {
  it('refuses to start on a bridge port another daemon holds, naming the port', async () => {
    const first = await startTestDaemon();
    try {
      const port = Number(new URL(first.url).port);
      // Another project: on the same one, the first daemon's ownership of it refuses the second before any port is tried.
      const config = { ...first.config, port, composeProject: `pool-second-${process.pid}`, socketPath: join(tmpdir(), `pool-second-${process.pid}.sock`), poolDir: join(tmpdir(), `pool-second-${process.pid}`) };
      const second = createDaemon({ config, log: { info() {}, error() {} } });
      await expect(second.start()).rejects.toThrow(`port ${port} on 127.0.0.1 is already in use (another openclaw-pool daemon?)`);
      await second.stop('test');
      expect((await first.client.health()).status).toBe('ok');
    } finally {
      await first.stop();
      await rm(join(tmpdir(), `pool-second-${process.pid}`), { recursive: true, force: true });
    }
  });
});

import { appendFile, chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterEach, describe, expect, it } from 'vitest';
import { createPoolClient } from '../../sdk/index.js';
import { eventually } from '../support/daemon.js';
import { http } from '../support/http.js';
import { BIN, type SpawnedDaemon, spawnDaemon } from '../support/spawn-daemon.js';
import { useTempDir } from '../support/tmp.js';

const tempDir = useTempDir();
const CEO = 'ceo-token-0123456789abcdef';
const HOST = 'host-token-0123456789abcdef';
const running: SpawnedDaemon[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((d) => d.kill()));
});

/** A pool.env for a daemon of the process driver (no Docker needed) with POOL_TOKENS_FILE=tokens, and that file. */
async function setUp(tokens: string, mode = 0o600) {
  const dir = await tempDir();
  await writeFile(join(dir, 'agents.json'), JSON.stringify({ agents: { ceo: { command: ['sleep', '60'] }, cfo: { command: ['sleep', '60'] } } }));
  const poolEnv = join(dir, 'pool.env');
  await writeFile(poolEnv, ['POOL_DRIVER=process', 'POOL_TOKENS_FILE=tokens', `POOL_SOCKET=${dir}/s.sock`, 'POOL_PORT=0', 'POOL_BIND=127.0.0.1', 'INFRA_SERVICES=', ''].join('\n'));
  await writeFile(join(dir, 'tokens'), tokens);
  await chmod(join(dir, 'tokens'), mode);
  return {
    dir,
    tokensFile: join(dir, 'tokens'),
    start: () => {
      const d = spawnDaemon(dir, { POOL_ENV: poolEnv });
      running.push(d);
      return d;
    },
    tokens: (...args: string[]) => execa(process.execPath, [BIN, 'tokens', ...args], { cwd: dir, env: { POOL_ENV: poolEnv } }),
  };
}

describe('the daemon reads POOL_TOKENS_FILE at start-up and on SIGHUP', () => {
  it('stops at start-up on a malformed file, naming the variable and the line and no token (exit 78)', async () => {
    const { tokensFile, start } = await setUp(`ceo ${CEO}\ncfo ${CEO}\n`);
    const d = start();
    expect(await d.exited).toBe(78);
    expect(d.output()).toContain(`POOL_TOKENS_FILE ${tokensFile}:2: the same token as line 1: a token must name one agent`);
    expect(d.output()).not.toContain(CEO);
  });

  it('stops at start-up on a file its group may read, saying how to fix it (exit 78)', async () => {
    const { tokensFile, start } = await setUp(`ceo ${CEO}\n`, 0o640);
    const d = start();
    expect(await d.exited).toBe(78);
    expect(d.output()).toContain(`POOL_TOKENS_FILE ${tokensFile}: mode 0640: its group or others may read or change it, and so pass for any agent in it; run chmod 600 ${tokensFile}`);
  });

  it('applies a revoke on SIGHUP, and keeps the running tokens when the file has become malformed', async () => {
    const { tokensFile, start, tokens } = await setUp(`ceo ${CEO}\nhost ${HOST}\n`);
    const d = start();
    const url = await d.ready(20_000);
    expect(d.output()).toContain('per-agent tokens: ceo, host');

    await tokens('revoke', 'ceo');
    let from = d.output().length;
    d.child.kill('SIGHUP');
    await eventually(() => expect(d.output().slice(from)).toContain('reloaded configuration:'));
    expect(d.output().slice(from)).toContain('reloaded per-agent tokens: host\n');

    const added = (await tokens('add', 'cfo')).stdout;
    await appendFile(tokensFile, `${CEO}\n`);
    from = d.output().length;
    d.child.kill('SIGHUP');
    await eventually(() => expect(d.output().slice(from)).toContain(`reload failed, keeping the running configuration: invalid configuration:\n  POOL_TOKENS_FILE ${tokensFile}:3: expected "<agent> <token>"`));
    expect(d.output().slice(from)).not.toContain('reloaded');
    expect(d.isAlive()).toBe(true);
    expect((await http(url, 'GET', '/health')).status).toBe(200);
    for (const secret of [CEO, HOST, added]) expect(d.output()).not.toContain(secret);
  });

  it('shows the file in the config view by its path, never a token', async () => {
    const { tokensFile, start, dir } = await setUp(`ceo ${CEO}\n`);
    await start().ready(20_000);
    const pool = createPoolClient({ socketPath: join(dir, 's.sock') });
    try {
      const config = await pool.config();
      expect(config).toMatchObject({ tokensFile });
      expect(JSON.stringify(config)).not.toContain(CEO);
    } finally {
      pool.close();
    }
  });
});

import { chmod, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { BIN } from '../support/spawn-daemon.js';
import { useTempDir } from '../support/tmp.js';

const tempDir = useTempDir();
const BASE64URL_256_BITS = /^[A-Za-z0-9_-]{43}$/;

/** A pool.env in a fresh directory naming `tokens` there (relative, as the daemon resolves it against its working directory). */
async function setUp(poolEnv = 'POOL_TOKENS_FILE=tokens\n') {
  const dir = await tempDir();
  await writeFile(join(dir, 'pool.env'), poolEnv);
  const tokens = join(dir, 'tokens');
  /** The built `openclaw-pool tokens …`, run in `dir` with POOL_ENV naming its pool.env (execa strips the final newline). */
  const run = async (...args: string[]) => {
    const { exitCode, stdout, stderr } = await execa(process.execPath, [BIN, 'tokens', ...args], { cwd: dir, env: { POOL_ENV: join(dir, 'pool.env') }, reject: false });
    return { code: exitCode, stdout, stderr };
  };
  return { dir, tokens, run };
}

describe('openclaw-pool tokens', () => {
  it('adds a token: prints it alone on stdout, writes it to a new 0600 file, and says to reload', async () => {
    const { tokens, run } = await setUp();
    const added = await run('add', 'cfo');
    expect(added.code).toBe(0);
    expect(added.stdout).toMatch(BASE64URL_256_BITS);
    expect(added.stderr).toContain(`added cfo's token in ${tokens}; cfo sends it as its POOL_TOKEN; the daemon knows it once you run: systemctl reload openclaw-pool`);
    expect(added.stderr).not.toContain(added.stdout);
    expect(await readFile(tokens, 'utf8')).toBe(`cfo ${added.stdout}\n`);
    expect((await stat(tokens)).mode & 0o777).toBe(0o600);
    const host = await run('add', 'host');
    expect(host.stdout).toMatch(BASE64URL_256_BITS);
    expect(host.stdout).not.toBe(added.stdout);
    expect(await readFile(tokens, 'utf8')).toBe(`cfo ${added.stdout}\nhost ${host.stdout}\n`);
  });

  it('refuses a second token for an agent, and replaces it with --replace in its place, comments kept', async () => {
    const { tokens, run } = await setUp();
    await writeFile(tokens, '# kept\nceo ceo-token-0123456789abcdef\nhost host-token-0123456789abcdef\n', { mode: 0o600 });
    const again = await run('add', 'ceo');
    expect(again).toMatchObject({ code: 1, stdout: '' });
    expect(again.stderr).toContain(`ceo already has a token (line 2 of ${tokens}); give it a new one with --replace, or revoke it`);
    const replaced = await run('add', '--replace', 'ceo');
    expect(replaced.code).toBe(0);
    expect(replaced.stderr).toContain("replaced ceo's token");
    expect(await readFile(tokens, 'utf8')).toBe(`# kept\nceo ${replaced.stdout}\nhost host-token-0123456789abcdef\n`);
  });

  it('lists who has a token, never a token', async () => {
    const { tokens, run } = await setUp();
    const none = await run('list');
    expect(none).toMatchObject({ code: 0, stdout: '' });
    expect(none.stderr).toContain(`no tokens yet: ${tokens} does not exist`);
    const cfo = (await run('add', 'cfo')).stdout;
    const host = (await run('add', 'host')).stdout;
    const listed = await run('list');
    expect(listed).toMatchObject({ code: 0, stdout: 'cfo\nhost', stderr: '' });
    expect(listed.stdout + listed.stderr).not.toContain(cfo);
    expect(listed.stdout + listed.stderr).not.toContain(host);
  });

  it("revokes an agent's token and only it, and says it holds until the reload", async () => {
    const { tokens, run } = await setUp();
    await writeFile(tokens, 'ceo ceo-token-0123456789abcdef\n\ncfo cfo-token-0123456789abcdef\n', { mode: 0o600 });
    const revoked = await run('revoke', 'ceo');
    expect(revoked).toMatchObject({ code: 0, stdout: '' });
    expect(revoked.stderr).toContain(`revoked ceo's token in ${tokens}; the daemon accepts it until you run: systemctl reload openclaw-pool`);
    expect(await readFile(tokens, 'utf8')).toBe('\ncfo cfo-token-0123456789abcdef\n');
    expect((await stat(tokens)).mode & 0o777).toBe(0o600);
    const again = await run('revoke', 'ceo');
    expect(again.code).toBe(1);
    expect(again.stderr).toContain(`ceo has no token in ${tokens}; nothing to revoke`);
  });

  it('refuses a tokens file its group may read, naming it and the fix, and changes nothing (exit 78)', async () => {
    const { tokens, run } = await setUp();
    await writeFile(tokens, 'ceo ceo-token-0123456789abcdef\n');
    await chmod(tokens, 0o640);
    for (const args of [['list'], ['add', 'cfo'], ['revoke', 'ceo']]) {
      const refused = await run(...args);
      expect(refused).toMatchObject({ code: 78, stdout: '' });
      expect(refused.stderr).toContain(`POOL_TOKENS_FILE ${tokens}: mode 0640: its group or others may read or change it, and so pass for any agent in it; run chmod 600 ${tokens}`);
    }
    expect(await readFile(tokens, 'utf8')).toBe('ceo ceo-token-0123456789abcdef\n');
  });

  it('refuses to edit a malformed file, naming the line and no token (exit 78)', async () => {
    const { tokens, run } = await setUp();
    await writeFile(tokens, 'ceo ceo-token-0123456789abcdef\nlost-token-0123456789abcdef\n', { mode: 0o600 });
    const refused = await run('add', 'cfo');
    expect(refused.code).toBe(78);
    expect(refused.stderr).toContain(`POOL_TOKENS_FILE ${tokens}:2: expected "<agent> <token>", two words separated by blanks, found 1`);
    expect(refused.stderr).not.toContain('token-0123456789abcdef');
    expect(await readFile(tokens, 'utf8')).toBe('ceo ceo-token-0123456789abcdef\nlost-token-0123456789abcdef\n');
  });

  it('says where to set POOL_TOKENS_FILE when pool.env does not (exit 78)', async () => {
    const { dir, run } = await setUp('MAX_AGENTS=2\n');
    const refused = await run('add', 'cfo');
    expect(refused).toMatchObject({ code: 78, stdout: '' });
    expect(refused.stderr).toContain(`POOL_TOKENS_FILE is not set in ${join(dir, 'pool.env')}; set it first, e.g. POOL_TOKENS_FILE=/etc/openclaw-pool/tokens`);
  });

  it('stops on an invalid pool.env as the daemon does, naming the variable (exit 78)', async () => {
    const { run } = await setUp('POOL_TOKENS_FILE=tokens\nMAX_AGENTS=lots\n');
    const refused = await run('list');
    expect(refused.code).toBe(78);
    expect(refused.stderr).toContain('MAX_AGENTS="lots": expected a whole number');
  });

  it.each([
    { args: [], message: 'a command is required' },
    { args: ['mint', 'cfo'], message: 'unknown command "mint"' },
    { args: ['add'], message: "add needs the agent's name" },
    { args: ['revoke', 'ceo', 'cfo'], message: 'too many arguments for revoke' },
    { args: ['list', 'ceo'], message: 'too many arguments for list' },
    { args: ['add', '-x'], message: "Unknown option '-x'" },
    { args: ['add', '../etc'], message: 'invalid agent name "../etc"' },
    { args: ['revoke', '--replace', 'ceo'], message: '--replace goes with add' },
  ])('answers $args with usage and exit code 2: $message', async ({ args, message }) => {
    const { tokens, run } = await setUp();
    const refused = await run(...args);
    expect(refused).toMatchObject({ code: 2, stdout: '' });
    expect(refused.stderr).toContain(message);
    expect(refused.stderr).toContain('Usage: openclaw-pool tokens add <agent> [--replace]');
    await expect(stat(tokens)).rejects.toThrow('ENOENT');
  });

  it('prints its help on stdout with --help, and the daemon lists the command in its own', async () => {
    const { run } = await setUp();
    expect(await run('--help')).toMatchObject({ code: 0, stdout: expect.stringContaining('openclaw-pool tokens revoke <agent>') });
    const { stdout } = await execa(process.execPath, [BIN, '--help']);
    expect(stdout).toContain('openclaw-pool tokens add|list|revoke [AGENT]');
  });
});

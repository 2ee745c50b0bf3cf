import { chmod, chown, mkdir, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/contract/env-file.js';
import { readTokenBook } from '../../src/daemon/config.js';
import { readTokensFile, writeTokensFile } from '../../src/store/tokens-file.js';
import { useTempDir } from '../support/tmp.js';

const tempDir = useTempDir();
const asRoot = process.getuid?.() === 0;
const TOKEN = 'cfo-token-0123456789abcdef';

async function tokensFile(mode: number, text = `cfo ${TOKEN}\n`): Promise<string> {
  const file = join(await tempDir(), 'tokens');
  await writeFile(file, text);
  await chmod(file, mode);
  return file;
}

describe('readTokensFile refuses a file others could read or change, as ssh does', () => {
  it.each([0o640, 0o604, 0o620, 0o660, 0o644, 0o666, 0o610])('refuses mode %o, naming the variable, the file and the fix', async (mode) => {
    const file = await tokensFile(mode);
    const shown = mode.toString(8).padStart(4, '0');
    await expect(readTokensFile(file)).rejects.toThrow(ConfigError);
    await expect(readTokensFile(file)).rejects.toThrow(`POOL_TOKENS_FILE ${file}: mode ${shown}: its group or others may read or change it, and so pass for any agent in it; run chmod 600 ${file}`);
  });

  it.each([0o600, 0o400])('reads mode %o', async (mode) => {
    expect(await readTokensFile(await tokensFile(mode))).toBe(`cfo ${TOKEN}\n`);
  });

  it.skipIf(!asRoot)('refuses one owned by a user who is neither root nor the daemon', async () => {
    const file = await tokensFile(0o600);
    await chown(file, 1234, 0);
    await expect(readTokensFile(file)).rejects.toThrow(`POOL_TOKENS_FILE ${file}: owned by uid 1234, neither root nor this user`);
  });

  it('refuses a symlink, even to a good file, and a directory', async () => {
    const target = await tokensFile(0o600);
    const link = join(await tempDir(), 'link');
    await symlink(target, link);
    await expect(readTokensFile(link)).rejects.toThrow(`POOL_TOKENS_FILE ${link}: is a symlink; point POOL_TOKENS_FILE at the file itself`);
    const dir = join(await tempDir(), 'tokens.d');
    await mkdir(dir, { mode: 0o700 });
    await expect(readTokensFile(dir)).rejects.toThrow(`POOL_TOKENS_FILE ${dir}: is not a regular file`);
  });

  it('answers undefined for a missing file', async () => {
    expect(await readTokensFile(join(await tempDir(), 'none'))).toBeUndefined();
  });
});

describe('writeTokensFile', () => {
  it('makes the file 0600 whatever the umask, and replaces a wider one with a 0600 one', async () => {
    const file = join(await tempDir(), 'tokens');
    const umask = process.umask(0);
    try {
      await writeTokensFile(file, `cfo ${TOKEN}\n`);
      expect((await stat(file)).mode & 0o777).toBe(0o600);
      await chmod(file, 0o644);
      await writeTokensFile(file, `ceo ${TOKEN}\n`);
      expect((await stat(file)).mode & 0o777).toBe(0o600);
    } finally {
      process.umask(umask);
    }
    expect(await readTokensFile(file)).toBe(`ceo ${TOKEN}\n`);
  });
});

describe('readTokenBook', () => {
  it('is undefined without POOL_TOKENS_FILE', async () => {
    expect(await readTokenBook({ tokensFile: undefined, token: undefined })).toBeUndefined();
  });

  it('reads the book the file names', async () => {
    const book = await readTokenBook({ tokensFile: await tokensFile(0o600, `cfo ${TOKEN}\nhost host-token-0123456789\n`), token: 'shared-token' });
    expect([book?.identify(TOKEN), book?.hasHost, book?.agents]).toEqual(['cfo', true, ['cfo']]);
  });

  it('refuses a missing file, saying how to make one', async () => {
    const file = join(await tempDir(), 'tokens');
    await expect(readTokenBook({ tokensFile: file, token: undefined })).rejects.toThrow(`POOL_TOKENS_FILE ${file}: no such file; make it with: openclaw-pool tokens add <agent>`);
  });

  it("refuses an agent's token that is POOL_TOKEN, which every agent holds, and does not say it", async () => {
    const file = await tokensFile(0o600, `# x\ncfo ${TOKEN}\n`);
    const refused = readTokenBook({ tokensFile: file, token: TOKEN });
    await expect(refused).rejects.toThrow(`POOL_TOKENS_FILE ${file}:2: the token is POOL_TOKEN's, which every agent holds`);
    await expect(refused).rejects.not.toThrow(TOKEN);
  });
});

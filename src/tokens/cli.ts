import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { ConfigError } from '../contract/env-file.js';
import { AGENT_NAME_PATTERN } from '../contract/pattern.js';
import { HOST_ENTRY, parseTokensFile, withToken, withoutToken } from '../contract/tokens.js';
import { readConfig } from '../daemon/config.js';
import { readTokensFile, writeTokensFile } from '../store/tokens-file.js';

export const TOKENS_USAGE = `Usage: openclaw-pool tokens add <agent> [--replace]
       openclaw-pool tokens list
       openclaw-pool tokens revoke <agent>

Per-agent bearer tokens for the HTTP bridge, kept in the file POOL_TOKENS_FILE names (mode 0600,
made by the first add). On the bridge a token is its agent; the entry named "host" is the host,
and with it a POST from loopback needs that token too (the Unix socket needs none).

  add      makes a new random token for <agent> (or host), writes it to the file and prints it,
           alone on stdout; the agent sends it as its POOL_TOKEN
  list     the agents that have a token, one per line (never a token)
  revoke   removes <agent>'s token

The daemon reads the file at start-up and on \`systemctl reload openclaw-pool\` (SIGHUP): a change
applies from then on.

Options:
  -c, --config PATH  the pool.env that sets POOL_TOKENS_FILE (default: $POOL_ENV, ./pool.env, /etc/openclaw-pool/pool.env)
  --replace          add: give an agent that has a token a new one (its old one works until the reload)
  -h, --help         print this help

Examples:
  TOKEN=$(openclaw-pool tokens add cfo)
  openclaw-pool tokens revoke cfo && systemctl reload openclaw-pool

Exit codes: 0 done, 1 refused (the agent already has a token, or has none to revoke) or the file
cannot be written, 2 usage, 78 pool.env or the tokens file is invalid.`;

const EXIT_REFUSED = 1;
const EXIT_USAGE = 2;
const EXIT_CONFIG = 78;
/** 256 bits: as many as the sha256 digests the daemon compares. */
const TOKEN_BYTES = 32;
const RELOAD = 'systemctl reload openclaw-pool';

export interface TokensIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  readonly env: NodeJS.ProcessEnv;
  readonly cwd: string;
}

const processIo: TokensIo = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  env: process.env,
  cwd: process.cwd(),
};

/** `openclaw-pool tokens ...`: returns the exit code; every error becomes a message and a code here. */
export async function runTokens(argv: readonly string[], io: TokensIo = processIo): Promise<number> {
  const note = (line: string) => io.stderr(`openclaw-pool tokens: ${line}\n`);
  const usage = (problem: string) => {
    note(`${problem}\n\n${TOKENS_USAGE}`);
    return EXIT_USAGE;
  };
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      options: { config: { type: 'string', short: 'c' }, replace: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    return usage((error as Error).message);
  }
  const { values: args, positionals } = parsed;
  if (args.help) {
    io.stdout(`${TOKENS_USAGE}\n`);
    return 0;
  }
  const [command, agent, ...extra] = positionals;
  if (command !== 'add' && command !== 'list' && command !== 'revoke') return usage(command === undefined ? 'a command is required' : `unknown command ${JSON.stringify(command)}`);
  if (command === 'list' ? agent !== undefined : extra.length > 0) return usage(`too many arguments for ${command}`);
  if (command !== 'list' && agent === undefined) return usage(`${command} needs the agent's name`);
  if (agent !== undefined && !AGENT_NAME_PATTERN.test(agent)) return usage(`invalid agent name ${JSON.stringify(agent)}: expected 1-255 characters of letters, digits, '.', '_' or '-', starting with a letter or digit`);
  if (args.replace && command !== 'add') return usage('--replace goes with add');

  let path: string;
  let text: string | undefined;
  let entries;
  try {
    const loaded = await readConfig({ ...(args.config !== undefined && { envFile: args.config }), env: io.env, cwd: io.cwd });
    if (loaded.config.tokensFile === undefined) {
      note(`POOL_TOKENS_FILE is not set${loaded.file === undefined ? ', and no pool.env was found' : ` in ${loaded.file}`}; set it first, e.g. POOL_TOKENS_FILE=/etc/openclaw-pool/tokens`);
      return EXIT_CONFIG;
    }
    path = loaded.config.tokensFile;
    text = await readTokensFile(path);
    entries = parseTokensFile(text ?? '', `POOL_TOKENS_FILE ${path}`);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    note(error.message);
    return EXIT_CONFIG;
  }

  if (command === 'list') {
    if (text === undefined) note(`no tokens yet: ${path} does not exist`);
    for (const entry of entries) io.stdout(`${entry.agent}\n`);
    return 0;
  }
  const name = agent!;
  const existing = entries.find((entry) => entry.agent === name);
  const write = async (next: string): Promise<boolean> => {
    try {
      await writeTokensFile(path, next);
      return true;
    } catch (error) {
      note(`cannot write ${path}: ${(error as Error).message}; nothing was changed`);
      return false;
    }
  };
  if (command === 'revoke') {
    if (existing === undefined) {
      note(`${name} has no token in ${path}; nothing to revoke`);
      return EXIT_REFUSED;
    }
    if (!(await write(withoutToken(text ?? '', entries, name)))) return EXIT_REFUSED;
    note(`revoked ${name}'s token in ${path}; the daemon accepts it until you run: ${RELOAD}`);
    return 0;
  }
  if (existing !== undefined && !args.replace) {
    note(`${name} already has a token (line ${existing.line} of ${path}); give it a new one with --replace, or revoke it`);
    return EXIT_REFUSED;
  }
  const token = randomBytes(TOKEN_BYTES).toString('base64url');
  if (!(await write(withToken(text ?? '', entries, name, token)))) return EXIT_REFUSED;
  io.stdout(`${token}\n`);
  const sender = name === HOST_ENTRY ? 'callers from loopback send it' : `${name} sends it as its POOL_TOKEN`;
  note(`${existing === undefined ? 'added' : 'replaced'} ${name}'s token in ${path}; ${sender}; the daemon knows it once you run: ${RELOAD}`);
  return 0;
}

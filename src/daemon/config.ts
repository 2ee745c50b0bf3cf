import { access, readFile, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { ConfigError, DEFAULT_ENV_FILES, type PoolConfig, describeUnknownVariable, loadConfig, parseEnvFile, unknownVariables } from '../contract/index.js';
import { type TokenBook, createTokenBook, parseTokensFile } from '../contract/tokens.js';
import { readTokensFile } from '../store/tokens-file.js';

export interface LoadedConfig {
  readonly config: PoolConfig;
  /** The pool.env that was read, if any. */
  readonly file: string | undefined;
  /** What in that file is ignored (unknown variables), one line each. */
  readonly warnings: readonly string[];
  /** The file's variables as read. */
  readonly values: Readonly<Record<string, string>>;
}

/**
 * The environment for re-reading pool.env on SIGHUP. Variables whose value at start-up was exactly
 * the file's are copies of the file, made by a unit's `EnvironmentFile=` (the earlier manager's
 * had one): left in, they would override every later edit of that file and a reload would change
 * nothing. Only values an operator set apart from the file keep overriding it.
 */
export function reloadEnvironment(env: NodeJS.ProcessEnv, atStart: LoadedConfig): NodeJS.ProcessEnv {
  const copies = Object.entries(atStart.values).filter(([name, value]) => env[name] === value).map(([name]) => name);
  return Object.fromEntries(Object.entries(env).filter(([name]) => !copies.includes(name)));
}

/**
 * SPEC §6: `--config` or POOL_ENV names the file (it must exist); otherwise ./pool.env, then
 * /etc/openclaw-pool/pool.env; with none, the environment and the defaults apply. Relative paths
 * in the result are resolved against the working directory.
 */
export async function readConfig(options: ReadConfigOptions): Promise<LoadedConfig> {
  const explicit = options.envFile ?? options.env.POOL_ENV;
  let file: string | undefined;
  if (explicit !== undefined && explicit !== '') {
    file = resolve(options.cwd, explicit);
    if (!(await exists(file))) throw new ConfigError([`${explicit}: no such file (named by ${options.envFile ? '--config' : 'POOL_ENV'})`]);
  } else {
    for (const candidate of DEFAULT_ENV_FILES) {
      const path = resolve(options.cwd, candidate);
      if (await exists(path)) {
        file = path;
        break;
      }
    }
  }
  let text: string | undefined;
  if (file !== undefined) {
    const path = file;
    await refuseWritableByOthers(path);
    text = await readFile(path, 'utf8').catch((error: NodeJS.ErrnoException) => {
      throw new UnreadableConfigError(path, error);
    });
  }
  const values = file === undefined || text === undefined ? {} : parseEnvFile(text, file);
  return {
    file,
    warnings: file === undefined ? [] : unknownVariables(values).map((variable) => describeUnknownVariable(variable, file)),
    values,
    config: configFrom(values, options),
  };
}

export interface ReadConfigOptions {
  readonly envFile?: string;
  readonly env: NodeJS.ProcessEnv;
  readonly cwd: string;
}

/** pool.env exists but this user may not read it (it is 0640 root): a configuration problem for the daemon, a warning for doctor. */
export class UnreadableConfigError extends ConfigError {
  constructor(
    readonly file: string,
    cause: NodeJS.ErrnoException,
  ) {
    super([`${file}: cannot read it (${cause.code === 'EACCES' ? 'permission denied' : cause.message})`]);
  }
}

/**
 * The daemon runs as root and pool.env can name programs it runs (DOCKER_BIN): a file that others
 * may write, such as one an old install keeps in POOL_DIR, which containers mount, would let them
 * run what they like as root at the next reload. Refused: group or other write bits, or an owner
 * other than root or the daemon's own user. Devices and pipes (`POOL_ENV=/dev/null`) are not
 * files anyone keeps a configuration in, and are read as they are.
 */
async function refuseWritableByOthers(path: string): Promise<void> {
  const info = await stat(path).catch(() => undefined);
  if (info === undefined || !info.isFile()) return;
  const uid = process.getuid?.();
  if (info.uid !== 0 && info.uid !== uid)
    throw new ConfigError([`${path}: owned by uid ${info.uid}, neither root nor this daemon's user (uid ${uid}); chown it to root (a configuration must not be where others can change it)`]);
  if ((info.mode & 0o022) !== 0)
    throw new ConfigError([`${path}: writable by ${info.mode & 0o020 ? 'its group' : ''}${(info.mode & 0o022) === 0o022 ? ' and ' : ''}${info.mode & 0o002 ? 'others' : ''} (mode ${(info.mode & 0o777).toString(8).padStart(4, '0')}); run chmod go-w on it, and keep it out of POOL_DIR, which containers may mount`]);
}

/**
 * The per-agent tokens POOL_TOKENS_FILE names, undefined when it is unset. Read by the daemon only
 * (at start-up and on each reload, with pool.env), not by readConfig: doctor and socket-group
 * members read pool.env, and the tokens file is root's alone. Any problem is a ConfigError naming
 * the variable, so a bad file stops the start-up, and a reload keeps the running book.
 */
export async function readTokenBook(config: Pick<PoolConfig, 'tokensFile' | 'token'>): Promise<TokenBook | undefined> {
  const path = config.tokensFile;
  if (path === undefined) return undefined;
  const source = `POOL_TOKENS_FILE ${path}`;
  const text = await readTokensFile(path);
  if (text === undefined) throw new ConfigError([`${source}: no such file; make it with: openclaw-pool tokens add <agent>`]);
  const entries = parseTokensFile(text, source);
  // POOL_TOKEN is shared by every agent: as one agent's token it would let them all pass for that one.
  const shared = entries.find((entry) => entry.token === config.token);
  if (shared !== undefined) throw new ConfigError([`${source}:${shared.line}: the token is POOL_TOKEN's, which every agent holds; give it a token of its own (openclaw-pool tokens add --replace <agent>)`]);
  return createTokenBook(entries);
}

/** The configuration from pool.env's values and the environment, with relative paths resolved against `cwd`. */
function configFrom(values: Record<string, string>, options: Pick<ReadConfigOptions, 'env' | 'cwd'>): PoolConfig {
  const config = loadConfig({ file: values, env: options.env, cwd: options.cwd });
  return {
    ...config,
    composeDir: resolve(options.cwd, config.composeDir),
    poolDir: resolve(options.cwd, config.poolDir),
    socketPath: resolve(options.cwd, config.socketPath),
    processRoster: resolve(options.cwd, config.processRoster),
    ...(config.logFile !== undefined && { logFile: resolve(options.cwd, config.logFile) }),
    ...(config.tokensFile !== undefined && { tokensFile: resolve(options.cwd, config.tokensFile) }),
  };
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

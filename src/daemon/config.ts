import { access, readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { ConfigError, type PoolConfig, loadConfig, parseEnvFile } from '../contract/index.js';

export const DEFAULT_ENV_FILES = ['./pool.env', '/etc/openclaw-pool/pool.env'];

export interface LoadedConfig {
  readonly config: PoolConfig;
  /** The pool.env that was read, if any. */
  readonly file: string | undefined;
}

/**
 * SPEC §6: `--config` or POOL_ENV names the file (it must exist); otherwise ./pool.env, then
 * /etc/openclaw-pool/pool.env; with none, the environment and the defaults apply. Relative paths
 * in the result are resolved against the working directory.
 */
export async function readConfig(options: { envFile?: string; env: NodeJS.ProcessEnv; cwd: string }): Promise<LoadedConfig> {
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
  const values = file === undefined ? {} : parseEnvFile(await readFile(file, 'utf8'), file);
  const config = loadConfig({ file: values, env: options.env, cwd: options.cwd });
  return {
    file,
    config: {
      ...config,
      composeDir: resolve(options.cwd, config.composeDir),
      poolDir: resolve(options.cwd, config.poolDir),
      socketPath: resolve(options.cwd, config.socketPath),
      processRoster: resolve(options.cwd, config.processRoster),
      ...(config.logFile !== undefined && { logFile: resolve(options.cwd, config.logFile) }),
    },
  };
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

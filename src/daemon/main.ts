#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { ConfigError } from '../contract/index.js';
import { readConfig, readTokenBook, reloadEnvironment } from './config.js';
import { DaemonStartError, createDaemon } from './daemon.js';
import { createLogger, describeError } from './log.js';
import { createNotifier } from './notify.js';
import { VERSION } from './version.js';

/** sysexits' EX_CONFIG: systemd's RestartPreventExitStatus= keeps a bad pool.env from a restart loop. */
const EXIT_CONFIG = 78;
const EXIT_USAGE = 2;
/** A shutdown that has not finished by then (Docker hanging) exits anyway; agents keep running. */
const SHUTDOWN_GRACE_MS = 30_000;

const USAGE = `Usage: openclaw-pool [--config PATH]
       openclaw-pool migrate --from POOL_DIR [--dry-run]   take over the bash pool manager (migrate --help)
       openclaw-pool tokens add|list|revoke [AGENT]        per-agent bridge tokens (tokens --help)

Keeps a bounded pool of agent containers (docker compose services) running, with LRU eviction.

Options:
  -c, --config PATH  read pool.env from PATH (default: $POOL_ENV, ./pool.env, /etc/openclaw-pool/pool.env)
  --version          print the version
  -h, --help         print this help

Signals: SIGTERM/SIGINT stop the daemon and leave agents running; SIGHUP re-reads the configuration.
Every variable is documented in pool.env.example.`;

async function main(): Promise<number> {
  // Loaded only when asked for, so the daemon's start-up does not pay for it.
  if (process.argv[2] === 'migrate') return (await import('../migrate/cli.js')).runMigrate(process.argv.slice(3));
  if (process.argv[2] === 'tokens') return (await import('../tokens/cli.js')).runTokens(process.argv.slice(3));
  let args;
  try {
    args = parseArgs({
      // Not --env-file: Node 20 takes that flag for itself even after the script name and loads the file with its own parser.
      options: { config: { type: 'string', short: 'c' }, version: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
    }).values;
  } catch (error) {
    process.stderr.write(`openclaw-pool: ${describeError(error)}\n\n${USAGE}\n`);
    return EXIT_USAGE;
  }
  if (args.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (args.version) {
    process.stdout.write(`openclaw-pool ${VERSION}\n`);
    return 0;
  }

  const load = async (env = process.env) => {
    const loaded = await readConfig({ ...(args.config !== undefined && { envFile: args.config }), env, cwd: process.cwd() });
    return { ...loaded, tokens: await readTokenBook(loaded.config) };
  };
  let loaded;
  try {
    loaded = await load();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`openclaw-pool: ${error.message}\n`);
    return EXIT_CONFIG;
  }

  const started = loaded;
  const log = createLogger({ logFile: loaded.config.logFile, clock: Date.now });
  log.info(`openclaw-pool ${VERSION} starting (config: ${loaded.file ?? 'environment and defaults'})`);
  for (const warning of loaded.warnings) log.error(`warning: ${warning}`);
  let requested: ((reason: string) => void) | undefined;
  const notifier = createNotifier({ env: process.env, onError: (what, error) => log.error(`error ${what}: ${describeError(error)}`) });
  const daemon = createDaemon({ config: loaded.config, tokens: loaded.tokens, log, notifier, onShutdownRequest: (reason) => requested?.(reason) });

  let stopping: Promise<void> | undefined;
  const shutdown = (reason: string): Promise<void> => {
    stopping ??= daemon.stop(reason);
    setTimeout(() => {
      log.error(`shutdown did not finish within ${SHUTDOWN_GRACE_MS / 1000} s; exiting`);
      process.exit(1);
    }, SHUTDOWN_GRACE_MS).unref();
    return stopping;
  };

  try {
    await daemon.start();
  } catch (error) {
    log.error(`cannot start: ${describeError(error)}`);
    await shutdown('start-up failed');
    if (!(error instanceof DaemonStartError)) return 70;
    return error.configProblem ? EXIT_CONFIG : 1;
  }

  return new Promise<number>((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      shutdown(signal).then(
        () => resolve(0),
        (error: unknown) => {
          log.error(`shutdown failed: ${describeError(error)}`);
          resolve(1);
        },
      );
    };
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
    requested = (reason) => onSignal(reason as NodeJS.Signals);
    process.on('SIGHUP', () => {
      load(reloadEnvironment(process.env, started))
        .then(({ config, tokens, warnings }) => {
          for (const warning of warnings) log.error(`warning: ${warning}`);
          return daemon.reload(config, tokens);
        })
        .catch((error: unknown) => log.error(`reload failed, keeping the running configuration: ${describeError(error)}`));
    });
  });
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`openclaw-pool: unexpected error: ${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(70);
  },
);

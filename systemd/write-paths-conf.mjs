#!/usr/bin/env node
// Writes the drop-in openclaw-pool.service.d/paths.conf from a pool.env:
//
//   node /opt/openclaw-pool/systemd/write-paths-conf.mjs /etc/openclaw-pool/pool.env DROPIN
//
// The unit has ProtectHome=read-only and ProtectSystem=full, so the daemon could not write to a
// POOL_DIR under /home (where the bash manager's users keep it). The drop-in makes exactly the
// directories it writes to writable: POOL_DIR, and LOG_FILE's directory when set. The path comes from
// the daemon's own config reader, so defaults (POOL_DIR = $COMPOSE_DIR/pool) and quoting are read as
// the daemon reads them. Whatever changes POOL_DIR (install.sh, `openclaw-pool migrate`) runs this and
// then `systemctl daemon-reload`. Prints the effective COMPOSE_DIR and POOL_DIR, one per line.
// Exits 78 with the daemon's message when pool.env is invalid (nothing is written then).
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { ConfigError } from '../dist/src/contract/index.js';
import { readConfig } from '../dist/src/daemon/config.js';

const [envFile, dropin] = process.argv.slice(2);
if (envFile === undefined || dropin === undefined) {
  process.stderr.write('usage: write-paths-conf.mjs POOL_ENV DROPIN\n');
  process.exit(2);
}

let config;
try {
  // As systemd runs the daemon: the unit sets no pool variable but POOL_ENV, and the working directory is /.
  ({ config } = await readConfig({ envFile, env: {}, cwd: '/' }));
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  process.stderr.write(`${envFile}: ${error.message}\n`);
  process.exit(78);
}

/** One ReadWritePaths= entry; `-`: a directory removed later does not keep the unit from starting. */
function writable(path) {
  const entry = `-${path.replaceAll('%', '%%')}`;
  return /[\s"'\\]/.test(entry) ? `"${entry.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"` : entry;
}
const paths = [config.poolDir, ...(config.logFile === undefined ? [] : [dirname(config.logFile)])];
const text = [
  `# Written by install.sh from ${envFile}; rerun it (or this script) after changing POOL_DIR or LOG_FILE.`,
  '# The unit protects /home (read-only) and /usr, /etc (ProtectSystem=full); the daemon writes only here.',
  '[Service]',
  ...paths.map((path) => `ReadWritePaths=${writable(path)}`),
  '',
].join('\n');
await mkdir(dirname(dropin), { recursive: true });
await writeFile(`${dropin}.tmp`, text, { mode: 0o644 });
await rename(`${dropin}.tmp`, dropin);
process.stdout.write(`${config.composeDir}\n${config.poolDir}\n`);

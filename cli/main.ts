#!/usr/bin/env node
import { Builtins, Cli } from 'clipanion';
import { EXIT } from './base.js';
import { DoctorCommand } from './commands/doctor.js';
import { EventsCommand } from './commands/events.js';
import { HealthCommand } from './commands/health.js';
import { MetricsCommand } from './commands/metrics.js';
import { ShutdownCommand } from './commands/shutdown.js';
import { StartCommand } from './commands/start.js';
import { StatusCommand } from './commands/status.js';
import { StopCommand } from './commands/stop.js';
import { WatchCommand } from './commands/watch.js';
import { WhoCommand } from './commands/who.js';

/** package.json's version, inlined by scripts/bundle.mjs: poolctl reads no file to print it. */
declare const POOLCTL_VERSION: string;

const cli = new Cli({
  binaryLabel: 'openclaw-pool control',
  binaryName: 'poolctl',
  binaryVersion: POOLCTL_VERSION,
  // clipanion colours even when piped otherwise.
  enableColors: Boolean(process.stdout.isTTY) && !process.env.NO_COLOR,
});
for (const command of [StartCommand, StopCommand, StatusCommand, WhoCommand, HealthCommand, WatchCommand, EventsCommand, ShutdownCommand, DoctorCommand, MetricsCommand]) cli.register(command);
cli.register(Builtins.HelpCommand);
cli.register(Builtins.VersionCommand);

let command;
try {
  command = cli.process(process.argv.slice(2));
} catch (error) {
  // SPEC §4: a usage error exits 2 (clipanion's own default is 1, the code for refusals).
  process.stderr.write(cli.error(error));
  process.exitCode = EXIT.usage;
}
if (command !== undefined) process.exitCode = await cli.run(command);

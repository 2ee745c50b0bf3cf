import { COMMAND_TIMEOUT_MS, QUERY_TIMEOUT_MS, dockerCommand } from './docker.js';
import { run } from './exec.js';

export interface ComposeCommandOptions {
  readonly dockerBin: string;
  readonly composeDir: string;
  /** `-p`; undefined = compose's own default, learnt from the first load of the project. */
  readonly project: string | undefined;
  /** Upper bound for one compose command that is not a stop (ms). */
  readonly commandTimeoutMs?: number;
}

/** The argv of every command the compose driver runs, in one project directory. Each throws `DriverError`. */
export interface ComposeCommands {
  readonly dockerBin: string;
  readonly commandTimeoutMs: number;
  /** For read-only queries: never longer than a command, and seconds rather than the minutes a pull may take. */
  readonly queryTimeoutMs: number;
  /** `docker compose <args>` in the project, every profile active. */
  compose(args: string[], timeoutMs?: number, signal?: AbortSignal): Promise<string>;
  /** `docker <args>`. */
  docker(args: string[], timeoutMs: number, signal?: AbortSignal): Promise<string>;
  /** The project's name; throws before it is known (`-p` unset and the project never loaded). */
  project(): string;
  /** Compose's own name for the project, as a load reported it; `-p`, when given, stays. */
  learnProject(name: string): void;
  /** One `docker ps` of the project's service containers (`all`: stopped ones too), as tab-separated `fields` after the service. */
  ps(all: boolean, fields: string[]): Promise<[string, ...string[]][]>;
}

const SERVICE_LABEL = 'com.docker.compose.service';
const ONEOFF_LABEL = 'com.docker.compose.oneoff';

/** Docker's `{{...}}` template for the compose service of an event's container. */
export const EVENT_SERVICE_FORMAT = `{{index .Actor.Attributes "${SERVICE_LABEL}"}}`;

/** `compose up` of one agent, with `flags` added to it. */
export function upArgs(agent: string, ...flags: string[]): string[] {
  // --no-deps: the daemon never starts anything but the agent (infrastructure is always on).
  // Names go after `--`: whatever a name looks like, compose never reads it as an option.
  return ['up', '--detach', '--no-deps', ...flags, '--', agent];
}

export function createComposeCommands(options: ComposeCommandOptions): ComposeCommands {
  const commandTimeoutMs = options.commandTimeoutMs ?? COMMAND_TIMEOUT_MS;
  const queryTimeoutMs = Math.min(commandTimeoutMs, QUERY_TIMEOUT_MS);
  const docker = dockerCommand(options.dockerBin);
  let projectName = options.project;
  const project = () => {
    if (projectName === undefined) throw new Error('compose driver used before init()');
    return projectName;
  };
  return {
    dockerBin: options.dockerBin,
    commandTimeoutMs,
    queryTimeoutMs,
    compose(args, timeoutMs = commandTimeoutMs, signal) {
      // Every profile is active: OpenClaw puts most agents behind `profiles:`, and compose leaves the
      // services of inactive profiles out of `config` and refuses a project whose active services
      // depend on them. COMPOSE_PROFILES in the project's .env would otherwise decide who is an agent.
      // Starting all of them is never the effect: the daemon names one service, with --no-deps.
      const argv: [string, ...string[]] = [options.dockerBin, 'compose', '--project-directory', options.composeDir, '--profile', '*'];
      if (projectName !== undefined) argv.push('-p', projectName);
      return run([...argv, ...args], { cwd: options.composeDir, timeoutMs, ...(signal !== undefined && { signal }) });
    },
    docker,
    project,
    learnProject(name) {
      projectName ??= name;
    },
    async ps(all, fields) {
      const stdout = await docker([
        'ps', ...(all ? ['--all'] : []), '--no-trunc',
        '--filter', `label=com.docker.compose.project=${project()}`,
        '--format', [`{{.Label "${SERVICE_LABEL}"}}`, `{{.Label "${ONEOFF_LABEL}"}}`, ...fields].join('\t'),
      ], queryTimeoutMs);
      const rows: [string, ...string[]][] = [];
      for (const line of stdout.split('\n')) {
        const [service, oneoff, ...rest] = line.split('\t');
        // `docker compose run` containers are one-off jobs, not the agent.
        if (service && oneoff !== 'True') rows.push([service, ...rest]);
      }
      return rows;
    },
  };
}

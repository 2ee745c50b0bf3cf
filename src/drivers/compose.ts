import type { AgentDriver } from '../core/driver.js';
import { DriverError } from '../core/errors.js';
import type { ObservedAgent } from '../core/reconcile.js';
import { COMMAND_TIMEOUT_MS, QUERY_TIMEOUT_MS, STOP_SLACK_MS, besideProbe, dockerCommand, dockerEvents } from './docker.js';
import { run } from './exec.js';

export interface ComposeDriverOptions {
  readonly dockerBin: string;
  readonly composeDir: string;
  /** `-p`; undefined = compose's own default, resolved once by `init`. */
  readonly project: string | undefined;
  /** Upper bound for one compose command that is not a stop (ms). */
  readonly commandTimeoutMs?: number;
}

export interface ComposeProjectInfo {
  readonly name: string;
  readonly services: string[];
  /** Networks the project's services attach to, by their Docker names (for the bridge's default bind). */
  readonly networks: string[];
}

const SERVICE_LABEL = 'com.docker.compose.service';
const ONEOFF_LABEL = 'com.docker.compose.oneoff';

/** Drives `docker compose` in one project directory. Agents are services, found by their compose labels. */
export function createComposeDriver(options: ComposeDriverOptions) {
  const commandTimeoutMs = options.commandTimeoutMs ?? COMMAND_TIMEOUT_MS;
  let projectName = options.project;

  const compose = (args: string[], timeoutMs = commandTimeoutMs, signal?: AbortSignal) => {
    const argv: [string, ...string[]] = [options.dockerBin, 'compose', '--project-directory', options.composeDir];
    if (projectName !== undefined) argv.push('-p', projectName);
    return run([...argv, ...args], { cwd: options.composeDir, timeoutMs, ...(signal !== undefined && { signal }) });
  };
  const docker = dockerCommand(options.dockerBin);
  const requireProject = () => {
    if (projectName === undefined) throw new Error('compose driver used before init()');
    return projectName;
  };

  const queryTimeoutMs = Math.min(commandTimeoutMs, QUERY_TIMEOUT_MS);

  const list = async (): Promise<ObservedAgent[]> => {
    const stdout = await docker([
      'ps', '--all', '--no-trunc',
      '--filter', `label=com.docker.compose.project=${requireProject()}`,
      '--format', `{{.Label "${SERVICE_LABEL}"}}\t{{.Label "${ONEOFF_LABEL}"}}\t{{.State}}\t{{.CreatedAt}}`,
    ], queryTimeoutMs);
    const observed: ObservedAgent[] = [];
    for (const line of stdout.split('\n')) {
      const [agent, oneoff, state, created] = line.split('\t');
      // `docker compose run` containers are one-off jobs, not the agent.
      if (!agent || oneoff === 'True') continue;
      const startedAt = parseDockerTime(created ?? '');
      observed.push({ agent, running: state === 'running', ...(startedAt !== undefined && { startedAt }) });
    }
    return observed;
  };

  const isRunning = async (agent: string) => (await list()).some((o) => o.agent === agent && o.running);

  /** Resolves the project's name, services and networks from its compose file (`docker compose config`). */
  const init = async (): Promise<ComposeProjectInfo> => {
    const config = JSON.parse(await compose(['config', '--format', 'json'])) as {
      name: string;
      services?: Record<string, { networks?: Record<string, unknown> | null; network_mode?: string }>;
      networks?: Record<string, { name?: string; external?: boolean }>;
    };
    projectName ??= config.name;
    const services = Object.keys(config.services ?? {});
    const used = new Set<string>();
    for (const service of Object.values(config.services ?? {})) {
      if (service.network_mode !== undefined) continue;
      for (const key of Object.keys(service.networks ?? { default: null })) used.add(key);
    }
    const networks = [...used].map((key) => config.networks?.[key]?.name ?? `${config.name}_${key}`);
    return { name: config.name, services, networks };
  };

  const driver = {
    init,

    async services() {
      return (await init()).services;
    },

    async start(agent: string) {
      // --no-deps: the daemon never starts anything but the agent (infrastructure is always on).
      await besideProbe(options.dockerBin, (signal) => compose(['up', '--detach', '--no-deps', agent], commandTimeoutMs, signal));
    },

    async stop(agent: string, timeoutMs: number) {
      const seconds = Math.ceil(timeoutMs / 1000);
      let stopError: unknown;
      try {
        await compose(['stop', '--timeout', String(seconds), agent], timeoutMs + STOP_SLACK_MS);
      } catch (error) {
        stopError = error;
        // A kill is immediate on a healthy engine; do not wait the 120 s meant for starts.
        await compose(['kill', agent], STOP_SLACK_MS).catch((killError: unknown) => {
          stopError = killError;
        });
      }
      // Counted until Docker confirms it is down, whatever the commands said.
      if (await isRunning(agent)) {
        if (stopError instanceof DriverError) throw stopError;
        throw new DriverError(`${agent} is still running after stop and kill`, ['docker', 'compose', 'stop', agent], undefined, '');
      }
    },

    list,

    async *events(signal: AbortSignal) {
      const filters = ['type=container', `label=com.docker.compose.project=${requireProject()}`];
      for await (const [agent, action] of dockerEvents(options.dockerBin, filters, `{{index .Actor.Attributes "${SERVICE_LABEL}"}}\t{{.Action}}`, signal)) {
        if (agent && action) yield { agent, action };
      }
    },

    /** Gateway addresses of the given Docker networks that exist now (one `docker network inspect`). */
    async networkGateways(networks: readonly string[]): Promise<string[]> {
      if (networks.length === 0) return [];
      const existing = (await docker(['network', 'ls', '--format', '{{.Name}}'], queryTimeoutMs)).split('\n').filter((n) => networks.includes(n));
      if (existing.length === 0) return [];
      const out = await docker(['network', 'inspect', '--format', '{{range .IPAM.Config}}{{.Gateway}} {{end}}', ...existing], queryTimeoutMs);
      return [...new Set(out.split(/\s+/).filter(Boolean))];
    },
  } satisfies AgentDriver & Record<string, unknown>;
  return driver;
}

export type ComposeDriver = ReturnType<typeof createComposeDriver>;

/** `docker ps` prints CreatedAt as `2026-11-25 10:50:19 +0000 UTC`. */
function parseDockerTime(text: string): number | undefined {
  const match = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}) ([+-]\d{2})(\d{2})/.exec(text);
  if (!match) return undefined;
  const ms = Date.parse(`${match[1]}T${match[2]}${match[3]}:${match[4]}`);
  return Number.isNaN(ms) ? undefined : ms;
}

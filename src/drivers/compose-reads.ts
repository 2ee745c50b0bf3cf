import { DriverError } from '../contract/errors.js';
import type { AgentUsage } from '../core/driver.js';
import type { ComposeCommands } from './compose-commands.js';
import { EVENT_SERVICE_FORMAT } from './compose-commands.js';
import { dockerEvents } from './docker.js';
import type { EngineApi } from './engine-api.js';

const PROJECT_LABEL = 'com.docker.compose.project';
const SERVICE_LABEL = 'com.docker.compose.service';
const ONEOFF_LABEL = 'com.docker.compose.oneoff';

/** One service container of the project (`docker compose run` one-offs are never listed). */
export interface ProjectContainer {
  readonly service: string;
  readonly id: string;
  /** Docker's State: running, paused, exited, created, ... */
  readonly state: string;
  /** When it was created (ms), to the second. */
  readonly createdAt: number | undefined;
  /** Its addresses on its networks, through the Engine API (the CLI's listing has none): callers are known by them. */
  readonly addresses?: readonly string[];
}

/** A service's container, as a listing named it. */
export type ContainerRef = Pick<ProjectContainer, 'service' | 'id'>;

/** A container's health as Docker keeps it (State.Health); null when it has no healthcheck. */
export type ContainerHealth = { readonly Status?: string; readonly Log?: readonly { readonly Output?: string }[] } | null;

/** A network as the engine describes it: its name, and its IPAM config's gateways and subnets. */
export interface EngineNetwork {
  readonly name: string;
  readonly gateways: string[];
  readonly subnets: string[];
}

/** What a running container uses now (the port's AgentUsage): its memory as `docker stats` counts it, and, through the Engine API, its cumulative CPU time and network traffic. */
export type ContainerUsage = AgentUsage;

/** What the compose driver reads of the engine, through the Engine API or, where it cannot be used, the docker CLI. Each throws `DriverError`. */
export interface ComposeReads {
  /** The project's service containers (`all`: stopped ones too), in one call whatever the pool size. */
  containers(all: boolean): Promise<ProjectContainer[]>;
  /** The project's container events while the stream is up; ends when it drops or `signal` aborts. */
  events(signal: AbortSignal): AsyncIterable<{ readonly agent: string; readonly action: string }>;
  /** The health of the agent's running container; undefined when none runs. */
  health(agent: string): Promise<ContainerHealth | undefined>;
  /** The networks of `names` that exist, and the default bridge. */
  networks(names: readonly string[]): Promise<EngineNetwork[]>;
  /** What each of `listed` (the up containers of a listing just taken) uses now, by service. */
  usage(listed: readonly ContainerRef[]): Promise<Map<string, ContainerUsage>>;
}

/** Docker's name for its default bridge, whose gateway `host-gateway` means unless dockerd is told otherwise. */
export const DEFAULT_BRIDGE = 'bridge';

/** The parts of `GET /containers/{id}/stats` read here. */
interface ApiStats {
  memory_stats?: { usage?: number; stats?: Record<string, number> };
  cpu_stats?: { cpu_usage?: { total_usage?: number } };
  networks?: Record<string, { rx_bytes?: number; tx_bytes?: number }>;
}

/**
 * Memory as `docker stats` shows it: usage less the inactive file cache, `total_inactive_file`
 * under cgroup v1 and `inactive_file` under v2; a container just gone may have no figures.
 */
export function usageFromStats(stats: ApiStats): ContainerUsage | undefined {
  const { usage, stats: detail = {} } = stats.memory_stats ?? {};
  if (usage === undefined) return undefined;
  const inactive = detail.total_inactive_file ?? detail.inactive_file ?? 0;
  const cpuNanos = stats.cpu_stats?.cpu_usage?.total_usage;
  const interfaces = Object.values(stats.networks ?? {});
  return {
    memoryBytes: inactive < usage ? usage - inactive : usage,
    ...(cpuNanos !== undefined && { cpuNanos }),
    ...(interfaces.length > 0 && { networkBytes: interfaces.reduce((sum, n) => sum + (n.rx_bytes ?? 0) + (n.tx_bytes ?? 0), 0) }),
  };
}

interface ApiContainer {
  Id: string;
  State: string;
  Created: number;
  Labels: Record<string, string> | null;
  NetworkSettings?: { Networks?: Record<string, { IPAddress?: string; GlobalIPv6Address?: string }> | null };
}

/** A container's addresses on its networks (none on `network_mode: host`, whose network has no addresses of its own). */
function addressesOf(container: ApiContainer): string[] {
  return Object.values(container.NetworkSettings?.Networks ?? {}).flatMap((n) => [n.IPAddress, n.GlobalIPv6Address].filter((a): a is string => !!a));
}

/** Reads over the Engine API: no process per read, and no resident `docker events` child. */
export function apiReads(api: EngineApi, commands: ComposeCommands): ComposeReads {
  const projectFilter = () => ({ label: [`${PROJECT_LABEL}=${commands.project()}`] });
  const containers = async (all: boolean, filters: Record<string, string[]> = projectFilter()): Promise<ProjectContainer[]> => {
    const listed = await api.get<ApiContainer[]>('/containers/json', { all: all ? 1 : 0, filters });
    return listed.flatMap((c) => {
      const service = c.Labels?.[SERVICE_LABEL];
      if (!service || c.Labels?.[ONEOFF_LABEL] === 'True') return [];
      return [{ service, id: c.Id, state: c.State, createdAt: c.Created * 1000, addresses: addressesOf(c) }];
    });
  };
  return {
    containers: (all) => containers(all),
    async *events(signal) {
      const filters = { type: ['container'], ...projectFilter() };
      for await (const event of api.stream<{ Action?: string; Actor?: { Attributes?: Record<string, string> } }>('/events', { filters }, signal)) {
        const agent = event.Actor?.Attributes?.[SERVICE_LABEL];
        if (agent && event.Action) yield { agent, action: event.Action };
      }
    },
    async health(agent) {
      const [running] = await containers(false, { label: [...projectFilter().label, `${SERVICE_LABEL}=${agent}`] });
      if (running === undefined) return undefined;
      return (await api.get<{ State?: { Health?: ContainerHealth } }>(`/containers/${running.id}/json`)).State?.Health ?? null;
    },
    async networks(names) {
      const listed = await api.get<{ Name: string; IPAM?: { Config?: { Gateway?: string; Subnet?: string }[] | null } }[]>('/networks');
      return listed
        .filter((n) => n.Name === DEFAULT_BRIDGE || names.includes(n.Name))
        .map((n) => ({
          name: n.Name,
          gateways: (n.IPAM?.Config ?? []).flatMap((c) => (c.Gateway ? [c.Gateway] : [])),
          subnets: (n.IPAM?.Config ?? []).flatMap((c) => (c.Subnet ? [c.Subnet] : [])),
        }));
    },
    async usage(listed) {
      // one-shot: the engine's current figures at once, not a second sample a second later (API 1.41).
      const sampled = await Promise.all(
        listed.map(async ({ service, id }) => {
          const stats = await api.get<ApiStats>(`/containers/${id}/stats`, { stream: 0, 'one-shot': 1 }).catch((error: unknown) => {
            // Stopped between the listing and its stats: it uses nothing now.
            if (error instanceof DriverError && error.exitCode === 404) return {};
            throw error;
          });
          return [service, usageFromStats(stats)] as const;
        }),
      );
      return new Map(sampled.flatMap(([service, usage]) => (usage === undefined ? [] : [[service, usage] as const])));
    },
  };
}

const NETWORK_FORMAT = '{{.Name}}\t{{range .IPAM.Config}}{{.Gateway}} {{end}}\t{{range .IPAM.Config}}{{.Subnet}} {{end}}';

/** Reads through the docker CLI, for engines the API client does not reach (ssh://, TLS) and for a DOCKER_BIN wrapper. */
export function cliReads(commands: ComposeCommands): ComposeReads {
  const { queryTimeoutMs } = commands;
  return {
    async containers(all) {
      return (await commands.ps(all, ['{{.ID}}', '{{.State}}', '{{.CreatedAt}}'])).map(([service, id = '', state = '', created = '']) => ({ service, id, state, createdAt: parseDockerTime(created) }));
    },
    async *events(signal) {
      const filters = ['type=container', `label=${PROJECT_LABEL}=${commands.project()}`];
      for await (const [agent, action] of dockerEvents(commands.dockerBin, filters, `${EVENT_SERVICE_FORMAT}\t{{.Action}}`, signal)) {
        if (agent && action) yield { agent, action };
      }
    },
    async health(agent) {
      const id = (await commands.compose(['ps', '--quiet', '--', agent], queryTimeoutMs)).split('\n').find(Boolean);
      if (id === undefined) return undefined;
      return JSON.parse(await commands.docker(['inspect', '--format', '{{json .State.Health}}', id], queryTimeoutMs)) as ContainerHealth;
    },
    async networks(names) {
      const existing = (await commands.docker(['network', 'ls', '--format', '{{.Name}}'], queryTimeoutMs)).split('\n').filter((n) => names.includes(n));
      return parseNetworkLines(await commands.docker(['network', 'inspect', '--format', NETWORK_FORMAT, DEFAULT_BRIDGE, ...existing], queryTimeoutMs));
    },
    /** `docker stats`, which waits for a second sample: memory only, in a second or two. */
    async usage(listed) {
      const services = new Map(listed.map(({ service, id }) => [id, service]));
      const usage = new Map<string, ContainerUsage>();
      if (services.size === 0) return usage;
      const stdout = await commands.docker(['stats', '--no-stream', '--format', '{{.Container}}\t{{.MemUsage}}', ...services.keys()], queryTimeoutMs);
      for (const line of stdout.split('\n')) {
        const [id, memory] = line.split('\t');
        const service = services.get(id ?? '');
        // "12.3MiB / 7.7GiB": what the container uses, then its limit.
        const bytes = parseDockerSize(memory?.split('/')[0] ?? '');
        if (service !== undefined && bytes !== undefined) usage.set(service, { memoryBytes: bytes });
      }
      return usage;
    },
  };
}

/** `docker network inspect` lines of NETWORK_FORMAT (name, gateways, subnets). */
export function parseNetworkLines(out: string): EngineNetwork[] {
  return out.split('\n').flatMap((line) => {
    const [name, gateways = '', subnets = ''] = line.split('\t');
    if (!name) return [];
    return [{ name, gateways: gateways.split(' ').filter(Boolean), subnets: subnets.split(' ').filter(Boolean) }];
  });
}

const SIZE_UNITS = new Map(Object.entries({ B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3, TiB: 1024 ** 4, kB: 1e3, KB: 1e3, MB: 1e6, GB: 1e9, TB: 1e12 }));

/** Docker's human sizes (`352KiB`, `1.045GiB`, `12.4 MB`, `0B`) in bytes; undefined for anything else. */
export function parseDockerSize(text: string): number | undefined {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]+)\s*$/.exec(text);
  if (match === null) return undefined;
  const unit = SIZE_UNITS.get(match[2] ?? '');
  return unit === undefined ? undefined : Math.round(Number(match[1]) * unit);
}

/** `docker ps` prints CreatedAt as `2026-11-25 10:50:19 +0000 UTC`. */
function parseDockerTime(text: string): number | undefined {
  const match = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}) ([+-]\d{2})(\d{2})/.exec(text);
  if (!match) return undefined;
  const ms = Date.parse(`${match[1]}T${match[2]}${match[3]}:${match[4]}`);
  return Number.isNaN(ms) ? undefined : ms;
}

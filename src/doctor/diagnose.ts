// poolctl doctor's probes, outside the SDK: they read pool.env with the daemon's own reader and open
// its drivers, so that each verdict is about what the daemon would do, and a host script importing
// openclaw-pool/sdk loads none of that. Like `openclaw-pool migrate` (src/migrate/), a host tool that
// needs no running daemon; poolctl imports it only when `doctor` runs.
import { constants } from 'node:fs';
import type { Stats } from 'node:fs';
import { access, lstat, readFile, stat } from 'node:fs/promises';
import { ConfigError, type DiagnosticsReply, type DoctorCheck, type DoctorReport, type PoolConfig, type StatusReply } from '../contract/index.js';
import {
  type DaemonFacts,
  type DirFacts,
  type PathFacts,
  type Probed,
  type SocketFacts,
  bridgeCheck,
  composeCheck,
  configChecks,
  daemonCheck,
  dockerCheck,
  doctorReport,
  infraCheck,
  memoryCheck,
  parseMemTotal,
  poolDirCheck,
  projectCheck,
  sizingCheck,
  skipped,
  socketCheck,
} from '../core/doctor.js';
import { UnreadableConfigError, readConfig } from '../daemon/config.js';
import { composeVersion } from '../drivers/compose.js';
import { engineVersion } from '../drivers/docker.js';
import { type OpenedDriver, describeBackend, openDriver } from '../drivers/index.js';
import { resolveGroup } from '../rpc/socket.js';
import { DEFAULT_SOCKET, createPoolClient } from '../../sdk/client.js';

/** Each Docker question the doctor asks; a healthy engine answers in well under a second. */
const DOCKER_TIMEOUT_MS = 15_000;
const INVALID_CONFIG = 'needs a valid pool.env';
const UNREADABLE_CONFIG = "run 'sudo poolctl doctor' to check pool.env";

export interface DiagnoseOptions {
  /** The pool.env to check (default: $POOL_ENV, ./pool.env, /etc/openclaw-pool/pool.env, as the daemon reads it). */
  readonly configPath?: string;
  /** The daemon's socket (default: POOL_SOCKET from pool.env or the environment, then /run/openclaw-pool/pool.sock). */
  readonly socketPath?: string;
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
}

const probe = <T>(work: Promise<T>): Promise<Probed<T>> =>
  work.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error: error instanceof Error ? error.message : String(error) }),
  );

/**
 * Checks what the pool needs on this host, as `poolctl doctor` prints it: pool.env, Docker and
 * Compose, the project's services and infrastructure, the daemon's socket and health, the
 * bridge's addresses, POOL_DIR, the daemon's memory figures under a budget, and a MEMORY_BUDGET
 * suggestion (MemTotal less MEMORY_RESERVE) with how many agents of their measured size it fits.
 * Each verdict is decided by the pure checks in src/core/doctor.ts; this only gathers the facts.
 */
export async function diagnose(options: DiagnoseOptions = {}): Promise<DoctorReport> {
  const env = options.env ?? process.env;
  let config: PoolConfig | undefined;
  let skipReason = INVALID_CONFIG;
  const checks: DoctorCheck[] = [];
  const cwd = options.cwd ?? process.cwd();
  try {
    const loaded = await readConfig({ ...(options.configPath !== undefined && { envFile: options.configPath }), env, cwd });
    config = loaded.config;
    checks.push(...configChecks({ file: loaded.file, problems: [], warnings: loaded.warnings }));
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    if (error instanceof UnreadableConfigError) {
      // A socket-group member may not read the 0640 file, but may ask the daemon what it runs with:
      // guessing from the defaults instead would check some other project.
      config = await runningConfig(options.socketPath ?? env.POOL_SOCKET ?? DEFAULT_SOCKET);
      skipReason = UNREADABLE_CONFIG;
      const rest = config === undefined ? `${UNREADABLE_CONFIG}: the checks that need it are skipped` : 'the checks below use the configuration the running daemon reports';
      checks.push(...configChecks({ file: error.file, problems: [], warnings: [`${error.problems[0]}; ${rest}`] }));
    } else {
      checks.push(...configChecks({ file: undefined, problems: error.problems, warnings: [] }));
    }
  }
  const socketPath = options.socketPath ?? config?.socketPath ?? env.POOL_SOCKET ?? DEFAULT_SOCKET;
  const [docker, daemon] = await Promise.all([inspectDocker(config, env.DOCKER_BIN, skipReason), askDaemon(socketPath)]);
  checks.push(...docker.checks);
  checks.push(socketCheck(socketPath, await socketFacts(socketPath), await socketGroup(config)));
  checks.push(daemonCheck(daemon.facts));
  const memory = memoryCheck(daemon.status);
  if (memory !== undefined) checks.push(memory);
  if (config === undefined) {
    checks.push(skipped('bridge', skipReason), skipped('pool dir', skipReason), skipped('sizing', skipReason));
    return doctorReport(checks);
  }
  checks.push(bridgeCheck(await bridgeFacts(config, daemon.bridge, docker.found)));
  checks.push(poolDirCheck(config.poolDir, await dirFacts(config.poolDir), { uid: process.getuid?.() ?? -1 }));
  if (config.driver === 'swarm') {
    // This host's memory says nothing of the other nodes'.
    checks.push(skipped('sizing', "POOL_DRIVER=swarm: MAX_AGENTS caps the whole swarm; each node's room is the services' deploy.resources.reservations"));
    return doctorReport(checks);
  }
  const sizing = sizingCheck({
    totalBytes: await hostMemory(),
    reserveBytes: config.memoryReserve,
    ...(peaksOf(daemon.status) ?? (await measureAgents(config, docker.found))),
    defaultBytes: config.agentMemoryDefault,
    budget: config.memoryBudget,
    maxAgents: config.maxAgents,
  });
  checks.push(sizing.check);
  return doctorReport(checks, sizing.figures);
}

interface DockerFindings {
  readonly checks: DoctorCheck[];
  /** The project, when it could be read (and the engine answers, for listings and stats). */
  readonly found?: { readonly opened: OpenedDriver; readonly engine: boolean };
}

async function inspectDocker(config: PoolConfig | undefined, envDockerBin: string | undefined, skipReason: string): Promise<DockerFindings> {
  if (config?.driver === 'process') {
    const why = 'POOL_DRIVER=process: Docker is not used';
    const opened = await probe(openDriver(config));
    return {
      checks: [
        skipped('docker', why),
        skipped('compose', why),
        projectCheck(mapProbe(opened, (o) => o.project), { infra: config.infraServices, pinned: config.pinnedAgents }, describeBackend(config)),
        skipped('infrastructure', why),
      ],
      ...(opened.ok && { found: { opened: opened.value, engine: false } }),
    };
  }
  const dockerBin = config?.dockerBin ?? envDockerBin ?? 'docker';
  // A swarm stack is deployed and driven without compose.
  const swarm = config?.driver === 'swarm';
  const [engine, compose] = await Promise.all([probe(engineVersion(dockerBin, DOCKER_TIMEOUT_MS)), swarm ? undefined : probe(composeVersion(dockerBin, DOCKER_TIMEOUT_MS))]);
  const checks = [dockerCheck(engine), compose === undefined ? skipped('compose', 'POOL_DRIVER=swarm: docker compose is not used') : composeCheck(compose)];
  if (config === undefined) return { checks: [...checks, skipped('project', skipReason), skipped('infrastructure', skipReason)] };
  if (compose?.ok === false) return { checks: [...checks, skipped('project', 'needs docker compose'), skipped('infrastructure', 'needs docker compose')] };
  const opened = await probe(openDriver(config));
  checks.push(projectCheck(mapProbe(opened, (o) => o.project), { infra: config.infraServices, pinned: config.pinnedAgents }, describeBackend(config)));
  if (!opened.ok) return { checks: [...checks, skipped('infrastructure', `needs ${describeBackend(config)}`)] };
  // `docker compose config` reads files only; which services run needs the engine.
  const listed = engine.ok ? await probe(opened.value.driver.list()) : undefined;
  const running = listed?.ok ? new Set(listed.value.filter((o) => o.running).map((o) => o.agent)) : undefined;
  checks.push(infraCheck(config.infraServices, opened.value.project.services, running));
  return { checks, found: { opened: opened.value, engine: engine.ok } };
}

function mapProbe<T, U>(probed: Probed<T>, map: (value: T) => U): Probed<U> {
  return probed.ok ? { ok: true, value: map(probed.value) } : probed;
}

/** The running daemon's configuration, or undefined when none answers on `socketPath`. */
async function runningConfig(socketPath: string): Promise<PoolConfig | undefined> {
  const client = createPoolClient({ socketPath });
  try {
    return (await client.config()) as unknown as PoolConfig;
  } catch {
    return undefined;
  } finally {
    client.close();
  }
}

async function askDaemon(socketPath: string): Promise<{ facts: DaemonFacts; bridge?: DiagnosticsReply['bridge']; status?: StatusReply }> {
  const client = createPoolClient({ socketPath });
  try {
    const [health, diagnostics, status] = await Promise.all([client.health(), client.diagnostics(), client.status()]);
    return { facts: { reachable: true, health }, bridge: diagnostics.bridge, status };
  } catch (error) {
    return { facts: { reachable: false, error: error instanceof Error ? error.message : String(error) } };
  } finally {
    client.close();
  }
}

async function socketFacts(path: string): Promise<SocketFacts> {
  const info = await look(() => lstat(path));
  return info.state === 'found' ? { state: 'found', isSocket: info.stats.isSocket(), mode: info.stats.mode, gid: info.stats.gid } : info;
}

async function look(read: () => Promise<Stats>): Promise<PathFacts<{ stats: Stats }>> {
  try {
    return { state: 'found', stats: await read() };
  } catch (error) {
    const { code, message } = error as NodeJS.ErrnoException;
    return code === 'ENOENT' ? { state: 'missing' } : { state: 'hidden', error: code === 'EACCES' ? 'permission denied' : message };
  }
}

async function socketGroup(config: PoolConfig | undefined) {
  const name = config?.socketGroup;
  if (name === undefined) return undefined;
  return { name, gid: await resolveGroup(name).catch(() => undefined) };
}

/** Where the bridge listens (the daemon says), or would listen (pool.env, and the networks that exist now). */
async function bridgeFacts(config: PoolConfig, listening: DiagnosticsReply['bridge'] | undefined, found: DockerFindings['found']) {
  const common = { defaultBind: config.bind === undefined, token: config.token !== undefined };
  if (listening !== undefined) return { source: 'daemon' as const, ...listening, ...common };
  const gateways = config.bind === undefined && found?.engine ? await found.opened.bridgeAddresses().catch(() => []) : [];
  return { source: 'config' as const, addresses: config.bind ?? ['127.0.0.1', ...gateways], port: config.port, ...common };
}

async function dirFacts(path: string): Promise<DirFacts> {
  const info = await look(() => stat(path));
  if (info.state !== 'found') return info;
  const writable = await access(path, constants.W_OK).then(
    () => true,
    () => false,
  );
  return { state: 'found', isDirectory: info.stats.isDirectory(), writable };
}

async function hostMemory(): Promise<number | undefined> {
  return parseMemTotal(await readFile('/proc/meminfo', 'utf8').catch(() => ''));
}

/** The peaks the running daemon measured (it keeps them only with a budget): an agent's size over its run, where `docker stats` sees one moment. */
function peaksOf(status: StatusReply | undefined): { samples: number[]; unmeasured: string } | undefined {
  const peaks = (status?.running ?? []).flatMap((a) => (a.memory_peak_bytes === undefined ? [] : [a.memory_peak_bytes]));
  return peaks.length === 0 ? undefined : { samples: peaks, unmeasured: '' };
}

/** Memory of the running agents now (infrastructure excluded), or why there is none to go by. */
async function measureAgents(config: PoolConfig, found: DockerFindings['found']): Promise<{ samples: number[]; unmeasured: string }> {
  if (config.driver === 'process') return { samples: [], unmeasured: 'POOL_DRIVER=process: agents are not measured' };
  if (found?.opened.memoryUsage === undefined) return { samples: [], unmeasured: 'the compose project could not be read' };
  if (!found.engine) return { samples: [], unmeasured: 'Docker does not answer' };
  const usage = await probe(found.opened.memoryUsage());
  if (!usage.ok) return { samples: [], unmeasured: `docker stats failed: ${usage.error}` };
  const samples = [...usage.value].filter(([service]) => !config.infraServices.includes(service)).map(([, bytes]) => bytes);
  return { samples, unmeasured: 'no agent running to measure' };
}

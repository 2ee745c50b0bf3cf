import { type DoctorCheck, type DoctorReport, type DoctorVerdict, type HealthReply, type SizingFigures, type StatusReply, formatBytes } from '../contract/index.js';

export { formatBytes };

// The doctor's verdicts: each check is a function of facts gathered elsewhere (poolctl doctor's
// probes), so every pass, warn and fail is decided here and tested as a table.

const MiB = 1024 ** 2;
/** How many names a line lists before it says how many more there are. */
const LIST_MAX = 8;

/** What a probe found, or what stopped it. */
export type Probed<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: string };

const check = (name: string, verdict: DoctorVerdict, detail: string): DoctorCheck => ({ check: name, verdict, detail });

/** A check that does not apply here, saying why (it never fails the run). */
export const skipped = (name: string, why: string): DoctorCheck => check(name, 'skip', why);

/** `ceo, cto, cfo` or `a, b, …, h and 4 more`. */
function names(list: readonly string[]): string {
  if (list.length <= LIST_MAX) return list.join(', ');
  return `${list.slice(0, LIST_MAX).join(', ')} and ${list.length - LIST_MAX} more`;
}

/** `/proc/meminfo`'s MemTotal, in bytes. */
export function parseMemTotal(meminfo: string): number | undefined {
  return meminfoBytes(meminfo, 'MemTotal');
}

/** `/proc/meminfo`'s MemAvailable (what can be had without swapping), in bytes. */
export function parseMemAvailable(meminfo: string): number | undefined {
  return meminfoBytes(meminfo, 'MemAvailable');
}

function meminfoBytes(meminfo: string, field: string): number | undefined {
  const match = new RegExp(`^${field}:\\s+(\\d+)\\s*kB\\s*$`, 'm').exec(meminfo);
  return match === null ? undefined : Number(match[1]) * 1024;
}

/** The MEMORY_BUDGET for a host: its MemTotal less MEMORY_RESERVE (what `auto` computes), never below 0. */
export function suggestMemoryBudget(totalBytes: number, reserveBytes: number): number {
  return Math.max(0, totalBytes - reserveBytes);
}

/** One line per problem, each naming its variable (as ConfigError words them). */
export function configChecks(read: { readonly file: string | undefined; readonly problems: readonly string[]; readonly warnings: readonly string[] }): DoctorCheck[] {
  if (read.problems.length > 0) return read.problems.map((problem) => check('pool.env', 'fail', problem));
  if (read.warnings.length > 0) return read.warnings.map((warning) => check('pool.env', 'warn', warning));
  return [check('pool.env', 'pass', read.file ?? 'no pool.env found: the environment and the defaults apply')];
}

export function dockerCheck(engine: Probed<string>): DoctorCheck {
  return engine.ok ? check('docker', 'pass', `engine ${engine.value}`) : check('docker', 'fail', `the engine does not answer: ${engine.error}`);
}

export function composeCheck(compose: Probed<string>): DoctorCheck {
  if (!compose.ok) return check('compose', 'fail', `docker compose (v2) is not available: ${compose.error}`);
  const major = Number(/^v?(\d+)/.exec(compose.value)?.[1]);
  return major >= 2 ? check('compose', 'pass', `compose ${compose.value}`) : check('compose', 'fail', `compose ${compose.value}: compose v2 is required`);
}

export interface ProjectRules {
  readonly infra: readonly string[];
  readonly pinned: readonly string[];
}

/** The project's agents: its services less the infrastructure, and PINNED_AGENTS that name nothing. */
export function projectCheck(project: Probed<{ readonly name: string; readonly services: readonly string[] }>, rules: ProjectRules, where: string): DoctorCheck {
  if (!project.ok) return check('project', 'fail', `cannot read ${where}: ${project.error}`);
  const { name, services } = project.value;
  const agents = services.filter((s) => !rules.infra.includes(s));
  if (agents.length === 0) return check('project', 'warn', `${name}: no agent services (every service is in INFRA_SERVICES)`);
  const strays = rules.pinned.filter((p) => !services.includes(p));
  const summary = `${name}: ${agents.length} agent${agents.length === 1 ? '' : 's'} (${names(agents)})`;
  if (strays.length > 0) return check('project', 'warn', `${summary}; PINNED_AGENTS names ${names(strays)}, not a service of the project`);
  return check('project', 'pass', summary);
}

/**
 * INFRA_SERVICES should be services of the project, and running: the daemon never starts them.
 * `running` is undefined when Docker could not be asked.
 */
export function infraCheck(infra: readonly string[], services: readonly string[], running: ReadonlySet<string> | undefined): DoctorCheck {
  if (infra.length === 0) return check('infrastructure', 'pass', 'none (INFRA_SERVICES is empty)');
  const missing = infra.filter((s) => !services.includes(s));
  const present = infra.filter((s) => services.includes(s));
  const stopped = running === undefined ? [] : present.filter((s) => !running.has(s));
  const problems = [
    ...(missing.length > 0 ? [`${names(missing)} not in the compose project (INFRA_SERVICES)`] : []),
    ...(stopped.length > 0 ? [`${names(stopped)} not running (the daemon never starts infrastructure)`] : []),
  ];
  if (problems.length > 0) return check('infrastructure', 'warn', problems.join('; '));
  return check('infrastructure', 'pass', `${names(present)} ${running === undefined ? 'in the project' : 'running'}`);
}

/** What `lstat` found: nothing, a refusal (a directory this user may not enter), or the file. */
export type PathFacts<T> = { readonly state: 'missing' } | { readonly state: 'hidden'; readonly error: string } | ({ readonly state: 'found' } & T);

export type SocketFacts = PathFacts<{ readonly isSocket: boolean; readonly mode: number; readonly gid: number }>;

/** The group POOL_SOCKET_GROUP names, resolved (gid undefined: no such group). */
export interface SocketGroup {
  readonly name: string;
  readonly gid: number | undefined;
}

const octal = (mode: number) => `0${(mode & 0o777).toString(8)}`;

export function socketCheck(path: string, facts: SocketFacts, group: SocketGroup | undefined): DoctorCheck {
  if (facts.state === 'missing') return check('socket', 'fail', `${path} does not exist: the daemon is not running, or it uses another POOL_SOCKET (systemctl status openclaw-pool)`);
  if (facts.state === 'hidden') return check('socket', 'fail', `cannot look at ${path}: ${facts.error} (run as root, or as a member of the socket's group)`);
  if (!facts.isSocket) return check('socket', 'fail', `${path} is not a socket; the daemon refuses to replace it`);
  if (group !== undefined && group.gid === undefined) return check('socket', 'fail', `POOL_SOCKET_GROUP=${group.name}: no such group; the daemon cannot start (groupadd ${group.name})`);
  const summary = `${path} mode ${octal(facts.mode)}, gid ${facts.gid}`;
  if ((facts.mode & 0o007) !== 0) return check('socket', 'warn', `${summary}: every local user can drive the pool (the daemon makes it 0660)`);
  if (group !== undefined && facts.gid !== group.gid) return check('socket', 'warn', `${summary}: POOL_SOCKET_GROUP is ${group.name} (gid ${group.gid}); restart the daemon to apply it`);
  return check('socket', 'pass', group === undefined ? summary : `${summary} (${group.name})`);
}

export type DaemonFacts = { readonly reachable: true; readonly health: HealthReply } | { readonly reachable: false; readonly error: string };

export function daemonCheck(facts: DaemonFacts): DoctorCheck {
  if (!facts.reachable) return check('daemon', 'fail', facts.error);
  const { health } = facts;
  if (health.status !== 'ok') return check('daemon', 'fail', `degraded: ${health.reason ?? 'no reason given'}`);
  return check('daemon', 'pass', `ok: version ${health.version}, up ${health.uptime_seconds} s, docker ${health.docker}`);
}

export interface BridgeFacts {
  /** `daemon`: where it listens now; `config`: where it would (the daemon is not running). */
  readonly source: 'daemon' | 'config';
  readonly addresses: readonly string[];
  readonly port: number;
  /** POOL_BIND unset: loopback plus the gateways of the agents' networks. */
  readonly defaultBind: boolean;
  readonly token: boolean;
}

const endpoint = (address: string, port: number) => `${address.includes(':') ? `[${address}]` : address}:${port === 0 ? '<any free port>' : port}`;

export function bridgeCheck(facts: BridgeFacts): DoctorCheck {
  if (facts.addresses.length === 0) return check('bridge', 'fail', 'not listening on any address');
  const where = facts.addresses.map((a) => endpoint(a, facts.port)).join(', ');
  const source = facts.source === 'daemon' ? 'listening' : 'from pool.env; the daemon is not running';
  const detail = `${where} (${source}${facts.defaultBind ? '; POOL_BIND unset: loopback and the agents’ Docker gateways' : ''})`;
  const wildcard = facts.addresses.some((a) => a === '0.0.0.0' || a === '::');
  if (wildcard && !facts.token) {
    return check('bridge', 'warn', `${detail}: all interfaces without POOL_TOKEN, so anyone who reaches the port can start and stop agents; set POOL_TOKEN, or POOL_BIND to loopback and the Docker gateways`);
  }
  return check('bridge', 'pass', detail);
}

export type DirFacts = PathFacts<{ readonly isDirectory: boolean; readonly writable: boolean }>;

/**
 * POOL_DIR must be a writable directory. Writability is judged for the user running the doctor:
 * for root a refusal is real (a read-only mount), for anyone else it may be only their own.
 */
export function poolDirCheck(path: string, facts: DirFacts, user: { readonly uid: number }): DoctorCheck {
  const refused = (root: string, other: string) => (user.uid === 0 ? check('pool dir', 'fail', root) : check('pool dir', 'warn', other));
  if (facts.state === 'missing') return check('pool dir', 'warn', `${path} does not exist yet: the daemon creates it (if it should be a mount, the mount is missing)`);
  if (facts.state === 'hidden') return refused(`cannot look at ${path}: ${facts.error}`, `cannot look at ${path} as uid ${user.uid}: ${facts.error}; the daemon's user must be able to`);
  if (!facts.isDirectory) return check('pool dir', 'fail', `${path} is not a directory`);
  if (!facts.writable) {
    return refused(`${path} is not writable (a read-only mount?); the daemon cannot keep its state`, `${path} is not writable by uid ${user.uid}; the daemon's user must be able to write it`);
  }
  return check('pool dir', 'pass', `${path} is writable`);
}

export interface SizingFacts {
  /** The host's RAM (MemTotal); undefined when it could not be read. */
  readonly totalBytes: number | undefined;
  /** MEMORY_RESERVE. */
  readonly reserveBytes: number;
  /** Each agent's measured memory (the pool's peaks, else what `docker stats` reads now); empty when none could be. */
  readonly samples: readonly number[];
  /** Why `samples` is empty, e.g. "no agent running to measure". */
  readonly unmeasured: string;
  /** AGENT_MEMORY_DEFAULT: what an agent is counted at when none is measured. */
  readonly defaultBytes: number;
  /** MEMORY_BUDGET as configured: bytes, `auto`, or undefined (off). */
  readonly budget: number | 'auto' | undefined;
  readonly maxAgents: number;
}

/**
 * The MEMORY_BUDGET suggestion, MemTotal less MEMORY_RESERVE, and how many agents of the measured
 * size (their mean, else AGENT_MEMORY_DEFAULT) it fits, against what is configured. It warns when
 * nothing fits, or when a budget in bytes is above the suggestion (it promises memory the host
 * keeps for itself); an unset budget passes (the pool then behaves as before budgets existed).
 */
export function sizingCheck(facts: SizingFacts): { check: DoctorCheck; figures?: SizingFigures } {
  if (facts.totalBytes === undefined) return { check: skipped('sizing', "cannot read the host's memory (/proc/meminfo)") };
  // A container just started may report 0 B: it says nothing about an agent's size.
  const measured = facts.samples.filter((bytes) => bytes > 0);
  const perAgent = measured.length > 0 ? Math.round(measured.reduce((a, b) => a + b, 0) / measured.length) : facts.defaultBytes;
  const suggested = suggestMemoryBudget(facts.totalBytes, facts.reserveBytes);
  const fits = Math.floor(suggested / perAgent);
  const figures: SizingFigures = {
    total_bytes: facts.totalBytes,
    reserve_bytes: facts.reserveBytes,
    suggested_budget_bytes: suggested,
    per_agent_bytes: perAgent,
    measured_agents: measured.length,
    fits_agents: fits,
    configured_budget: facts.budget ?? null,
    max_agents: facts.maxAgents,
  };
  const basis = measured.length > 0 ? `${formatBytes(perAgent)} per agent (mean of ${measured.length} measured)` : `${formatBytes(perAgent)} per agent (AGENT_MEMORY_DEFAULT; ${facts.unmeasured})`;
  const rule = `MemTotal ${formatBytes(facts.totalBytes)} − MEMORY_RESERVE ${formatBytes(facts.reserveBytes)}, what MEMORY_BUDGET=auto computes; it fits ${fits} agent${fits === 1 ? '' : 's'} at ${basis}`;
  const suggestion = `suggested MEMORY_BUDGET=${Math.floor(suggested / MiB)}M (${rule})`;
  if (fits === 0) return { check: check('sizing', 'warn', `no room for an agent: ${suggestion}`), figures };
  if (typeof facts.budget === 'number' && facts.budget > suggested) {
    return { check: check('sizing', 'warn', `MEMORY_BUDGET=${formatBytes(facts.budget)} is above the host's memory less its reserve: ${suggestion}`), figures };
  }
  const configured = facts.budget === undefined ? `MEMORY_BUDGET unset: only MAX_AGENTS=${facts.maxAgents} limits the pool` : `MEMORY_BUDGET=${facts.budget === 'auto' ? 'auto' : formatBytes(facts.budget)}`;
  return { check: check('sizing', 'pass', `${suggestion}; ${configured}`), figures };
}

/** The daemon's memory figures as its status gives them (only with a budget): the budget used and free, and each agent's now / peak / expected. */
export function memoryCheck(status: StatusReply | undefined): DoctorCheck | undefined {
  const { memory_budget_bytes: budget, memory_used_bytes: used, memory_free_bytes: free } = status ?? {};
  if (status === undefined || budget === undefined || used === undefined || free === undefined) return undefined;
  const figure = (bytes: number | undefined) => (bytes === undefined ? '-' : formatBytes(bytes));
  const agents = status.running.map((a) => `${a.id} ${figure(a.memory_bytes)} / ${figure(a.memory_peak_bytes)} / ${figure(a.memory_expected_bytes)}`);
  const detail = `${formatBytes(used)} of the ${formatBytes(budget)} budget used, ${formatBytes(free)} free${agents.length === 0 ? '' : `; now / peak / expected: ${names(agents)}`}`;
  return check('memory', used > budget ? 'warn' : 'pass', used > budget ? `over the budget: ${detail}` : detail);
}

export function doctorReport(checks: readonly DoctorCheck[], sizing?: SizingFigures): DoctorReport {
  return { ok: !checks.some((c) => c.verdict === 'fail'), checks: [...checks], ...(sizing !== undefined && { sizing }) };
}

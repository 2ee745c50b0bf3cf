import type { ActiveReason, AgentStatus, PoolConfig } from '../contract/index.js';

/** One pooled agent. Times are epoch milliseconds; the clock is always passed in. */
export interface AgentRecord {
  readonly status: AgentStatus;
  readonly started: number;
  readonly lastActive: number;
  readonly requestedBy: string;
  /**
   * Set on a `stopping` agent that is being evicted to make room for another: the name of the
   * `starting` agent its slot is promised to. The pair holds one slot between them, and the
   * newcomer's container is only started once this one is confirmed down, so neither the count
   * nor the containers ever exceed the cap.
   */
  readonly slotFor?: string;
  /** End of a busy hold a heartbeat asked for: no eviction until then, whatever the grace period. */
  readonly busyUntil?: number;
  /**
   * The host its container was seen on at the last listing, for backends that span several (swarm).
   * An observation, not part of the pool's decisions: not saved, found again by the first listing.
   */
  readonly node?: string;
  /**
   * Docker says its container is paused (`docker pause`): still there, holding its memory and its
   * slot, but frozen. An observation like `node`, kept in line by every listing and not saved.
   */
  readonly paused?: true;
  /** With ACTIVITY_MODE=work, what last moved `lastActive`, for the status to show. */
  readonly activeReason?: ActiveReason;
  /**
   * With ACTIVITY_MODE=work, when its last heartbeat came (any, plain or not: each says it is
   * alive); absent until it has beaten in this run. A new daemon counts from its own start instead
   * (see `resumeLiveness`).
   */
  readonly lastBeat?: number;
}

export interface PoolState {
  readonly agents: ReadonlyMap<string, AgentRecord>;
  /**
   * What each agent was seen to use, for agents that do not run too: an agent's expected memory is
   * known before it runs again. Kept (and sampled) only while a memory budget is set.
   */
  readonly memory?: ReadonlyMap<string, MemoryRecord>;
  /**
   * The host is short of memory (the pressure guard, MEMORY_PRESSURE_MIN): no new start. An
   * observation of the host, like `paused` of a container: not saved, found again by sampling.
   */
  readonly pressure?: true;
}

/** The memory peaks of an agent's last runs, newest first: `peaks[0]` is that of the run that started at `run`. */
export interface MemoryRecord {
  readonly peaks: readonly number[];
  /** The `started` of the agent's run `peaks[0]` belongs to: a sample of a later run opens a new peak. */
  readonly run: number;
}

export const emptyState: PoolState = { agents: new Map() };

/** What the decisions need of the configuration. */
export interface PoolRules {
  readonly maxAgents: number;
  readonly evictGraceMs: number;
  readonly infra: ReadonlySet<string>;
  readonly pinned: ReadonlySet<string>;
  /** Longest busy hold a heartbeat may set. */
  readonly busyMaxMs: number;
  /** The memory budget (MEMORY_BUDGET); absent, only the count is a limit. */
  readonly memory?: MemoryRules;
  /** The pressure guard's minimum of the host's MemAvailable (MEMORY_PRESSURE_MIN), in bytes; absent, no guard. */
  readonly pressureMinBytes?: number;
  /** ACTIVITY_MODE=work: what counts as work; absent (heartbeat mode), every heartbeat is activity. */
  readonly work?: WorkRules;
  /** IDLE_STOP_SECONDS in ms: an agent idle this long is stopped, the pool full or not; absent, never. */
  readonly idleStopMs?: number;
  /** ACTIVITY_MARKS=off: activity files are not read (any agent may touch any mark, so they cannot be attributed). */
  readonly ignoreActivityMarks?: true;
  /**
   * With ACTIVITY_MODE=work: a running agent that had been beating and has not for longer than
   * this is unresponsive (`UNRESPONSIVE_INTERVALS` × HEARTBEAT_INTERVAL, in ms); absent, never.
   */
  readonly unresponsiveMs?: number;
}

/** Heartbeat intervals without a beat after which an agent that had been beating is unresponsive: one lost beat is a blip, three are nobody home. */
export const UNRESPONSIVE_INTERVALS = 3;

export interface WorkRules {
  /** CPU use between two samples that counts as work, in percent of one core (ACTIVE_CPU_PERCENT). */
  readonly cpuPercent: number;
  /** Bytes received and sent between two samples that count as work (ACTIVE_NET_BYTES). */
  readonly netBytes: number;
}

export interface MemoryRules {
  /** What every starting, running and stopping agent may be expected to use together, in bytes. */
  readonly budgetBytes: number;
  /** The expected memory of an agent never measured and without a compose limit (AGENT_MEMORY_DEFAULT). */
  readonly defaultBytes: number;
}

/** `memTotalBytes`: the host's MemTotal, which `MEMORY_BUDGET=auto` needs (read by the shell). */
export function rulesFromConfig(config: PoolConfig, memTotalBytes?: number): PoolRules {
  const memory = memoryRules(config, memTotalBytes);
  return {
    maxAgents: config.maxAgents,
    evictGraceMs: config.evictGraceSeconds * 1000,
    infra: new Set(config.infraServices),
    pinned: new Set(config.pinnedAgents),
    busyMaxMs: config.busyMaxSeconds * 1000,
    ...(memory !== undefined && { memory }),
    ...(config.memoryPressureMin !== undefined && { pressureMinBytes: config.memoryPressureMin }),
    ...(config.activityMode === 'work' && {
      work: { cpuPercent: config.activeCpuPercent, netBytes: config.activeNetBytes },
      unresponsiveMs: UNRESPONSIVE_INTERVALS * config.heartbeatIntervalSeconds * 1000,
    }),
    ...(config.idleStopSeconds !== undefined && { idleStopMs: config.idleStopSeconds * 1000 }),
    ...(config.activityMarks === 'off' && { ignoreActivityMarks: true }),
  };
}

function memoryRules(config: PoolConfig, memTotalBytes: number | undefined): MemoryRules | undefined {
  const { memoryBudget, memoryReserve, agentMemoryDefault } = config;
  if (memoryBudget === undefined) return undefined;
  if (memoryBudget !== 'auto') return { budgetBytes: memoryBudget, defaultBytes: agentMemoryDefault };
  if (memTotalBytes === undefined) throw new Error("MEMORY_BUDGET=auto: cannot read the host's MemTotal (/proc/meminfo); give the budget in bytes");
  // A reserve past the whole memory leaves a budget of nothing: every start is refused as too large, saying both sizes.
  return { budgetBytes: Math.max(0, memTotalBytes - memoryReserve), defaultBytes: agentMemoryDefault };
}

/** Slots held: every starting, running and stopping agent, except an evicted one whose slot is already promised. */
export function slotsUsed(state: PoolState): number {
  let used = 0;
  for (const record of state.agents.values()) if (!isHandedOver(record)) used++;
  return used;
}

function isHandedOver(record: AgentRecord): boolean {
  return record.status === 'stopping' && record.slotFor !== undefined;
}

export function withAgent(state: PoolState, name: string, record: AgentRecord): PoolState {
  const agents = new Map(state.agents);
  agents.set(name, record);
  return { ...state, agents };
}

export function withoutAgent(state: PoolState, name: string): PoolState {
  if (!state.agents.has(name)) return state;
  const agents = new Map(state.agents);
  agents.delete(name);
  return { ...state, agents };
}

export function updateAgent(state: PoolState, name: string, change: (record: AgentRecord) => AgentRecord): PoolState {
  const record = state.agents.get(name);
  return record === undefined ? state : withAgent(state, name, change(record));
}

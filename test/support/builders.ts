import type { AgentRecord, PoolRules, PoolState } from '../../src/core/index.js';

/** A fixed "now" for tables: 2026-02-28T05:17:04Z. Offsets in tests are in seconds before it. */
export const NOW = Date.UTC(2026, 1, 28, 5, 17, 4);
export const secondsAgo = (s: number) => NOW - s * 1000;

export function rules(overrides: Partial<Omit<PoolRules, 'infra' | 'pinned'>> & { infra?: string[]; pinned?: string[] } = {}): PoolRules {
  return {
    maxAgents: overrides.maxAgents ?? 3,
    evictGraceMs: overrides.evictGraceMs ?? 60_000,
    infra: new Set(overrides.infra ?? ['gateway', 'litellm', 'ollama']),
    pinned: new Set(overrides.pinned ?? []),
    busyMaxMs: overrides.busyMaxMs ?? 3_600_000,
    ...(overrides.memory !== undefined && { memory: overrides.memory }),
    ...(overrides.work !== undefined && { work: overrides.work }),
    ...(overrides.idleStopMs !== undefined && { idleStopMs: overrides.idleStopMs }),
    ...(overrides.unresponsiveMs !== undefined && { unresponsiveMs: overrides.unresponsiveMs }),
  };
}

export const MiB = 1024 ** 2;

/** `withPeaks(pool({...}), { cto: [400] })`: the measured peaks of agents' runs in MiB, newest (the run in progress, for a pooled agent) first. */
export function withPeaks(state: PoolState, peaks: Record<string, number[]>): PoolState {
  const memory = new Map(Object.entries(peaks).map(([name, mib]) => [name, { peaks: mib.map((m) => m * MiB), run: state.agents.get(name)?.started ?? 0 }]));
  return { ...state, memory };
}

/** `busy`: seconds the agent's busy hold still lasts (negative: ended that long ago); `beat`: seconds since its last heartbeat (work mode). */
type AgentSpec = { status?: AgentRecord['status']; idle?: number; startedAgo?: number; by?: string; slotFor?: string; busy?: number; node?: string; paused?: boolean; beat?: number };

/** `pool({ ceo: { idle: 120 }, cfo: { status: 'starting' } })`: records relative to NOW. */
export function pool(spec: Record<string, AgentSpec>): PoolState {
  const agents = new Map<string, AgentRecord>();
  for (const [name, s] of Object.entries(spec)) {
    const idle = s.idle ?? 300;
    agents.set(name, {
      status: s.status ?? 'running',
      started: secondsAgo(s.startedAgo ?? Math.max(idle, 600)),
      lastActive: secondsAgo(idle),
      requestedBy: s.by ?? 'test',
      ...(s.slotFor !== undefined && { slotFor: s.slotFor }),
      ...(s.busy !== undefined && { busyUntil: NOW + s.busy * 1000 }),
      ...(s.node !== undefined && { node: s.node }),
      ...(s.paused === true && { paused: true as const }),
      ...(s.beat !== undefined && { lastBeat: secondsAgo(s.beat) }),
    });
  }
  return { agents };
}

export const catalogue = (...names: string[]) => ({
  known: new Set(names.length > 0 ? names : ['ceo', 'cto', 'cfo', 'software-engineer', 'designer', 'qa']),
});

export const statuses = (state: PoolState) => Object.fromEntries([...state.agents].map(([n, r]) => [n, r.status]));

import { constants } from 'node:fs';
import { mkdir, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { ActiveReason, StateFile, type StateFile as StateFileShape, AgentStatus, parseWireTime } from '../contract/index.js';
import type { AgentRecord, MemoryRecord, PoolState } from '../core/index.js';
import { coalescingWriter, removeLeftoverTemps, writeFileAtomic } from './atomic.js';
import { NotRegularFileError, compactTime, openRegular } from './regular-file.js';

export const STATE_FILE = 'state.json';

export interface LoadedState {
  readonly state: PoolState;
  /** Set when state.json was unreadable: where it was moved and why. The state is then empty, to be rebuilt from Docker. */
  readonly corrupt?: { readonly movedTo: string; readonly reason: string };
  /**
   * Entries dropped, each alone: the earlier bash manager's with a status that is not pooled (e.g.
   * `"stopped"`), named; and records that fail validation, named with the reason.
   */
  readonly ignored: readonly string[];
}

export interface StateStore {
  readonly path: string;
  /** Reads state.json; never throws for a bad file (it is moved aside), only for IO errors on the directory. */
  load(now: number): Promise<LoadedState>;
  /** Durable once resolved; concurrent saves are serialised and coalesced. */
  save(state: PoolState): Promise<void>;
}

export function createStateStore(poolDir: string): StateStore {
  const path = join(poolDir, STATE_FILE);
  const write = coalescingWriter((data) => writeFileAtomic(path, data));
  return {
    path,
    load: (now) => loadState(poolDir, path, now),
    save: (state) => write(serializeState(state)),
  };
}

export function serializeState(state: PoolState): string {
  const agents: StateFileShape['agents'] = {};
  for (const [name, r] of state.agents) {
    agents[name] = {
      status: r.status,
      started_at: new Date(r.started).toISOString(),
      last_active: new Date(r.lastActive).toISOString(),
      requested_by: r.requestedBy,
      ...(r.slotFor !== undefined && { slot_for: r.slotFor }),
      ...(r.busyUntil !== undefined && { busy_until: new Date(r.busyUntil).toISOString() }),
      ...(r.activeReason !== undefined && { active_reason: r.activeReason }),
      ...(r.lastBeat !== undefined && { last_beat: new Date(r.lastBeat).toISOString() }),
    };
  }
  const memory = state.memory === undefined ? undefined : Object.fromEntries([...state.memory].map(([name, m]) => [name, { peaks: [...m.peaks], run_started: new Date(m.run).toISOString() }]));
  return `${JSON.stringify({ version: 1, agents, ...(memory !== undefined && { memory }) } satisfies StateFileShape, null, 2)}\n`;
}

/**
 * Parses a state.json text (ours or the earlier bash manager's); throws with a reason when it is
 * not one. Each agent's record is checked on its own: one that fails (a name past the rule, a bad
 * time) is dropped and described in `invalid`, and never costs the others their busy holds.
 */
export function parseState(text: string): { state: PoolState; ignored: string[]; invalid: string[] } {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new Error(`not JSON (${(error as Error).message})`);
  }
  const top = StateFile.safeParse(isObject(json) && isObject(json.agents) ? { ...json, agents: {}, memory: undefined } : json);
  if (!top.success) throw new Error(describeIssue(top.error.issues[0]));
  const memory = parseMemory((json as { memory?: unknown }).memory);
  const entries: [string, StateFileShape['agents'][string]][] = [];
  const invalid: string[] = [];
  for (const [name, raw] of Object.entries((json as { agents: Record<string, unknown> }).agents)) {
    const one = StateFile.safeParse({ agents: { [name]: raw } });
    if (one.success) entries.push([name, one.data.agents[name]!]);
    else invalid.push(`${name} (${describeRecordIssue(one.error.issues[0])})`);
  }
  const agents = new Map<string, AgentRecord>();
  const ignored: string[] = [];
  for (const [name, entry] of entries) {
    const status = AgentStatus.safeParse(entry.status);
    if (!status.success) {
      ignored.push(name);
      continue;
    }
    const reason = ActiveReason.safeParse(entry.active_reason);
    const lastBeat = entry.last_beat === undefined ? undefined : parseWireTime(entry.last_beat);
    // The schema checked the times; parseWireTime cannot miss here.
    const started = parseWireTime(entry.started_at) as number;
    agents.set(name, {
      status: status.data,
      started,
      lastActive: entry.last_active === undefined ? started : (parseWireTime(entry.last_active) as number),
      requestedBy: entry.requested_by ?? 'unknown',
      ...(entry.slot_for !== undefined && { slotFor: entry.slot_for }),
      ...(entry.busy_until !== undefined && { busyUntil: parseWireTime(entry.busy_until) as number }),
      ...(reason.success && { activeReason: reason.data }),
      ...(lastBeat !== undefined && { lastBeat }),
    });
  }
  return { state: { agents, ...(memory !== undefined && { memory }) }, ignored, invalid };
}

/** Memory peaks, each agent's checked on its own: a bad one is forgotten (measured again), never a reason to drop the file. */
function parseMemory(raw: unknown): Map<string, MemoryRecord> | undefined {
  if (!isObject(raw)) return undefined;
  const memory = new Map<string, MemoryRecord>();
  for (const [name, entry] of Object.entries(raw)) {
    const one = StateFile.safeParse({ agents: {}, memory: { [name]: entry } });
    const parsed = one.success ? one.data.memory?.[name] : undefined;
    if (parsed !== undefined) memory.set(name, { peaks: parsed.peaks, run: parseWireTime(parsed.run_started) as number });
  }
  return memory;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describeIssue(issue: { path: PropertyKey[]; message: string } | undefined): string {
  return `wrong shape at ${issue?.path.map(String).join('.') || 'top level'}: ${issue?.message}`;
}

/** One agent's record: the path within it (`agents.<name>.` is already said), or that the name breaks the rule. */
function describeRecordIssue(issue: { code: string; path: PropertyKey[]; message: string } | undefined): string {
  if (issue?.code === 'invalid_key') return 'not a valid agent name';
  return `${issue?.path.slice(2).map(String).join('.') || 'the record'}: ${issue?.message}`;
}

async function loadState(poolDir: string, path: string, now: number): Promise<LoadedState> {
  await mkdir(poolDir, { recursive: true });
  // A temp file left by a write that died before its rename holds nothing the real file lacks.
  await removeLeftoverTemps(path);
  let text: string;
  try {
    const file = await openRegular(path, constants.O_RDONLY);
    try {
      text = await file.readFile('utf8');
    } finally {
      await file.close();
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { state: { agents: new Map() }, ignored: [] };
    // A FIFO here would have hung start-up; a symlink would have read a file that is not ours.
    if (error instanceof NotRegularFileError && error.movedTo !== undefined) return { state: { agents: new Map() }, corrupt: { movedTo: error.movedTo, reason: `${error.found}, not a regular file` }, ignored: [] };
    throw error;
  }
  try {
    const { state, ignored, invalid } = parseState(text);
    return { state, ignored: [...ignored, ...invalid] };
  } catch (error) {
    const movedTo = `${path}.corrupt-${compactTime(now)}`;
    await rename(path, movedTo);
    return { state: { agents: new Map() }, corrupt: { movedTo, reason: (error as Error).message }, ignored: [] };
  }
}

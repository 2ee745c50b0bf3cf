import { mkdir, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { StateFile, type StateFile as StateFileShape, AgentStatus, parseWireTime } from '../contract/index.js';
import type { AgentRecord, PoolState } from '../core/index.js';
import { coalescingWriter, removeLeftoverTemps, writeFileAtomic } from './atomic.js';

export const STATE_FILE = 'state.json';

export interface LoadedState {
  readonly state: PoolState;
  /** Set when state.json was unreadable: where it was moved and why. The state is then empty, to be rebuilt from Docker. */
  readonly corrupt?: { readonly movedTo: string; readonly reason: string };
  /** Entries of the earlier bash manager's file with a status that is not pooled (e.g. `"stopped"`), dropped. */
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
    };
  }
  return `${JSON.stringify({ version: 1, agents } satisfies StateFileShape, null, 2)}\n`;
}

/** Parses a state.json text (ours or the earlier bash manager's); throws with a reason when it is not one. */
export function parseState(text: string): { state: PoolState; ignored: string[] } {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new Error(`not JSON (${(error as Error).message})`);
  }
  const parsed = StateFile.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`wrong shape at ${issue?.path.join('.') || 'top level'}: ${issue?.message}`);
  }
  const agents = new Map<string, AgentRecord>();
  const ignored: string[] = [];
  for (const [name, entry] of Object.entries(parsed.data.agents)) {
    const status = AgentStatus.safeParse(entry.status);
    if (!status.success) {
      ignored.push(name);
      continue;
    }
    // The schema checked the times; parseWireTime cannot miss here.
    const started = parseWireTime(entry.started_at) as number;
    agents.set(name, {
      status: status.data,
      started,
      lastActive: entry.last_active === undefined ? started : (parseWireTime(entry.last_active) as number),
      requestedBy: entry.requested_by ?? 'unknown',
      ...(entry.slot_for !== undefined && { slotFor: entry.slot_for }),
      ...(entry.busy_until !== undefined && { busyUntil: parseWireTime(entry.busy_until) as number }),
    });
  }
  return { state: { agents }, ignored };
}

async function loadState(poolDir: string, path: string, now: number): Promise<LoadedState> {
  await mkdir(poolDir, { recursive: true });
  // A temp file left by a write that died before its rename holds nothing the real file lacks.
  await removeLeftoverTemps(path);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { state: { agents: new Map() }, ignored: [] };
    throw error;
  }
  try {
    return parseState(text);
  } catch (error) {
    const movedTo = `${path}.corrupt-${compactTime(now)}`;
    await rename(path, movedTo);
    return { state: { agents: new Map() }, corrupt: { movedTo, reason: (error as Error).message }, ignored: [] };
  }
}

function compactTime(epochMs: number): string {
  return new Date(epochMs).toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
}

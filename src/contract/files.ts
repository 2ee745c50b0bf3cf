import * as z from 'zod';
import { AgentName } from './names.js';
import { AgentView } from './api.js';
import { parseWireTime } from './time.js';

const Time = z.string().refine((text) => parseWireTime(text) !== undefined, { error: 'not an ISO 8601 time' });

/**
 * `POOL_DIR/state.json`. The earlier bash manager wrote the same shape without `version`
 * (and only ever `"status":"running"`), so its files load as they are; any status other than
 * the pooled ones (e.g. a leftover `"stopped"`) means the agent is not in the pool.
 */
export const StateFile = z.object({
  version: z.literal(1).optional(),
  agents: z.record(
    AgentName,
    z.object({
      status: z.string(),
      started_at: Time,
      last_active: Time.optional(),
      requested_by: z.string().optional(),
      /** A `stopping` agent's slot promised to the agent it was evicted for (see the core's AgentRecord). */
      slot_for: AgentName.optional(),
      /** End of a busy hold a heartbeat asked for. */
      busy_until: Time.optional(),
      /** With ACTIVITY_MODE=work, what last counted as its activity (an ActiveReason; one this daemon does not know is dropped, not the agent). */
      active_reason: z.string().optional(),
      /** With ACTIVITY_MODE=work, when its last heartbeat came: it had been beating (a time that does not parse is dropped, not the agent). */
      last_beat: z.string().optional(),
    }),
  ),
  /**
   * Measured memory peaks of agents' last runs in bytes, newest first, kept for agents that do not
   * run too (with a memory budget); `run_started`: the start of the run the first peak belongs to.
   */
  memory: z.record(AgentName, z.object({ peaks: z.array(z.number().nonnegative()).min(1), run_started: Time })).optional(),
});
export type StateFile = z.infer<typeof StateFile>;

/** `POOL_DIR/roster.json`, mounted read-only into containers at `/pool/roster.json`. */
export const RosterFile = z.object({
  running: z.array(AgentView),
  slots_total: z.number().int(),
  slots_free: z.number().int(),
  heartbeat_interval: z.number(),
  /** ACTIVITY_MODE: with `work`, the heartbeat shim's plain beats leave the activity file alone (a touch of it is activity). Absent in a roster of an older daemon. */
  activity_mode: z.enum(['heartbeat', 'work']).optional(),
  updated_at: z.string(),
});
export type RosterFile = z.infer<typeof RosterFile>;

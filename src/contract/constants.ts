/**
 * Contract constants the CLI needs without loading zod (poolctl's cold start is a benchmark
 * target; see bench/README.md). api.ts builds the schemas from these.
 */

/** Upper bound on `wait_seconds`: a queued request should not outlive any sane client timeout. */
export const MAX_WAIT_SECONDS = 3600;

/** Upper bound on `busy_seconds` whatever the config says: a hold is for a task, not forever. */
export const MAX_BUSY_SECONDS = 86_400;

/** Most events one query of the event log returns. */
export const MAX_EVENTS_LIMIT = 10_000;

/** Progress of an operation under way: shown live (poolctl start, watch), not kept in events.jsonl. */
export const TRANSITIONAL_EVENT_TYPES: ReadonlySet<string> = new Set(['starting', 'stopping', 'waiting']);

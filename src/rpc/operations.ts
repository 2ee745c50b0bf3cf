import type * as z from 'zod';
import type { CallerVia, EventsInput, HeartbeatInput, MetricsInput, ReleaseInput, RequestInput } from '../contract/index.js';
import type { Context } from './context.js';

/** What a call brings besides its input. */
export interface CallOptions {
  readonly signal?: AbortSignal | undefined;
  readonly via?: CallerVia | undefined;
}

/**
 * Each operation the two faces share, written once. The routers wrap them in procedures (the
 * socket's face); the HTTP bridge calls the same functions with the same input schemas directly,
 * because tRPC's per-call machinery (proxy, middleware chain, object spreads: ≈ 7-12 µs a call)
 * costs more than the whole of a `/status` or `/heartbeat` answer (see bench/README.md).
 */
export const operations = {
  /** `signal`: the client went away; a request waiting for a slot leaves the line. `via`: how the bridge knew the requester. */
  request: (ctx: Context, input: z.output<typeof RequestInput>, { signal, via }: CallOptions = {}) =>
    ctx.metrics.settle('request', ctx.pool.request(input.agent, input.requested_by, { waitSeconds: input.wait_seconds, signal, ...(via !== undefined && { via }) })),
  release: (ctx: Context, input: z.output<typeof ReleaseInput>, { via }: CallOptions = {}) => ctx.metrics.settle('release', ctx.pool.release(input.agent, input.requested_by, via)),
  heartbeat: (ctx: Context, input: z.output<typeof HeartbeatInput>) => {
    ctx.pool.heartbeat(input.agent, input.busy_seconds, input.active);
    ctx.metrics.heartbeat();
    return { status: 'ok' as const };
  },
  status: (ctx: Context) => ctx.pool.status(),
  available: (ctx: Context) => ({ agents: ctx.pool.available() }),
  health: (ctx: Context) => ctx.health(),
  known: (ctx: Context) => ({ agents: ctx.pool.known() }),
  config: (ctx: Context) => ctx.configView(),
  events: (ctx: Context, input: z.output<typeof EventsInput>) => ctx.events(input),
  metrics: (ctx: Context, input: z.output<typeof MetricsInput>) => ctx.metrics.render(input.format),
  diagnostics: (ctx: Context) => ctx.diagnostics(),
};

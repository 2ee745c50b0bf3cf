import type * as z from 'zod';
import type { EventsInput, HeartbeatInput, MetricsInput, ReleaseInput, RequestInput } from '../contract/index.js';
import type { Context } from './context.js';

/**
 * Each operation the two faces share, written once. The routers wrap them in procedures (the
 * socket's face); the HTTP bridge calls the same functions with the same input schemas directly,
 * because tRPC's per-call machinery (proxy, middleware chain, object spreads: ≈ 7-12 µs a call)
 * costs more than the whole of a `/status` or `/heartbeat` answer (see bench/README.md).
 */
export const operations = {
  /** `signal`: the client went away; a request waiting for a slot leaves the line. */
  request: (ctx: Context, input: z.output<typeof RequestInput>, signal?: AbortSignal) =>
    ctx.metrics.settle('request', ctx.pool.request(input.agent, input.requested_by, { waitSeconds: input.wait_seconds, signal })),
  release: (ctx: Context, input: z.output<typeof ReleaseInput>) => ctx.metrics.settle('release', ctx.pool.release(input.agent, input.requested_by)),
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

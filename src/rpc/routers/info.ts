import { procedure, router } from '../trpc.js';

/** Read-only views of the pool. */
export const infoRouter = router({
  status: procedure.query(({ ctx }) => ctx.pool.status()),
  available: procedure.query(({ ctx }) => ({ agents: ctx.pool.available() })),
  health: procedure.query(({ ctx }) => ctx.health()),
  known: procedure.query(({ ctx }) => ({ agents: ctx.pool.known() })),
  config: procedure.query(({ ctx }) => ctx.configView()),
  /** Live pool events (started, evicted, released, lost, adopted, failed) as they happen. */
  events: procedure.subscription(async function* ({ ctx, signal }) {
    yield* ctx.subscribe(signal ?? new AbortController().signal);
  }),
});

import { EventsInput } from '../../contract/index.js';
import { operations } from '../operations.js';
import { procedure, router } from '../trpc.js';

/** Read-only views of the pool. */
export const infoRouter = router({
  status: procedure.query(({ ctx }) => operations.status(ctx)),
  available: procedure.query(({ ctx }) => operations.available(ctx)),
  health: procedure.query(({ ctx }) => operations.health(ctx)),
  known: procedure.query(({ ctx }) => operations.known(ctx)),
  config: procedure.query(({ ctx }) => operations.config(ctx)),
  /** The event log: "why was my agent stopped?" */
  history: procedure.input(EventsInput).query(({ ctx, input }) => operations.events(ctx, input)),
  /** Live pool events (started, evicted, released, lost, adopted, failed) as they happen. */
  events: procedure.subscription(async function* ({ ctx, signal }) {
    yield* ctx.subscribe(signal ?? new AbortController().signal);
  }),
});

import { EventsInput, MetricsInput } from '../../contract/index.js';
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
  /** The Prometheus metrics the bridge serves on GET /metrics, as text or as JSON. */
  metrics: procedure.input(MetricsInput).query(({ ctx, input }) => operations.metrics(ctx, input)),
  /** What the daemon says about itself, for `poolctl doctor`. */
  diagnostics: procedure.query(({ ctx }) => operations.diagnostics(ctx)),
  /** Live pool events (started, evicted, released, lost, adopted, failed) as they happen. */
  events: procedure.subscription(async function* ({ ctx, signal }) {
    yield* ctx.subscribe(signal ?? new AbortController().signal);
  }),
});

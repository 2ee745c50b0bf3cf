import { HeartbeatInput, ReleaseInput, RequestInput } from '../../contract/index.js';
import { operations } from '../operations.js';
import { procedure, router } from '../trpc.js';

/** The operations that change the pool: the same for the socket and the HTTP bridge. */
export const poolRouter = router({
  request: procedure.input(RequestInput).mutation(({ ctx, input, signal }) => operations.request(ctx, input, { signal })),
  release: procedure.input(ReleaseInput).mutation(({ ctx, input }) => operations.release(ctx, input)),
  heartbeat: procedure.input(HeartbeatInput).mutation(({ ctx, input }) => operations.heartbeat(ctx, input)),
});

import { HeartbeatInput, ReleaseInput, RequestInput } from '../../contract/index.js';
import { procedure, router } from '../trpc.js';

/** The operations that change the pool: the same for the socket and the HTTP bridge. */
export const poolRouter = router({
  request: procedure.input(RequestInput).mutation(({ ctx, input }) => ctx.pool.request(input.agent, input.requested_by)),
  release: procedure.input(ReleaseInput).mutation(({ ctx, input }) => ctx.pool.release(input.agent, input.requested_by)),
  heartbeat: procedure.input(HeartbeatInput).mutation(({ ctx, input }) => {
    ctx.pool.heartbeat(input.agent);
    return { status: 'ok' as const };
  }),
});

import * as z from 'zod';
import { procedure, router } from '../trpc.js';

/** Host-only operations: there is no bridge route to these. */
export const adminRouter = router({
  /**
   * Stops the daemon; with `stopAgents`, only after every pooled agent is stopped, so that the
   * caller (systemd's ExecStop on `systemctl stop`) returns once they are down.
   */
  shutdown: procedure.input(z.object({ stopAgents: z.boolean().default(false) })).mutation(async ({ ctx, input }) => {
    if (input.stopAgents) await ctx.pool.stopAll('shutdown');
    ctx.requestShutdown(input.stopAgents ? 'poolctl shutdown --stop-agents' : 'poolctl shutdown', { agentsStopped: input.stopAgents });
    return { status: 'ok' as const, stopped_agents: input.stopAgents };
  }),
});

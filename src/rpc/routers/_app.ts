import { router } from '../trpc.js';
import { adminRouter } from './admin.js';
import { infoRouter } from './info.js';
import { poolRouter } from './pool.js';

export const appRouter = router({
  pool: poolRouter,
  info: infoRouter,
  admin: adminRouter,
});

export type AppRouter = typeof appRouter;

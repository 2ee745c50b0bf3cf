import { initTRPC } from '@trpc/server';
import superjson from 'superjson';
import { PoolError, poolErrorData } from '../contract/index.js';
import type { Context } from './context.js';
import { inputIssues, toTRPCError } from './errors.js';

const t = initTRPC.context<Context>().create({
  transformer: superjson,
  errorFormatter({ shape, error }) {
    return { ...shape, data: { ...shape.data, pool: poolErrorData(error.cause), issues: inputIssues(error.cause) } };
  },
});

/** Pool errors thrown by a procedure leave it as TRPCErrors with their own code and data. */
const poolErrors = t.middleware(async ({ next }) => {
  const result = await next();
  if (!result.ok && result.error.cause instanceof PoolError) throw toTRPCError(result.error.cause);
  return result;
});

export const router = t.router;
export const procedure = t.procedure.use(poolErrors);

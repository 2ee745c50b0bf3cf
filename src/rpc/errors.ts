import { TRPCError } from '@trpc/server';
import { type PoolError, rpcCodeOf } from '../contract/index.js';

/** A pool error as tRPC throws it: the kind's code (contract/errors.ts); its data rides along in the error shape. */
export function toTRPCError(error: PoolError): TRPCError {
  return new TRPCError({ code: rpcCodeOf(error), message: error.message, cause: error });
}

/** Zod's issues of a rejected input, as `path: message` lines. */
export function inputIssues(cause: unknown): string[] | null {
  const issues = (cause as { issues?: unknown } | undefined)?.issues;
  if (!Array.isArray(issues)) return null;
  return issues.map((issue: { path?: PropertyKey[]; message?: string }) => issue.message ?? 'invalid input');
}

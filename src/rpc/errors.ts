import { TRPCError } from '@trpc/server';
import { DriverError, PoolError, PoolFullError, UnknownAgentError } from '../core/errors.js';

type TRPCCode = TRPCError['code'];

const CODES: Record<string, TRPCCode> = {
  pool_full: 'CONFLICT',
  unknown_agent: 'NOT_FOUND',
  forbidden: 'FORBIDDEN',
  driver_error: 'BAD_GATEWAY',
};

/** The one mapping of pool errors to tRPC codes; the data rides along in the error shape. */
export function toTRPCError(error: PoolError): TRPCError {
  return new TRPCError({ code: CODES[error.code] ?? 'INTERNAL_SERVER_ERROR', message: error.message, cause: error });
}

/** The data of a pool error as the socket's clients receive it, so the SDK can rebuild the typed error. */
export type PoolErrorData =
  | { code: 'pool_full'; agent: string; waitedSeconds?: number; queueFull?: boolean }
  | { code: 'forbidden'; agent: string }
  | { code: 'unknown_agent'; agent: string; known: string[] }
  | { code: 'driver_error'; argv: string[]; exitCode: number | null; stderr: string };

export function poolErrorData(cause: unknown): PoolErrorData | null {
  if (!(cause instanceof PoolError)) return null;
  if (cause instanceof UnknownAgentError) return { code: 'unknown_agent', agent: cause.agent, known: [...cause.known] };
  if (cause instanceof DriverError) return { code: 'driver_error', argv: [...cause.argv], exitCode: cause.exitCode ?? null, stderr: cause.stderr };
  if (cause instanceof PoolFullError) return { code: 'pool_full', agent: cause.agent, ...cause.details };
  return { code: 'forbidden', agent: (cause as PoolError & { agent: string }).agent };
}

/** Zod's issues of a rejected input, as `path: message` lines. */
export function inputIssues(cause: unknown): string[] | null {
  const issues = (cause as { issues?: unknown } | undefined)?.issues;
  if (!Array.isArray(issues)) return null;
  return issues.map((issue: { path?: PropertyKey[]; message?: string }) => issue.message ?? 'invalid input');
}

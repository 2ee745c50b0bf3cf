import type { ForbiddenReply, InternalErrorReply, PoolFullReason, PoolFullReply, UnknownAgentReply } from './api.js';
import { formatBytes } from './bytes.js';

/**
 * The pool's errors: thrown by the daemon, carried over the socket as data, rebuilt by the SDK so
 * scripts can `instanceof` them. Each kind has one entry in KINDS below: the reply the bridge and
 * `poolctl --json` give, the tRPC code, the data the socket carries and how the SDK rebuilds it,
 * and the outcome label of the metrics. Nobody parses their messages.
 */
export abstract class PoolError extends Error {
  abstract readonly code: PoolErrorCode;
}

export interface PoolFullDetails {
  /** The request waited this long for a slot (`wait_seconds`) before giving up. */
  readonly waitedSeconds?: number;
  /** The request would have waited, but QUEUE_MAX agents already were. */
  readonly queueFull?: boolean;
  /** What was short, when it was not a slot: see PoolFullReason. */
  readonly reason?: PoolFullReason;
  /**
   * Under a memory budget, what the agent is expected to need (poolctl start says from it what is
   * short), and with `too_large` the whole budget, in bytes. Carried on the socket only: the
   * bridge's reply keeps the SPEC's shape.
   */
  readonly needsBytes?: number;
  readonly budgetBytes?: number;
}

export class PoolFullError extends PoolError {
  readonly code = 'pool_full';
  constructor(
    readonly agent: string,
    readonly details: PoolFullDetails = {},
  ) {
    super(poolFullMessage(agent, details));
    this.name = 'PoolFullError';
  }
}

function poolFullMessage(agent: string, details: PoolFullDetails): string {
  if (details.queueFull) return 'all agents recently active and the wait queue is full, try again later';
  if (details.waitedSeconds !== undefined) return `no slot came free within ${details.waitedSeconds} s: all agents recently active, try again later`;
  switch (details.reason) {
    case 'too_large':
      return `${agent} is expected to need ${formatBytes(details.needsBytes ?? 0)}, more than the whole MEMORY_BUDGET of ${formatBytes(details.budgetBytes ?? 0)}: it cannot start under this budget`;
    case 'memory':
      return `not enough memory for ${agent} within MEMORY_BUDGET, and evicting the agents that may be evicted would not free enough; try again later`;
    case 'memory_pressure':
      return 'the host is short of memory (MemAvailable below MEMORY_PRESSURE_MIN): no new start for now, try again later';
    case undefined:
      return 'all agents recently active, try again later';
  }
}

export class UnknownAgentError extends PoolError {
  readonly code = 'unknown_agent';
  constructor(
    readonly agent: string,
    readonly known: readonly string[],
    /** Where the name was looked for, when that is not the compose project (the process roster's path). */
    readonly where?: string,
  ) {
    super(`unknown agent ${JSON.stringify(agent)}${where === undefined ? '' : ` (not in ${where})`}; known agents: ${known.join(', ') || '(none)'}`);
    this.name = 'UnknownAgentError';
  }
}

export class ForbiddenAgentError extends PoolError {
  readonly code = 'forbidden';
  constructor(readonly agent: string) {
    super('infrastructure service');
    this.name = 'ForbiddenAgentError';
  }
}

/** Docker (or the process backend) failed: what was run, how it ended, and what it said. */
export class DriverError extends PoolError {
  readonly code = 'driver_error';
  constructor(
    message: string,
    readonly argv: readonly string[],
    readonly exitCode: number | undefined,
    readonly stderr: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'DriverError';
  }
}

/** The project's definition does not load (compose's message): no start can succeed, so none was tried and nobody evicted. */
export class ProjectInvalidError extends PoolError {
  readonly code = 'project_invalid';
  constructor(
    readonly agent: string,
    readonly reason: string,
  ) {
    super(reason);
    this.name = 'ProjectInvalidError';
  }
}

/** The agent was found in transition round after round (others kept starting and stopping it): asking again is the answer. */
export class ChangingStateError extends PoolError {
  readonly code = 'changing_state';
  constructor(readonly agent: string) {
    super(`${agent} kept changing state; try again`);
    this.name = 'ChangingStateError';
  }
}

/** The daemon is stopping: a request waiting for a slot is answered with this instead of a slot. */
export class ShuttingDownError extends PoolError {
  readonly code = 'shutting_down';
  constructor(readonly agent: string) {
    super(`${agent}: the pool manager is shutting down`);
    this.name = 'ShuttingDownError';
  }
}

/** The client stopped waiting for its answer (hung up while its request waited for a slot): nobody to answer, so no kind of its own. */
export class ClientGoneError extends Error {
  constructor(agent: string) {
    super(`${agent}: the client went away while waiting for a slot`);
    this.name = 'ClientGoneError';
  }
}

/** The data of a pool error as the socket carries it, the `code` first. */
export type PoolErrorData =
  | ({ code: 'pool_full'; agent: string } & PoolFullDetails)
  | { code: 'unknown_agent'; agent: string; known: string[]; where?: string }
  | { code: 'forbidden'; agent: string }
  | { code: 'changing_state'; agent: string }
  | { code: 'shutting_down'; agent: string }
  | { code: 'project_invalid'; agent: string; reason: string }
  | { code: 'driver_error'; argv: string[]; exitCode: number | null; stderr: string };

export type PoolErrorCode = PoolErrorData['code'];
export type PoolErrorReply = PoolFullReply | UnknownAgentReply | ForbiddenReply | InternalErrorReply;
/** tRPC's code for each kind (a subset of TRPC_ERROR_CODE_KEY, spelt here so the contract imports no server). */
type RpcCode = 'CONFLICT' | 'NOT_FOUND' | 'FORBIDDEN' | 'BAD_GATEWAY' | 'SERVICE_UNAVAILABLE' | 'PRECONDITION_FAILED';

interface Kind<E extends PoolError, D extends PoolErrorData> {
  readonly rpc: RpcCode;
  /** The bridge's reply (SPEC §2): an internal failure the caller cannot fix is `status: "error"`. */
  reply(error: E, agent: string): PoolErrorReply;
  data(error: E): D;
  rebuild(data: D, message: string): E;
}

type DataOf<C extends PoolErrorCode> = Extract<PoolErrorData, { code: C }>;
const internal = (error: PoolError, agent: string): InternalErrorReply => ({ status: 'error', agent, error: error.message });
const agentOnly = <C extends 'forbidden' | 'changing_state' | 'shutting_down'>(code: C) => (error: { agent: string }) => ({ code, agent: error.agent }) as DataOf<C>;

interface ErrorOf {
  pool_full: PoolFullError;
  unknown_agent: UnknownAgentError;
  forbidden: ForbiddenAgentError;
  driver_error: DriverError;
  project_invalid: ProjectInvalidError;
  changing_state: ChangingStateError;
  shutting_down: ShuttingDownError;
}

const KINDS: { readonly [C in PoolErrorCode]: Kind<ErrorOf[C], DataOf<C>> } = {
  pool_full: {
    rpc: 'CONFLICT',
    reply: (error) => ({
      status: 'pool_full',
      error: error.message,
      ...(error.details.waitedSeconds !== undefined && { waited_seconds: error.details.waitedSeconds }),
      ...(error.details.queueFull && { queue_full: true }),
      ...(error.details.reason !== undefined && { reason: error.details.reason }),
    }),
    data: (error) => ({ code: 'pool_full', agent: error.agent, ...error.details }),
    rebuild: ({ code: _code, agent, ...details }) => new PoolFullError(agent, details),
  },
  unknown_agent: {
    rpc: 'NOT_FOUND',
    reply: (error, agent) => ({ status: 'unknown_agent', agent, error: error.message, known: [...error.known] }),
    data: (error) => ({ code: 'unknown_agent', agent: error.agent, known: [...error.known], ...(error.where !== undefined && { where: error.where }) }),
    rebuild: (data) => new UnknownAgentError(data.agent, data.known, data.where),
  },
  forbidden: {
    rpc: 'FORBIDDEN',
    reply: (error, agent) => ({ status: 'forbidden', agent, error: error.message }),
    data: agentOnly('forbidden'),
    rebuild: (data) => new ForbiddenAgentError(data.agent),
  },
  driver_error: {
    rpc: 'BAD_GATEWAY',
    reply: internal,
    data: (error) => ({ code: 'driver_error', argv: [...error.argv], exitCode: error.exitCode ?? null, stderr: error.stderr }),
    rebuild: (data, message) => new DriverError(message, data.argv, data.exitCode ?? undefined, data.stderr),
  },
  project_invalid: {
    rpc: 'PRECONDITION_FAILED',
    reply: internal,
    data: (error) => ({ code: 'project_invalid', agent: error.agent, reason: error.reason }),
    rebuild: (data) => new ProjectInvalidError(data.agent, data.reason),
  },
  changing_state: {
    rpc: 'CONFLICT',
    reply: internal,
    data: agentOnly('changing_state'),
    rebuild: (data) => new ChangingStateError(data.agent),
  },
  shutting_down: {
    rpc: 'SERVICE_UNAVAILABLE',
    reply: internal,
    data: agentOnly('shutting_down'),
    rebuild: (data) => new ShuttingDownError(data.agent),
  },
};

function kindOf(error: PoolError): Kind<PoolError, PoolErrorData> {
  return KINDS[error.code] as unknown as Kind<PoolError, PoolErrorData>;
}

/** The reply the bridge (and `poolctl --json`) gives for a pool error; undefined for anything else, which is a bug. */
export function replyForError(error: unknown, agent: string): PoolErrorReply | undefined {
  return error instanceof PoolError ? kindOf(error).reply(error, agent) : undefined;
}

/** The tRPC code of a pool error. */
export function rpcCodeOf(error: PoolError): RpcCode {
  return kindOf(error).rpc;
}

/** The data of a pool error as the socket's clients receive it; null for anything else. */
export function poolErrorData(error: unknown): PoolErrorData | null {
  return error instanceof PoolError ? kindOf(error).data(error) : null;
}

/** The typed error the daemon threw, from the data and message the socket carried; undefined for data of no known kind. */
export function poolErrorFromData(data: { readonly code?: unknown } | null | undefined, message: string): PoolError | undefined {
  const kind = typeof data?.code === 'string' && Object.hasOwn(KINDS, data.code) ? (KINDS[data.code as PoolErrorCode] as unknown as Kind<PoolError, PoolErrorData>) : undefined;
  return kind?.rebuild(data as PoolErrorData, message);
}

/**
 * The outcome label of an operation that ended in an error (metrics): the refusals the SPEC names
 * are labelled as their reply's status (`pool_full`, `unknown_agent`, `forbidden`), Docker's
 * failures `error` as their reply is, and the other internal failures by their own kind, so that
 * `changing_state` or `shutting_down` are not counted as Docker's. Anything that is not a pool
 * error is a bug: `internal_error`.
 */
export function outcomeOfError(error: unknown): string {
  if (!(error instanceof PoolError)) return 'internal_error';
  return error.code === 'driver_error' ? 'error' : error.code;
}

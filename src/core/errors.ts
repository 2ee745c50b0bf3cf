/**
 * Errors that carry data. One function maps them to tRPC codes, one to bridge replies and one
 * top-level catch in the CLI to exit codes; nobody parses their messages.
 */
export abstract class PoolError extends Error {
  abstract readonly code: string;
}

export interface PoolFullDetails {
  /** The request waited this long for a slot (`wait_seconds`) before giving up. */
  readonly waitedSeconds?: number;
  /** The request would have waited, but QUEUE_MAX agents already were. */
  readonly queueFull?: boolean;
}

export class PoolFullError extends PoolError {
  readonly code = 'pool_full';
  constructor(
    readonly agent: string,
    readonly details: PoolFullDetails = {},
  ) {
    super(
      details.queueFull ? 'all agents recently active and the wait queue is full, try again later'
      : details.waitedSeconds !== undefined ? `no slot came free within ${details.waitedSeconds} s: all agents recently active, try again later`
      : 'all agents recently active, try again later',
    );
    this.name = 'PoolFullError';
  }
}

export class UnknownAgentError extends PoolError {
  readonly code = 'unknown_agent';
  constructor(
    readonly agent: string,
    readonly known: readonly string[],
  ) {
    super(`unknown agent ${JSON.stringify(agent)}; known agents: ${known.join(', ') || '(none)'}`);
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

/** A Docker (or other backend) command failed: what was run, how it ended, and what it said. */
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

/** The client stopped waiting for its answer (hung up while its request waited for a slot): nobody to answer. */
export class ClientGoneError extends Error {
  constructor(agent: string) {
    super(`${agent}: the client went away while waiting for a slot`);
    this.name = 'ClientGoneError';
  }
}

/**
 * The one mapping of pool errors to the bridge's reply objects (SPEC §2), which `poolctl --json`
 * prints too; undefined for anything that is not a pool error.
 */
export function replyForError(error: unknown, agent: string): Record<string, unknown> | undefined {
  if (error instanceof PoolFullError) {
    return {
      status: 'pool_full',
      error: error.message,
      ...(error.details.waitedSeconds !== undefined && { waited_seconds: error.details.waitedSeconds }),
      ...(error.details.queueFull && { queue_full: true }),
    };
  }
  if (error instanceof UnknownAgentError) return { status: 'unknown_agent', agent, error: error.message, known: error.known };
  if (error instanceof ForbiddenAgentError) return { status: 'forbidden', agent, error: error.message };
  if (error instanceof DriverError) return { status: 'error', agent, error: error.message };
  return undefined;
}

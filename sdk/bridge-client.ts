import type * as z from 'zod';
import {
  AvailableReply,
  ErrorReply,
  HealthReply,
  HeartbeatReply,
  ReleaseReply,
  RequestReply,
  StatusReply,
} from '../src/contract/api.js';

/** The pool manager could not be reached (refused, DNS, reset). */
export class BridgeUnreachableError extends Error {
  override name = 'BridgeUnreachableError';
  constructor(
    readonly url: string,
    options?: { cause?: unknown },
  ) {
    super(`cannot reach the pool manager at ${url}: is openclaw-pool running, and are POOL_HOST/POOL_PORT right?`, options);
  }
}

export class BridgeTimeoutError extends Error {
  override name = 'BridgeTimeoutError';
  constructor(
    readonly url: string,
    readonly timeoutMs: number,
  ) {
    super(`the pool manager at ${url} did not answer within ${timeoutMs / 1000} s`);
  }
}

/** A non-200 answer: a protocol error (400, 401, 404, 405, 413) or a server failure (5xx). */
export class BridgeHttpError extends Error {
  override name = 'BridgeHttpError';
  constructor(
    readonly url: string,
    readonly status: number,
    readonly body: string,
  ) {
    const parsed = ErrorReply.safeParse(safeJson(body));
    super(`${url} answered HTTP ${status}${parsed.success ? `: ${parsed.data.error}` : ''}`);
  }
}

/** A 200 whose body is not the JSON the contract promises. */
export class BridgeProtocolError extends Error {
  override name = 'BridgeProtocolError';
  constructor(
    readonly url: string,
    readonly body: string,
    reason: string,
  ) {
    super(`unexpected reply from ${url}: ${reason}`);
  }
}

export interface BridgeClientOptions {
  /** Default: http://$POOL_HOST:$POOL_PORT, i.e. http://pool-manager:19000. */
  readonly baseUrl?: string;
  /** Default: $POOL_TOKEN; sent as a bearer token on POSTs. */
  readonly token?: string;
  /** Default: $AGENT_ID; the `requested_by` of requests and the agent of `heartbeat()`. */
  readonly agentId?: string;
  /** Per call; default 10 s (a start with eviction takes a few seconds). */
  readonly timeoutMs?: number;
  readonly fetch?: typeof fetch;
}

const DEFAULT_TIMEOUT_MS = 10_000;

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * A typed client of the HTTP bridge, for code running in agent containers. Replies are the SPEC §2
 * objects, checked against the contract; refusals (`pool_full`, `unknown_agent`, ...) are replies,
 * as on the wire. Faults are typed errors: unreachable, timeout, HTTP error, malformed reply.
 */
export interface BridgeClient {
  /** The bridge this client talks to, without a trailing slash. */
  readonly baseUrl: string;
  /** `requestedBy` defaults to the client's agent id; `waitSeconds` is added to the call's timeout. */
  request(agent: string, opts?: { requestedBy?: string; waitSeconds?: number }): Promise<RequestReply>;
  release(agent: string): Promise<ReleaseReply>;
  /** `busySeconds`: protect the agent from eviction that long from now, for a long task (0 ends the hold). */
  heartbeat(agent?: string, opts?: { busySeconds?: number }): Promise<HeartbeatReply>;
  status(): Promise<StatusReply>;
  available(): Promise<AvailableReply>;
  health(): Promise<HealthReply>;
}

export function createBridgeClient(options: BridgeClientOptions = {}): BridgeClient {
  const env = typeof process === 'undefined' ? {} : process.env;
  const baseUrl = (options.baseUrl ?? `http://${env.POOL_HOST || 'pool-manager'}:${env.POOL_PORT || '19000'}`).replace(/\/+$/, '');
  const token = options.token ?? (env.POOL_TOKEN || undefined);
  const agentId = options.agentId ?? (env.AGENT_ID || undefined);
  const baseTimeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const fetchImpl = options.fetch ?? globalThis.fetch;

  /** `extraMs`: a request that may wait for a slot gets that long on top of the usual timeout. */
  async function call<S extends z.ZodType>(schema: S, method: 'GET' | 'POST', path: string, body?: object, extraMs = 0): Promise<z.infer<S>> {
    const url = `${baseUrl}${path}`;
    const timeoutMs = baseTimeoutMs + extraMs;
    const headers: Record<string, string> = {};
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (body !== undefined && token !== undefined) headers.Authorization = `Bearer ${token}`;
    const signal = AbortSignal.timeout(timeoutMs);
    let text: string;
    let status: number;
    try {
      const response = await fetchImpl(url, { method, headers, signal, ...(body !== undefined && { body: JSON.stringify(body) }) });
      status = response.status;
      text = await response.text();
    } catch (error) {
      if (signal.aborted) throw new BridgeTimeoutError(url, timeoutMs);
      throw new BridgeUnreachableError(url, { cause: error });
    }
    if (status !== 200) throw new BridgeHttpError(url, status, text);
    const json = safeJson(text);
    if (json === undefined) throw new BridgeProtocolError(url, text, 'not JSON');
    const parsed = schema.safeParse(json);
    if (!parsed.success) throw new BridgeProtocolError(url, text, parsed.error.issues[0]?.message ?? 'wrong shape');
    return parsed.data;
  }

  return {
    baseUrl,
    request: (agent, opts = {}) => {
      const requestedBy = opts.requestedBy ?? agentId;
      return call(RequestReply, 'POST', '/request', {
        agent,
        ...(requestedBy !== undefined && { requested_by: requestedBy }),
        ...(opts.waitSeconds !== undefined && { wait_seconds: opts.waitSeconds }),
      }, (opts.waitSeconds ?? 0) * 1000);
    },
    release: (agent) => call(ReleaseReply, 'POST', '/release', { agent }),
    heartbeat: (agent = agentId, opts = {}) => {
      if (agent === undefined) throw new TypeError('heartbeat needs an agent (or AGENT_ID)');
      return call(HeartbeatReply, 'POST', '/heartbeat', { agent, ...(opts.busySeconds !== undefined && { busy_seconds: opts.busySeconds }) });
    },
    status: () => call(StatusReply, 'GET', '/status'),
    available: () => call(AvailableReply, 'GET', '/available'),
    health: () => call(HealthReply, 'GET', '/health'),
  };
}

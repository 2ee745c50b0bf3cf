import { timingSafeEqual } from 'node:crypto';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import { replyForError } from '../contract/errors.js';
import { inputIssues } from '../rpc/errors.js';
import type { Context } from '../rpc/context.js';
import { EventsInput, HeartbeatInput, ReleaseInput, RequestInput } from '../contract/index.js';
import { tokenDigest } from '../contract/tokens.js';
import { type Caller, type CallerAction, type CallerDirectory, type Credentials, type Refusal, checkCredentials, identifyCaller, isRefusal, judgeCall } from '../core/callers.js';
import { type CallOptions, operations } from '../rpc/operations.js';
import { send, write } from './json.js';
import type { ConnectionLimit } from './connections.js';
import type { LiveStreams } from './live.js';
import type { PreparedReply } from './page.js';

type Method = 'GET' | 'POST';
interface Route {
  /** The procedure's input schema and operation, called directly (see src/rpc/operations.ts for why). */
  readonly input?: { safeParse(body: unknown): { success: true; data: unknown } | { success: false; error: unknown } };
  readonly run: (ctx: Context, input: never, call?: CallOptions) => unknown;
  /** A POST that acts on its `agent`: what CALLER_POLICY=agents judges it as. */
  readonly action?: CallerAction;
  /** The operation may take long (a request waiting for a slot) and should know when the client hangs up. */
  readonly abortable?: true;
  /** The operation answers a document of its own type (`{content_type, text}`) instead of JSON. */
  readonly document?: true;
}

/** A route that writes its own reply (the status page, the live stream) rather than a JSON value. */
interface RawRoute {
  readonly serve: (options: BridgeOptions, res: ServerResponse) => void;
}

const statusPage: RawRoute = { serve: (options, res) => sendPrepared(res, options.page) };

/**
 * The bridge is a route table onto the router's procedures: it parses HTTP, runs the operation the
 * socket's procedure runs, with the same input schema, and renders the outcome as SPEC §2 says.
 * It implements no operation.
 */
const ROUTES: Readonly<Record<string, { readonly GET?: Route | RawRoute; readonly POST?: Route }>> = {
  '/request': { POST: { input: RequestInput, run: operations.request, abortable: true, action: 'request' } },
  '/release': { POST: { input: ReleaseInput, run: operations.release, action: 'release' } },
  '/heartbeat': { POST: { input: HeartbeatInput, run: operations.heartbeat, action: 'heartbeat' } },
  '/status': { GET: { run: operations.status } },
  '/available': { GET: { run: operations.available } },
  '/health': { GET: { run: operations.health } },
  '/events': { GET: { input: EventsInput, run: operations.events } },
  // Open like every GET (Prometheus scrapes without credentials); it names no agent and no secret.
  '/metrics': { GET: { run: (ctx) => operations.metrics(ctx, { format: 'text' }), document: true } },
  '/': { GET: statusPage },
  '/ui': { GET: statusPage },
  '/events/stream': { GET: { serve: (options, res) => options.live.serve(res) } },
};

export interface BridgeOptions {
  /** The same context the socket's procedures get. */
  readonly context: Context;
  readonly maxBodySize: number;
  /** When it returns a token, POST endpoints require `Authorization: Bearer <token>` (read per request: SIGHUP may change it). */
  readonly token: () => string | undefined;
  /**
   * CALLER_POLICY=agents: who each POST comes from (src/core/callers.ts), read per request (the
   * listing and SIGHUP change it); undefined, any caller may act for any agent behind `token`.
   */
  readonly callers?: () => CallerDirectory | undefined;
  /** Each identified POST, by who called (`stranger` for any stranger), how that was known, and its verdict. */
  readonly onCaller?: (caller: string, via: string, verdict: CallerVerdict) => void;
  /** A verified agent's body claimed another `requested_by`: said once per caller and claim. */
  readonly onClaimIgnored?: (caller: string, claimed: string) => void;
  readonly onError: (what: string, error: unknown) => void;
  /** `GET /` and `GET /ui`: the status page, or why it is unavailable. */
  readonly page: PreparedReply;
  /** `GET /events/stream`, shared by every bridge address so its cap holds for the daemon. */
  readonly live: LiveStreams;
  /** The count of open connections, shared by every bridge address as their descriptors are. */
  readonly connections: ConnectionLimit;
  /**
   * Settles once the daemon has reconciled with Docker for the first time. The bridge listens
   * before that (systemd hears READY then), but POSTs wait for it, as the socket's calls do: a
   * decision made from state.json alone would not count containers Docker restarted on its own.
   */
  readonly ready?: Promise<void>;
}

/** Slow or idle clients must not hold connections: whole headers within 10 s, a whole request within 30 s. */
const HEADERS_TIMEOUT_MS = 10_000;
const REQUEST_TIMEOUT_MS = 30_000;
/**
 * How often Node checks those two timeouts. Its default (30 s) would let a slowloris client hold a
 * connection for up to 40 s and a stalled body for up to 60 s; checked every second they hold.
 */
const TIMEOUT_CHECK_INTERVAL_MS = 1_000;
const KEEP_ALIVE_TIMEOUT_MS = 5_000;
const MAX_HEADERS = 64;

/** The client went away (or was cut off by a timeout) before its body was read: nobody to answer, nothing to log. */
class ClientGone extends Error {}

/** What became of an identified POST: run, refused by the policy, or refused before it (401, 403). */
export type CallerVerdict = 'allowed' | 'forbidden' | 'unauthorized' | 'stranger';

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export function createBridgeServer(options: BridgeOptions): Server {
  const ctx = options.context;
  const server = createServer({ maxHeaderSize: 16 * 1024, connectionsCheckingInterval: TIMEOUT_CHECK_INTERVAL_MS }, (req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (error instanceof ClientGone) {
        res.destroy();
        return;
      }
      options.onError('bridge request', error);
      if (!res.headersSent) send(res, 500, { error: 'internal error' });
      else res.destroy();
    });
  });
  server.headersTimeout = HEADERS_TIMEOUT_MS;
  server.requestTimeout = REQUEST_TIMEOUT_MS;
  server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
  server.maxHeadersCount = MAX_HEADERS;
  options.connections.guard(server);
  // Once listening, an 'error' is a failed accept (EMFILE, ENFILE): the server keeps listening and
  // takes the next connection when a descriptor is free, so it is logged, not fatal.
  server.on('error', (error) => {
    if (server.listening) options.onError('accepting a bridge connection', error);
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const path = normalizePath(req.url ?? '/');
      const route = ROUTES[path];
      if (route === undefined) throw new HttpError(404, 'not found');
      const handler = route[req.method as Method];
      if (handler === undefined) {
        throw new HttpError(405, `method ${req.method} not allowed on ${path}`, { Allow: Object.keys(route).join(', ') });
      }
      // Raw routes are GETs only (ROUTES' type says so): they read the pool and take no body or token.
      if ('serve' in handler) {
        req.resume();
        return handler.serve(options, res);
      }
      let body: unknown;
      let caller: Caller | undefined;
      if (req.method === 'POST') {
        // Credentials before the body: a refused POST reads nothing.
        const credentials = authenticate(req);
        body = parseJsonObject(await readBody(req, options.maxBodySize));
        await options.ready;
        // After the first reconcile: before it, no container's address is known, and every agent would be a stranger.
        if (credentials !== undefined) caller = identify(req, credentials);
      } else {
        req.resume();
        // A GET's input is its query string (`/events?agent=cfo&limit=20`).
        if (handler.input !== undefined) body = queryObject(req.url ?? '');
      }
      const reply = await call(handler, body, handler.abortable ? clientGone(res) : undefined, caller);
      if (handler.document === undefined) send(res, 200, reply);
      else write(res, 200, (reply as { content_type: string }).content_type, (reply as { text: string }).text);
    } catch (error) {
      if (!(error instanceof HttpError)) throw error;
      const close = error.status === 413;
      send(res, error.status, { error: error.message }, { ...error.headers, ...(close && { Connection: 'close' }) });
      // The rest of an oversized body is never read: the connection goes once the reply is out.
      if (close) res.once('finish', () => req.destroy());
    }
  }

  /** A POST's credentials (401 when they are wrong or missing); undefined under CALLER_POLICY=open, where POOL_TOKEN alone is checked. */
  function authenticate(req: IncomingMessage): Credentials | undefined {
    const directory = options.callers?.();
    if (directory === undefined) {
      const token = options.token();
      if (token !== undefined && !authorized(req.headers.authorization, tokenDigest(token))) {
        throw new HttpError(401, 'unauthorized: send Authorization: Bearer <POOL_TOKEN>', { 'WWW-Authenticate': 'Bearer' });
      }
      return undefined;
    }
    // The socket's peer, never X-Forwarded-For or any other header the caller writes.
    const credentials = checkCredentials(req.socket.remoteAddress ?? '', bearerOf(req.headers.authorization), directory);
    return isRefusal(credentials) ? refuse(credentials) : credentials;
  }

  /** Who a POST whose credentials passed comes from, or the 403 of a stranger; undefined if a reload made the policy `open` meanwhile. */
  function identify(req: IncomingMessage, credentials: Credentials): Caller | undefined {
    const directory = options.callers?.();
    if (directory === undefined) return undefined;
    const caller = identifyCaller(req.socket.remoteAddress ?? '', credentials, directory);
    return isRefusal(caller) ? refuse(caller) : caller;
  }

  function refuse(refusal: Refusal): never {
    options.onCaller?.('stranger', 'none', refusal.status === 401 ? 'unauthorized' : 'stranger');
    throw new HttpError(refusal.status, refusal.error, refusal.status === 401 ? { 'WWW-Authenticate': 'Bearer' } : {});
  }

  /** The policy's verdict on a parsed POST: the SPEC's `forbidden` reply, or its input under the caller's own name. */
  function judge(action: CallerAction, input: { agent: string; requested_by?: string }, caller: Caller): { forbidden: unknown } | { input: unknown } {
    const name = caller.kind === 'agent' || caller.kind === 'infra' ? caller.name : 'host';
    const verdict = judgeCall(caller, action, input, (agent) => ctx.pool.status().running.find((r) => r.id === agent)?.requested_by);
    options.onCaller?.(name, caller.kind === 'stranger' ? 'none' : caller.via, 'refused' in verdict ? 'forbidden' : 'allowed');
    if ('refused' in verdict) return { forbidden: { status: 'forbidden', agent: input.agent, error: verdict.refused } };
    if (verdict.ignoredClaim !== undefined) options.onClaimIgnored?.(name, verdict.ignoredClaim);
    return { input: verdict.requestedBy === undefined ? input : { ...input, requested_by: verdict.requestedBy } };
  }

  async function call(route: Route, body: unknown, signal: AbortSignal | undefined, caller: Caller | undefined): Promise<unknown> {
    let input: unknown;
    if (route.input !== undefined) {
      const parsed = route.input.safeParse(body);
      if (!parsed.success) throw new HttpError(400, inputIssues(parsed.error)?.[0] ?? 'invalid request');
      input = parsed.data;
    }
    if (caller !== undefined && route.action !== undefined) {
      const verdict = judge(route.action, input as { agent: string; requested_by?: string }, caller);
      if ('forbidden' in verdict) return verdict.forbidden;
      input = verdict.input;
    }
    const via = caller === undefined || caller.kind === 'stranger' ? undefined : caller.via;
    try {
      return await route.run(ctx, input as never, { signal, via });
    } catch (error) {
      // Nobody to answer: the client hung up while its request waited.
      if (signal?.aborted) throw new ClientGone('client went away');
      const agent = (body as { agent?: unknown } | undefined)?.agent;
      const reply = replyForError(error, typeof agent === 'string' ? agent : '');
      if (reply === undefined) throw error;
      return reply;
    }
  }

  return server;
}

/** Aborts when the client hangs up before its reply is out (a request waiting for a slot then leaves the line). */
function clientGone(res: ServerResponse): AbortSignal {
  const controller = new AbortController();
  res.once('close', () => {
    if (!res.writableFinished) controller.abort();
  });
  return controller.signal;
}

function queryObject(url: string): Record<string, string> {
  const at = url.indexOf('?');
  return at === -1 ? {} : Object.fromEntries(new URLSearchParams(url.slice(at + 1)));
}

/** `/status/?x=1` → `/status`: trailing slashes and query strings are accepted. */
function normalizePath(url: string): string {
  const path = url.split('?', 1)[0] ?? '/';
  return path.length > 1 ? path.replace(/\/+$/, '') || '/' : path;
}

function readBody(req: IncomingMessage, limit: number): Promise<string> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    return Promise.reject(new HttpError(413, `request body over ${limit} bytes`));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.off('data', onData);
        req.pause();
        reject(new HttpError(413, `request body over ${limit} bytes`));
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.once('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    // A client that hangs up mid-body (or is cut off by requestTimeout) is not a daemon error.
    req.once('error', (error) => reject(req.complete ? error : new ClientGone('client went away')));
    req.once('close', () => {
      if (!req.complete) reject(new ClientGone('client went away'));
    });
  });
}

function parseJsonObject(text: string): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new HttpError(400, text.trim() === '' ? 'request body required: a JSON object' : 'malformed JSON in request body');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new HttpError(400, 'request body must be a JSON object');
  return value;
}

/** Compares digests in constant time, so the token cannot be guessed byte by byte from timings. */
function authorized(header: string | undefined, expected: Buffer): boolean {
  const bearer = bearerOf(header);
  return bearer !== undefined && timingSafeEqual(tokenDigest(bearer), expected);
}

function bearerOf(header: string | undefined): string | undefined {
  return /^Bearer\s+(.+)$/i.exec(header ?? '')?.[1]?.trim();
}

function sendPrepared(res: ServerResponse, reply: PreparedReply): void {
  res.writeHead(reply.status, reply.headers);
  res.end(reply.body);
}

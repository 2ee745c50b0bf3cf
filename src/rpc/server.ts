import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import { type AnyTRPCRouter, TRPCError, callTRPCProcedure, getErrorShape, getTRPCErrorFromUnknown, type inferRouterContext, transformTRPCResponse } from '@trpc/server';
import { createHTTPHandler } from '@trpc/server/adapters/standalone';
import { getHTTPStatusCode } from '@trpc/server/http';
import { oncePerFrozenValue } from './frozen.js';

export interface RpcServerOptions<TRouter extends AnyTRPCRouter> {
  readonly router: TRouter;
  readonly createContext: () => Promise<inferRouterContext<TRouter>>;
  /** Every error a call ends with; `path` is undefined when the request named no procedure. */
  readonly onError: (error: TRPCError, path: string | undefined) => void;
}

type LeanType = 'query' | 'mutation';
const LEAN_TYPE_OF_METHOD: Readonly<Record<string, LeanType>> = { GET: 'query', POST: 'mutation' };

/** A call the short road answers: its procedure, type, and (queries) the query string holding its input. */
interface LeanCall {
  readonly path: string;
  readonly type: LeanType;
  readonly params: URLSearchParams | undefined;
}

/**
 * The socket's HTTP server: tRPC's own node handler, with a short road for the calls the SDK and
 * stock `httpLink` clients make — one query by GET or one mutation by JSON POST, not batched.
 * Those are answered with tRPC's own `callTRPCProcedure`, `getErrorShape`, `getHTTPStatusCode` and
 * `transformTRPCResponse`, so the status and body are the bytes its handler writes
 * (test/rpc/socket-wire.docker.test.ts compares them), but without the Fetch `Request`, the
 * `Response`, the web-stream pipe and the chunked body the handler builds per call, which made a
 * reply cost 2.5× a plain node:http one (bench/README.md, target 3). Everything else (batches,
 * subscriptions, streaming, wrong methods, unknown paths, other content types) goes to tRPC's handler.
 */
// One closure, past the usual length: the short road's steps (leanCall, readInput, answer) share
// what is worked out once per server from the router (its config, its flat procedure map, the
// cached reply encoding), and each of them is short.
export function createRpcServer<TRouter extends AnyTRPCRouter>(opts: RpcServerOptions<TRouter>): Server {
  const { router } = opts;
  const config = router._def._config;
  // At run time tRPC keeps a router's procedures in one flat map by dotted path, which its own
  // handler looks paths up in; the type describes the nested record instead.
  const procedures = router._def.procedures as unknown as Readonly<Record<string, { _def: { type: string } } | undefined>>;
  const decoder = new TextDecoder();
  // superjson walks the whole reply (≈ 17 µs for a three-agent status): once per frozen reply is enough.
  const resultJson = oncePerFrozenValue((data) => JSON.stringify(transformTRPCResponse(config, { result: { data } })));
  const stock = createHTTPHandler({
    router,
    createContext: () => opts.createContext(),
    onError: ({ error, path }) => opts.onError(error, path),
  });

  /** The procedure path and type when the request is a single call the short road answers exactly like tRPC. */
  function leanCall(req: IncomingMessage): LeanCall | undefined {
    const type = LEAN_TYPE_OF_METHOD[req.method ?? ''];
    const url = req.url ?? '';
    const mark = url.indexOf('?');
    const path = url.slice(1, mark === -1 ? undefined : mark);
    if (type === undefined || !url.startsWith('/') || procedures[path]?._def.type !== type) return undefined;
    const contentType = req.headers['content-type'];
    if (contentType === undefined ? type !== 'query' : contentType.split(';', 1)[0]!.trim().toLowerCase() !== 'application/json') return undefined;
    if (req.headers['trpc-accept'] !== undefined || req.headers.accept?.includes('application/jsonl')) return undefined;
    const params = mark === -1 ? undefined : new URLSearchParams(url.slice(mark + 1));
    // A query's only parameter is its input; anything else (batch, connectionParams, ...) is tRPC's to read.
    if (params !== undefined && (type === 'mutation' || [...params.keys()].some((key) => key !== 'input'))) return undefined;
    return { path, type, params };
  }

  function readBody(req: IncomingMessage): Promise<string> {
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      // TextDecoder drops a leading BOM, as Fetch's `text()` does in tRPC's handler.
      req.once('end', () => resolve(decoder.decode(Buffer.concat(chunks))));
      req.once('error', reject);
    });
  }

  /** tRPC's input reading: JSON text through the router's transformer; a failure is BAD_REQUEST with the parser's message. */
  async function readInput(req: IncomingMessage, { type, params }: LeanCall): Promise<unknown> {
    try {
      const text = type === 'query' ? params?.get('input') : await readBody(req);
      return text ? config.transformer.input.deserialize(JSON.parse(text)) : undefined;
    } catch (cause) {
      throw new TRPCError({ code: 'BAD_REQUEST', message: cause instanceof Error ? cause.message : 'Invalid input', cause });
    }
  }

  function send(res: ServerResponse, status: number, body: string): void {
    res.writeHead(status, { 'content-type': 'application/json', vary: 'trpc-accept, accept', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  }

  async function answer(req: IncomingMessage, res: ServerResponse, call: LeanCall): Promise<void> {
    const { path, type } = call;
    // As in tRPC's handler, the procedure's signal aborts when the client goes away before the reply.
    const abort = new AbortController();
    res.once('close', () => {
      if (!res.writableFinished) abort.abort();
    });
    let ctx: inferRouterContext<TRouter> | undefined;
    let input: unknown;
    let inputRead: Promise<unknown> | undefined;
    try {
      ctx = await opts.createContext();
      const data: unknown = await callTRPCProcedure({
        router,
        path,
        type,
        ctx,
        signal: abort.signal,
        batchIndex: 0,
        getRawInput: () =>
          (inputRead ??= readInput(req, call).then((value) => {
            input = value;
            return value;
          })),
      });
      send(res, 200, resultJson(data));
    } catch (cause) {
      const error = getTRPCErrorFromUnknown(cause);
      opts.onError(error, path);
      const shape = getErrorShape({ config, error, type, path, input, ctx });
      send(res, getHTTPStatusCode({ error: shape }, [error]), JSON.stringify(transformTRPCResponse(config, { error: shape })));
    }
  }

  const server = createServer((req, res) => {
    const call = leanCall(req);
    if (call === undefined) {
      stock(req, res);
      return;
    }
    answer(req, res, call).catch((error: unknown) => {
      // Only formatting the error itself can land here; there is no reply left to give.
      opts.onError(getTRPCErrorFromUnknown(error), call.path);
      res.destroy();
    });
  });
  // Once listening, an 'error' is a failed accept (EMFILE, ENFILE): the server keeps listening and
  // takes the next connection when a descriptor is free, so it is reported, not fatal.
  server.on('error', (cause) => {
    if (server.listening) opts.onError(new TRPCError({ code: 'INTERNAL_SERVER_ERROR', message: `accepting a socket connection: ${cause.message}`, cause }), undefined);
  });
  return server;
}

import { type Agent, request } from 'node:http';
import { TRPCClientError, type TRPCLink } from '@trpc/client';
import { observable } from '@trpc/server/observable';
import superjson from 'superjson';
import type { AppRouter } from '../src/rpc/routers/_app.js';

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null;

/** A reply as `httpLink` reads it: the error shape (with a numeric code) or the data; undefined when it is neither. */
function decodeReply(reply: unknown): { error: Record<string, unknown> } | { data: unknown } | undefined {
  try {
    if (isObject(reply) && 'error' in reply) {
      const error: unknown = superjson.deserialize(reply.error as never);
      return isObject(error) && typeof error.code === 'number' ? { ...reply, error } : undefined;
    }
    return isObject(reply) && isObject(reply.result) ? { data: superjson.deserialize(reply.result.data as never) } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The SDK's terminating link for queries and mutations: one keep-alive node:http request per call
 * on the Unix socket, with `httpLink`'s wire (GET /<path>?input=<superjson JSON>, or POST /<path>
 * with the superjson JSON body) and its reading of replies (by the body, whatever the status).
 * It leaves out what `httpLink` over a `fetch` adds per call (two AbortControllers, a Fetch
 * Request, Headers and Response), which cost more than the round trip itself (bench/README.md,
 * target 3). Subscriptions go through `httpSubscriptionLink`.
 */
export function socketLink(socketPath: string, agent: Agent): TRPCLink<AppRouter> {
  return () =>
    ({ op }) =>
      observable((observer) => {
        // As httpLink does, even an absent input is sent, serialised ({"json":null,"meta":…}).
        const input = JSON.stringify(superjson.serialize(op.input));
        const isQuery = op.type === 'query';
        const path = isQuery ? `/${op.path}?input=${encodeURIComponent(input)}` : `/${op.path}`;
        let done = false;
        const fail = (cause: Error) => {
          done = true;
          observer.error(TRPCClientError.from(cause));
        };
        const req = request(
          { socketPath, agent, path, method: isQuery ? 'GET' : 'POST', headers: isQuery ? {} : { 'content-type': 'application/json' } },
          (res) => {
            let text = '';
            res.setEncoding('utf8');
            res.on('data', (chunk: string) => (text += chunk));
            res.once('error', fail);
            res.once('end', () => {
              let reply: unknown;
              try {
                reply = JSON.parse(text);
              } catch (cause) {
                fail(cause as SyntaxError);
                return;
              }
              done = true;
              const decoded = decodeReply(reply);
              if (decoded === undefined) observer.error(new TRPCClientError('Unable to transform response from server'));
              else if ('error' in decoded) observer.error(TRPCClientError.from(decoded as Parameters<typeof TRPCClientError.from>[0]));
              else {
                observer.next({ result: { type: 'data', data: decoded.data } });
                observer.complete();
              }
            });
          },
        );
        req.once('error', fail);
        req.end(isQuery ? undefined : input);
        return () => {
          if (!done) req.destroy();
        };
      });
}

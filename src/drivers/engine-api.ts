import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { type IncomingMessage, request } from 'node:http';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { DriverError } from '../contract/errors.js';
import { QUERY_TIMEOUT_MS } from './docker.js';
import { describeOsError } from './exec.js';

/** Where the Engine API answers, or why the docker CLI has to be asked instead. */
export type EngineEndpoint =
  | { readonly kind: 'unix'; readonly socketPath: string; readonly host: string }
  | { readonly kind: 'tcp'; readonly hostname: string; readonly port: number; readonly host: string }
  | { readonly kind: 'cli'; readonly host: string; readonly why: string };

const DEFAULT_HOST = 'unix:///var/run/docker.sock';
/**
 * The newest API version whose replies the driver reads. The fields it uses (Labels, State,
 * Created, Actor.Attributes, State.Health, IPAM.Config) are the same from 1.25 on; asking for more
 * than the engine speaks is an error, and so is asking less than its minimum (1.44 from Docker 29).
 */
const WANTED_API_VERSION = '1.41';
/** A reply the driver reads is a container listing or one inspect: far below this, whatever the pool size. */
const MAX_REPLY_BYTES = 32 * 1024 * 1024;

/** `DOCKER_HOST`'s syntax: unix:///path, tcp://host:port (2375 when left out), ssh://... */
export function parseDockerHost(host: string): EngineEndpoint {
  if (host.startsWith('unix://')) return { kind: 'unix', socketPath: host.slice('unix://'.length), host };
  if (host.startsWith('ssh://')) return { kind: 'cli', host, why: `Docker at ${host} is reached over ssh, which only the docker CLI speaks` };
  const match = /^tcp:\/\/(\[[^\]]+\]|[^:/]+)(?::(\d+))?\/?$/.exec(host);
  if (match === null) throw new Error(`DOCKER_HOST ${host}: expected unix:///path, tcp://host:port or ssh://host`);
  return { kind: 'tcp', hostname: (match[1] ?? '').replace(/^\[(.*)\]$/, '$1'), port: Number(match[2] ?? 2375), host };
}

/**
 * The engine the docker CLI would talk to, resolved as it does: DOCKER_HOST, else the context
 * DOCKER_CONTEXT or config.json's `currentContext` names (its meta.json under
 * contexts/meta/<sha256 of the name>/), else the default socket. TLS endpoints are left to the CLI:
 * speaking them needs https.request with DOCKER_CERT_PATH's (or the context's tls/ folder's) ca.pem,
 * cert.pem and key.pem and DOCKER_TLS_VERIFY's verification, and plain HTTP to a TLS port only
 * ever fails.
 */
export async function resolveEngineEndpoint(env: NodeJS.ProcessEnv = process.env, home = homedir()): Promise<EngineEndpoint> {
  const configDir = env.DOCKER_CONFIG || join(home, '.docker');
  const host = env.DOCKER_HOST || (await contextHost(configDir, env.DOCKER_CONTEXT)) || DEFAULT_HOST;
  const endpoint = parseDockerHost(host);
  if (endpoint.kind === 'tcp' && env.DOCKER_TLS_VERIFY) {
    return { kind: 'cli', host, why: `Docker at ${host} wants TLS (DOCKER_TLS_VERIFY), which the Engine API client does not speak` };
  }
  return endpoint;
}

/** The docker host of the named (or current) context; undefined for the default context. */
async function contextHost(configDir: string, named: string | undefined): Promise<string | undefined> {
  const name = named || (JSON.parse((await readFile(join(configDir, 'config.json'), 'utf8').catch(() => '{}')) || '{}') as { currentContext?: string }).currentContext;
  if (!name || name === 'default') return undefined;
  const meta = join(configDir, 'contexts', 'meta', createHash('sha256').update(name).digest('hex'), 'meta.json');
  let text: string;
  try {
    text = await readFile(meta, 'utf8');
  } catch (error) {
    throw new Error(`docker context ${name}: cannot read ${meta} (${(error as Error).message})`, { cause: error });
  }
  const host = (JSON.parse(text) as { Endpoints?: { docker?: { Host?: string } } }).Endpoints?.docker?.Host;
  if (!host) throw new Error(`docker context ${name}: ${meta} names no docker host`);
  return host;
}

/** A small Engine API client over node:http. Every call is bounded in time and throws `DriverError`. */
export interface EngineApi {
  readonly host: string;
  /** The API version requests are made with, negotiated with the engine's /version on first use. */
  apiVersion(): Promise<string>;
  /** `GET /_ping` within `timeoutMs`: resolves when the engine answers, whatever its version. */
  ping(timeoutMs: number): Promise<void>;
  /** GET `path` (under the negotiated version) and its JSON reply; `signal` aborts the request itself, not only the wait for it. */
  get<T>(path: string, query?: Record<string, unknown>, signal?: AbortSignal): Promise<T>;
  /** GET `path` as a stream of newline-delimited JSON objects; ends when the engine closes it or `signal` aborts. */
  stream<T>(path: string, query: Record<string, unknown>, signal: AbortSignal): AsyncGenerator<T>;
}

export function createEngineApi(endpoint: Exclude<EngineEndpoint, { kind: 'cli' }>, timeoutMs = QUERY_TIMEOUT_MS): EngineApi {
  const target = endpoint.kind === 'unix' ? { socketPath: endpoint.socketPath } : { host: endpoint.hostname, port: endpoint.port };
  let negotiated: Promise<string> | undefined;

  /** The response's headers within `timeoutMs`, or a DriverError; a body is the caller's to read. */
  function send(path: string, signal?: AbortSignal, deadlineMs = timeoutMs): Promise<IncomingMessage> {
    const argv = ['GET', path];
    return new Promise((resolve, reject) => {
      // A connection per call, as the CLI makes: a stopping dockerd closes its listener first and
      // keeps serving open connections, so a kept-alive one would read the containers it is
      // stopping as gone while new callers already see it down.
      const req = request({ ...target, path, method: 'GET', agent: false, headers: { Host: 'docker' }, ...(signal !== undefined && { signal }) });
      const timer = setTimeout(() => req.destroy(new DriverError(`GET ${path}: Docker at ${endpoint.host} did not answer within ${deadlineMs / 1000} s (timed out; is dockerd hung?)`, argv, undefined, '')), deadlineMs);
      req.once('response', (res) => {
        clearTimeout(timer);
        resolve(res);
      });
      req.once('error', (error: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        // The caller gave up (the engine probe found it down, the daemon is stopping): its reason, not a connection error.
        if (signal?.aborted) reject(signal.reason);
        else if (error instanceof DriverError) reject(error);
        // Out of descriptors is the daemon's own trouble, not Docker's: say so, as a failed spawn does.
        else if (error.code === 'EMFILE' || error.code === 'ENFILE') reject(new DriverError(`GET ${path}: cannot connect to Docker at ${endpoint.host}: ${describeOsError(error)}`, argv, undefined, '', { cause: error }));
        else reject(new DriverError(`GET ${path}: cannot connect to Docker at ${endpoint.host} (${error.code ?? error.message}); is the docker daemon running?`, argv, undefined, '', { cause: error }));
      });
      req.end();
    });
  }

  /** The whole body, bounded in size and by the same deadline as its headers. */
  async function body(res: IncomingMessage, path: string, started: number): Promise<string> {
    const chunks: Buffer[] = [];
    let size = 0;
    const timer = setTimeout(() => res.destroy(new Error(`reply not complete within ${timeoutMs / 1000} s (timed out)`)), Math.max(0, timeoutMs - (performance.now() - started)));
    try {
      for await (const chunk of res as AsyncIterable<Buffer>) {
        size += chunk.length;
        if (size > MAX_REPLY_BYTES) throw new Error(`reply over ${MAX_REPLY_BYTES} bytes`);
        chunks.push(chunk);
      }
    } catch (error) {
      res.destroy();
      throw new DriverError(`GET ${path}: ${(error as Error).message}`, ['GET', path], res.statusCode, '', { cause: error });
    } finally {
      clearTimeout(timer);
    }
    return Buffer.concat(chunks).toString('utf8');
  }

  /** The engine's own message for a failed call ({"message": ...}), in a DriverError naming the call. */
  async function failure(res: IncomingMessage, path: string, started: number): Promise<DriverError> {
    const text = await body(res, path, started).catch(() => '');
    let message = text.trim();
    try {
      message = (JSON.parse(text) as { message?: string }).message ?? message;
    } catch {
      // Not JSON (a proxy's page, say): its text is the message.
    }
    return new DriverError(`GET ${path}: ${message || `HTTP ${res.statusCode}`}`, ['GET', path], res.statusCode, text);
  }

  async function getJson<T>(path: string, signal?: AbortSignal): Promise<T> {
    const started = performance.now();
    const res = await send(path, signal);
    if (res.statusCode !== 200) throw await failure(res, path, started);
    const text = await body(res, path, started);
    try {
      return JSON.parse(text) as T;
    } catch (error) {
      throw new DriverError(`GET ${path}: the reply is not JSON`, ['GET', path], res.statusCode, text.slice(0, 200), { cause: error });
    }
  }

  const apiVersion = () => {
    negotiated ??= getJson<{ ApiVersion?: string; MinAPIVersion?: string }>('/version').then(
      (v) => negotiate(v.ApiVersion, v.MinAPIVersion),
      (error: unknown) => {
        // Down now says nothing about the version it speaks once up: ask again next time.
        negotiated = undefined;
        throw error;
      },
    );
    return negotiated;
  };
  const versioned = async (path: string, query: Record<string, unknown> = {}) => `/v${await apiVersion()}${path}${queryString(query)}`;

  return {
    host: endpoint.host,
    apiVersion,
    async ping(deadlineMs) {
      const started = performance.now();
      const res = await send('/_ping', undefined, deadlineMs);
      if (res.statusCode !== 200) throw await failure(res, '/_ping', started);
      res.resume();
    },
    async get<T>(path: string, query?: Record<string, unknown>, signal?: AbortSignal) {
      return getJson<T>(await versioned(path, query), signal);
    },
    async *stream<T>(path: string, query: Record<string, unknown>, signal: AbortSignal) {
      if (signal.aborted) return;
      const full = await versioned(path, query);
      const res = await send(full, signal).catch((error: unknown) => {
        if (signal.aborted) return undefined;
        throw error;
      });
      if (res === undefined) return;
      if (res.statusCode !== 200) throw await failure(res, full, performance.now());
      try {
        for await (const line of createInterface({ input: res })) if (line.trim() !== '') yield JSON.parse(line) as T;
      } catch (error) {
        // An abort or a dropped connection ends the stream, as the engine closing it does.
        if (!(error instanceof Error && (signal.aborted || (error as NodeJS.ErrnoException).code === 'ECONNRESET'))) throw error;
      } finally {
        res.destroy();
      }
    },
  };
}

/** The version to ask for: the engine's own, capped at the one the driver reads, never below the engine's minimum. */
export function negotiate(engine: string | undefined, minimum: string | undefined): string {
  if (engine === undefined) return WANTED_API_VERSION;
  const capped = compareVersions(engine, WANTED_API_VERSION) < 0 ? engine : WANTED_API_VERSION;
  return minimum !== undefined && compareVersions(minimum, capped) > 0 ? minimum : capped;
}

function compareVersions(a: string, b: string): number {
  const [aMajor = 0, aMinor = 0] = a.split('.').map(Number);
  const [bMajor = 0, bMinor = 0] = b.split('.').map(Number);
  return aMajor - bMajor || aMinor - bMinor;
}

/** Query parameters; objects (the engine's `filters`) go as JSON, as the API wants them. */
function queryString(query: Record<string, unknown>): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) params.set(key, typeof value === 'object' ? JSON.stringify(value) : String(value));
  const text = params.toString();
  return text === '' ? '' : `?${text}`;
}

import { createConnectionLimit } from '../bridge/connections.js';
import { createLiveStreams } from '../bridge/live.js';
import { type PreparedReply, loadStatusPage, pageUnavailableReply } from '../bridge/page.js';
import { type CallerVerdict, createBridgeServer } from '../bridge/server.js';
import type { CallerDirectory } from '../core/callers.js';
import { type PoolConfig, parseWireTime, redactConfig } from '../contract/index.js';
import { type RpcDeps, createContext } from '../rpc/context.js';
import type { EventLog } from '../store/index.js';
import { TIMELINE_MAX_EVENTS, TIMELINE_WINDOW_MS } from '../ui/view.js';
import { type Bridges, createBridges } from './bridges.js';
import { type Logger, describeError } from './log.js';
import { DaemonStartError } from './start-up.js';

export interface FacesDeps extends Omit<RpcDeps, 'diagnostics' | 'configView' | 'events'> {
  readonly config: () => PoolConfig;
  readonly eventLog: () => EventLog | undefined;
  readonly clock: () => number;
  readonly log: Logger;
  readonly onError: (what: string, error: unknown) => void;
  /** Resolves once the first reconcile is done: the bridge's POSTs wait for it, as the socket's calls do. */
  readonly ready: Promise<void>;
  /** CALLER_POLICY=agents: who the bridge's callers are; undefined under `open`. */
  readonly callers: () => CallerDirectory | undefined;
  /** Each identified POST, counted by who, how and its verdict. */
  readonly onCaller: (caller: string, via: string, verdict: CallerVerdict) => void;
}

/** Distinct ignored claims remembered, so that each is logged once without a client growing the set for ever. */
const CLAIMS_REMEMBERED = 1024;

/** The two faces' shared dependencies (one RpcDeps for the socket and the bridge), and the bridge's listeners. */
export interface Faces {
  readonly rpc: RpcDeps;
  readonly bridges: Bridges;
  /** Loads the status page the bridge serves (once, at start-up): a page that cannot be built is reported and answered with a 503. */
  loadPage(): Promise<void>;
}

export function createFaces(deps: FacesDeps): Faces {
  const { log, onError } = deps;
  const eventLog = () => {
    const opened = deps.eventLog();
    if (opened === undefined) throw new Error('daemon not started');
    return opened;
  };
  const rpc: RpcDeps = {
    get pool() {
      return deps.pool;
    },
    health: deps.health,
    metrics: deps.metrics,
    subscribe: deps.subscribe,
    requestShutdown: deps.requestShutdown,
    diagnostics: () => ({ bridge: { addresses: bridges.addresses(), port: bridges.port() } }),
    configView: () => redactConfig(deps.config()),
    events: async (query) => eventLog().read({ limit: query.limit, agent: query.agent, since: query.since === undefined ? undefined : parseWireTime(query.since) }),
  };
  let page: PreparedReply = pageUnavailableReply('the daemon is starting');
  const live = createLiveStreams({
    subscribe: deps.subscribe,
    status: () => deps.pool.status(),
    history: async () => {
      const opened = deps.eventLog();
      if (opened === undefined) return [];
      return (await opened.read({ limit: TIMELINE_MAX_EVENTS, since: deps.clock() - TIMELINE_WINDOW_MS })).events;
    },
    onError,
  });
  const claims = new Set<string>();
  const onClaimIgnored = (caller: string, claimed: string) => {
    const key = `${caller}\n${claimed}`;
    if (claims.has(key) || claims.size >= CLAIMS_REMEMBERED) return;
    claims.add(key);
    log.info(`caller ${caller} sent requested_by "${claimed}"; recorded as ${caller}, who it is (CALLER_POLICY=agents; said once)`);
  };
  const connections = createConnectionLimit({ onFull: (message) => log.error(message) });
  const bridges = createBridges({
    createServer: () =>
      createBridgeServer({
        context: createContext(rpc),
        maxBodySize: deps.config().maxBodySize,
        token: () => deps.config().token,
        callers: deps.callers,
        onCaller: deps.onCaller,
        onClaimIgnored,
        onError,
        page,
        live,
        connections,
        ready: deps.ready,
      }),
    port: deps.config().port,
    log,
    failure: (message) => new DaemonStartError(message),
  });
  return {
    rpc,
    bridges,
    async loadPage() {
      page = await loadStatusPage().catch((error: unknown) => {
        log.error(`status page unavailable: ${describeError(error)}`);
        return pageUnavailableReply(describeError(error));
      });
    },
  };
}

import { timingSafeEqual } from 'node:crypto';
import { networkInterfaces } from 'node:os';
import type { PoolConfig } from '../contract/index.js';
import { type TokenBook, tokenDigest } from '../contract/tokens.js';
import type { AgentDriver, ObservedAgent } from '../core/index.js';
import { type CallerDirectory, normalizeAddress } from '../core/callers.js';

/** What the bridge's caller identification is built from, each read when it changes, never per request. */
export interface CallersDeps {
  readonly config: () => PoolConfig;
  /** POOL_TOKENS_FILE's book, as the last (re)load read it; undefined when the variable is unset. */
  readonly tokens: () => TokenBook | undefined;
  /** The backend's listing carries container addresses (compose over the Engine API); false until it is open. */
  readonly listsAddresses: () => boolean;
  /** Where the bridge listens now: the host's own addresses on the agents' networks among them. */
  readonly bridgeAddresses: () => readonly string[];
}

export interface Callers {
  /** The directory the bridge identifies callers with, or undefined under CALLER_POLICY=open. */
  directory(): CallerDirectory | undefined;
  /** `driver` whose every listing also renews the peers' addresses: identity follows Docker's events with the reconcile, with no call of its own. */
  watching(driver: AgentDriver): AgentDriver;
  /** The configuration or the bridge's addresses changed: the next request sees it. */
  refresh(): void;
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1)$/;

export function createCallers(deps: CallersDeps): Callers {
  let peers = new Map<string, string>();
  let cached: { directory: CallerDirectory | undefined } | undefined;

  function build(): CallerDirectory | undefined {
    const config = deps.config();
    const book = deps.tokens();
    const policy = config.callerPolicy ?? (deps.listsAddresses() || book !== undefined ? 'agents' : 'open');
    if (policy === 'open') return undefined;
    const own = new Set<string>(deps.bridgeAddresses());
    for (const addresses of Object.values(networkInterfaces())) for (const a of addresses ?? []) own.add(normalizeAddress(a.address));
    const shared = config.token === undefined ? undefined : tokenDigest(config.token);
    return {
      isHostAddress: (address) => LOOPBACK.test(address) || own.has(address),
      peers,
      infra: new Set(config.infraServices),
      ...(book !== undefined && { tokenOwner: (bearer: string | undefined) => book.identify(bearer), hostNeedsToken: book.hasHost }),
      ...(shared !== undefined && { sharedTokenMatches: (bearer: string | undefined) => bearer !== undefined && timingSafeEqual(tokenDigest(bearer), shared) }),
    };
  }

  return {
    directory() {
      cached ??= { directory: build() };
      return cached.directory;
    },
    refresh() {
      cached = undefined;
    },
    watching(driver) {
      return {
        ...driver,
        list: async () => {
          const observed = await driver.list();
          peers = peersOf(observed);
          cached = undefined;
          return observed;
        },
      };
    },
  };
}

function peersOf(observed: readonly ObservedAgent[]): Map<string, string> {
  const peers = new Map<string, string>();
  for (const { agent, running, addresses = [] } of observed) if (running) for (const address of addresses) peers.set(address, agent);
  return peers;
}


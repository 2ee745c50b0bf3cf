import type { CallerVia } from '../contract/index.js';
/**
 * Who is calling the bridge, as far as the daemon can establish it (issue 18):
 * - `host`: loopback, or one of the host's own addresses on the agents' networks; or the token of
 *   the tokens file's `host` entry;
 * - `agent` / `infra`: a container of this project, by its address on a bridge network (`peer`)
 *   or by its own token (`token`);
 * - `stranger`: anything else (a container of another project on a shared network, a one-off).
 */
export type Caller =
  | { readonly kind: 'host'; readonly via: Extract<CallerVia, 'host' | 'token'> }
  | { readonly kind: 'agent' | 'infra'; readonly name: string; readonly via: Extract<CallerVia, 'peer' | 'token'> }
  | { readonly kind: 'stranger' };

/** A caller the bridge refuses before any operation: 401 (credentials wrong or missing) or 403 (a stranger). */
export interface Refusal {
  readonly status: 401 | 403;
  readonly error: string;
}

/** What identifying a caller needs to know, all of it in memory: no Docker call per request. */
export interface CallerDirectory {
  /** Loopback and the host's own addresses on the networks the bridge serves. */
  readonly isHostAddress: (address: string) => boolean;
  /** The project's running containers by address: their compose service. */
  readonly peers: ReadonlyMap<string, string>;
  readonly infra: ReadonlySet<string>;
  /** The per-agent tokens (POOL_TOKENS_FILE): the name a bearer token stands for (`host` for the host entry). */
  readonly tokenOwner?: (bearer: string | undefined) => string | undefined;
  /** The tokens file has a `host` entry: the host must show it, so that an agent on `network_mode: host` cannot pass for the host. */
  readonly hostNeedsToken?: boolean;
  /** POOL_TOKEN: required of every caller without a token of its own. */
  readonly sharedTokenMatches?: (bearer: string | undefined) => boolean;
}

/** A request's credentials, checked: `owner`, whom its bearer token stands for, when it is a token of the tokens file. */
export interface Credentials {
  readonly owner?: string;
}

/**
 * The request's credentials, from its peer address and bearer token only (never a header the
 * caller writes otherwise, such as X-Forwarded-For): 401 when they are wrong or missing. Needs no
 * container listing, so it is answered before the body is read, and before the first reconcile.
 */
export function checkCredentials(address: string, bearer: string | undefined, directory: CallerDirectory): Credentials | Refusal {
  const owner = directory.tokenOwner?.(bearer);
  if (owner !== undefined) return { owner };
  const shared = directory.sharedTokenMatches;
  if (shared !== undefined && !shared(bearer)) return { status: 401, error: 'unauthorized: send Authorization: Bearer <POOL_TOKEN>, or the agent\'s own token' };
  if (bearer !== undefined && shared === undefined && directory.tokenOwner !== undefined) return { status: 401, error: 'unauthorized: unknown token' };
  if (directory.hostNeedsToken && directory.isHostAddress(normalizeAddress(address))) {
    return { status: 401, error: 'unauthorized: POOL_TOKENS_FILE has a host entry, so a call from the host must send Authorization: Bearer <its token> (or use the Unix socket)' };
  }
  return {};
}

/**
 * The caller of a request whose credentials passed. A token of its own decides the identity; the
 * shared POOL_TOKEN only admits, it grants none; else the peer address says who it is.
 */
export function identifyCaller(address: string, { owner }: Credentials, directory: CallerDirectory): Caller | Refusal {
  if (owner === 'host') return { kind: 'host', via: 'token' };
  if (owner !== undefined) return { kind: directory.infra.has(owner) ? 'infra' : 'agent', name: owner, via: 'token' };
  const peer = normalizeAddress(address);
  if (directory.isHostAddress(peer)) return { kind: 'host', via: 'host' };
  const service = directory.peers.get(peer);
  if (service === undefined) return { status: 403, error: `forbidden: ${peer} is not a container of this project (neither an agent nor an infrastructure service) nor the host` };
  return { kind: directory.infra.has(service) ? 'infra' : 'agent', name: service, via: 'peer' };
}

export function isRefusal(outcome: Caller | Credentials | Refusal): outcome is Refusal {
  return 'status' in outcome;
}

/** `::ffff:172.18.0.3` (an IPv4 peer on a dual-stack socket) is `172.18.0.3`. */
export function normalizeAddress(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

export type CallerAction = 'request' | 'release' | 'heartbeat';

/**
 * CALLER_POLICY=agents: whether `caller` may do `action` to `agent`, as the pool is now; the
 * message of the SPEC's `forbidden` reply when not. An agent may request any agent, and heartbeat,
 * hold busy and release only itself, or release an agent it requested (the job pattern). An
 * infrastructure service may request and release, never heartbeat for an agent. The host may do
 * everything. An agent not in the pool cannot be harmed by a release: the operation answers.
 * `requesterOf`: who requested an agent in the pool now (undefined when it is not in the pool).
 */
export function forbiddenAction(caller: Caller, action: CallerAction, agent: string, requesterOf: (agent: string) => string | undefined): string | undefined {
  if (caller.kind === 'host' || caller.kind === 'stranger' || caller.name === agent) return undefined;
  if (action === 'request') return undefined;
  if (action === 'heartbeat') {
    return caller.kind === 'infra'
      ? `${caller.name} may not heartbeat for ${agent}: an infrastructure service may request and release agents, not keep them alive`
      : `${caller.name} may not heartbeat for ${agent}: an agent may heartbeat and hold busy only itself`;
  }
  if (caller.kind === 'infra') return undefined;
  const requester = requesterOf(agent);
  if (requester === undefined || requester === caller.name) return undefined;
  return `${caller.name} may not release ${agent}: an agent may release itself and the agents it requested (${agent} was requested by ${requester})`;
}

/** The requester an action is recorded under: a verified caller is itself, whatever the body claimed; the host's claim stands. */
export function recordedRequester(caller: Caller, claimed: string): string {
  return caller.kind === 'agent' || caller.kind === 'infra' ? caller.name : claimed;
}

/** What the policy makes of one call: refused with the `forbidden` reply's message, or run under `requestedBy` (and the claim it overrode, if any). */
export type CallVerdict = { readonly refused: string } | { readonly requestedBy: string | undefined; readonly ignoredClaim?: string };

/**
 * One call of `caller` under CALLER_POLICY=agents, as the bridge runs it: the policy's verdict on
 * `action` (see forbiddenAction), and the requester it is recorded under. `api`, the default of an
 * absent `requested_by`, is no claim.
 */
export function judgeCall(caller: Caller, action: CallerAction, input: { readonly agent: string; readonly requested_by?: string }, requesterOf: (agent: string) => string | undefined): CallVerdict {
  const refused = forbiddenAction(caller, action, input.agent, requesterOf);
  if (refused !== undefined) return { refused };
  if (input.requested_by === undefined) return { requestedBy: undefined };
  const requestedBy = recordedRequester(caller, input.requested_by);
  return requestedBy === input.requested_by || input.requested_by === 'api' ? { requestedBy } : { requestedBy, ignoredClaim: input.requested_by };
}

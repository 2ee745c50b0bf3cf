import { describe, expect, it } from 'vitest';
import { type Caller, type CallerDirectory, checkCredentials, forbiddenAction, identifyCaller as identifyPeer, isRefusal, recordedRequester } from '../../src/core/callers.js';

/** Both steps, as the bridge takes them: the credentials (before the body), then who it is. */
function identifyCaller(address: string, bearer: string | undefined, directory: CallerDirectory) {
  const credentials = checkCredentials(address, bearer, directory);
  return isRefusal(credentials) ? credentials : identifyPeer(address, credentials, directory);
}

const peers = new Map([
  ['172.18.0.3', 'ceo'],
  ['172.19.0.3', 'ceo'],
  ['172.18.0.4', 'cfo'],
  ['172.18.0.2', 'gateway'],
  ['fd00::4', 'cfo'],
]);
const base: CallerDirectory = {
  isHostAddress: (a) => a === '127.0.0.1' || a === '::1' || a === '172.18.0.1',
  peers,
  infra: new Set(['gateway']),
};
const tokens: Record<string, string> = { 'tok-cfo': 'cfo', 'tok-host': 'host', 'tok-gw': 'gateway' };
const withTokens: CallerDirectory = { ...base, tokenOwner: (bearer) => (bearer === undefined ? undefined : tokens[bearer]) };
const shared: CallerDirectory = { ...base, sharedTokenMatches: (bearer) => bearer === 'pool-secret' };

describe('identifyCaller: from the peer address and the bearer token only', () => {
  it.each<[string, CallerDirectory, string, string | undefined, Caller | { status: number }]>([
    ['loopback is the host', base, '127.0.0.1', undefined, { kind: 'host', via: 'host' }],
    ['IPv6 loopback is the host', base, '::1', undefined, { kind: 'host', via: 'host' }],
    ["the host's own address on a bridge network is the host", base, '172.18.0.1', undefined, { kind: 'host', via: 'host' }],
    ['a project container is its service', base, '172.18.0.3', undefined, { kind: 'agent', name: 'ceo', via: 'peer' }],
    ['on its second network too', base, '172.19.0.3', undefined, { kind: 'agent', name: 'ceo', via: 'peer' }],
    ['an IPv4 peer on a dual-stack socket', base, '::ffff:172.18.0.4', undefined, { kind: 'agent', name: 'cfo', via: 'peer' }],
    ['an IPv6 peer', base, 'fd00::4', undefined, { kind: 'agent', name: 'cfo', via: 'peer' }],
    ['an infrastructure container is infra', base, '172.18.0.2', undefined, { kind: 'infra', name: 'gateway', via: 'peer' }],
    ['an address no container of the project has is a stranger (403)', base, '172.18.0.99', undefined, { status: 403 }],
    ['a bearer is ignored when no token is configured', base, '172.18.0.3', 'whatever', { kind: 'agent', name: 'ceo', via: 'peer' }],
    ["an agent's own token decides, whatever the address", withTokens, '127.0.0.1', 'tok-cfo', { kind: 'agent', name: 'cfo', via: 'token' }],
    ["an agent's token beats the address of another agent", withTokens, '172.18.0.3', 'tok-cfo', { kind: 'agent', name: 'cfo', via: 'token' }],
    ["an infrastructure service's token", withTokens, '127.0.0.1', 'tok-gw', { kind: 'infra', name: 'gateway', via: 'token' }],
    ['the host entry is the host', withTokens, '172.18.0.3', 'tok-host', { kind: 'host', via: 'token' }],
    ['an unknown token is 401', withTokens, '172.18.0.3', 'nope', { status: 401 }],
    ['no token from a container falls back to its address', withTokens, '172.18.0.3', undefined, { kind: 'agent', name: 'ceo', via: 'peer' }],
    ['POOL_TOKEN admits and grants no identity', shared, '172.18.0.3', 'pool-secret', { kind: 'agent', name: 'ceo', via: 'peer' }],
    ['POOL_TOKEN is still required from a container', shared, '172.18.0.3', undefined, { status: 401 }],
    ['and from loopback, where a host-network agent also arrives', shared, '127.0.0.1', 'wrong', { status: 401 }],
    ['POOL_TOKEN with the right value from loopback is the host', shared, '127.0.0.1', 'pool-secret', { kind: 'host', via: 'host' }],
    ['a stranger with POOL_TOKEN is still a stranger', shared, '172.18.0.99', 'pool-secret', { status: 403 }],
    ["an agent's own token stands for POOL_TOKEN", { ...shared, tokenOwner: withTokens.tokenOwner! }, '172.18.0.3', 'tok-cfo', { kind: 'agent', name: 'cfo', via: 'token' }],
  ])('%s', (_, directory, address, bearer, expected) => {
    const outcome = identifyCaller(address, bearer, directory);
    if ('status' in expected) expect(outcome).toMatchObject({ status: expected.status, error: expect.any(String) });
    else expect(outcome).toEqual(expected);
  });

  it('with a host entry, loopback without a token is 401: an agent on the host network cannot pass for the host', () => {
    const outcome = identifyCaller('127.0.0.1', undefined, { ...withTokens, hostNeedsToken: true });
    expect(outcome).toMatchObject({ status: 401, error: expect.stringMatching(/host entry/) });
    expect(identifyCaller('127.0.0.1', 'tok-host', { ...withTokens, hostNeedsToken: true })).toEqual({ kind: 'host', via: 'token' });
    // A container is still known by its address.
    expect(identifyCaller('172.18.0.3', undefined, { ...withTokens, hostNeedsToken: true })).toEqual({ kind: 'agent', name: 'ceo', via: 'peer' });
  });

  it('never names a token in its messages', () => {
    for (const bearer of ['nope', 'pool-secre']) {
      const outcome = identifyCaller('172.18.0.3', bearer, { ...shared, tokenOwner: withTokens.tokenOwner! });
      expect(JSON.stringify(outcome)).not.toContain(bearer);
    }
  });
});

describe('forbiddenAction: CALLER_POLICY=agents', () => {
  const ceo: Caller = { kind: 'agent', name: 'ceo', via: 'peer' };
  const gateway: Caller = { kind: 'infra', name: 'gateway', via: 'peer' };
  const host: Caller = { kind: 'host', via: 'host' };
  const requesters: Record<string, string> = { ceo: 'autostart', cfo: 'ceo', cto: 'operator' };
  const requesterOf = (agent: string) => requesters[agent];

  it.each<[string, Caller, 'request' | 'release' | 'heartbeat', string, boolean]>([
    ['an agent requests any agent', ceo, 'request', 'cto', true],
    ['an agent heartbeats itself', ceo, 'heartbeat', 'ceo', true],
    ['an agent may not heartbeat (or hold busy) another', ceo, 'heartbeat', 'cfo', false],
    ['an agent releases itself', ceo, 'release', 'ceo', true],
    ['an agent releases an agent it requested', ceo, 'release', 'cfo', true],
    ['an agent may not release one it did not request', ceo, 'release', 'cto', false],
    ['a release of an agent not in the pool is left to the operation (not_running)', ceo, 'release', 'researcher', true],
    ['infrastructure requests agents', gateway, 'request', 'cto', true],
    ['infrastructure releases agents', gateway, 'release', 'cto', true],
    ['infrastructure may not heartbeat for an agent', gateway, 'heartbeat', 'cto', false],
    ['the host heartbeats for anyone', host, 'heartbeat', 'cfo', true],
    ['the host releases anyone', host, 'release', 'cto', true],
  ])('%s', (_, caller, action, agent, allowed) => {
    const refusal = forbiddenAction(caller, action, agent, requesterOf);
    if (allowed) expect(refusal).toBeUndefined();
    else expect(refusal).toMatch(new RegExp(`^${(caller as { name: string }).name} may not ${action} (for )?${agent}`));
  });

  it('says who requested the agent it may not release', () => {
    expect(forbiddenAction(ceo, 'release', 'cto', requesterOf)).toBe('ceo may not release cto: an agent may release itself and the agents it requested (cto was requested by operator)');
  });

  it('records a verified caller under its own name, and the host under its claim', () => {
    expect(recordedRequester(ceo, 'cfo')).toBe('ceo');
    expect(recordedRequester(gateway, 'api')).toBe('gateway');
    expect(recordedRequester(host, 'operator')).toBe('operator');
  });
});

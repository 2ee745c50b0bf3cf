import { readFile } from 'node:fs/promises';
import { type ComposeReads, DEFAULT_BRIDGE, type EngineNetwork } from './compose-reads.js';

/**
 * Where containers of this project reach the host: the gateway of each of the agents' `networks`
 * that exists now, and the address `host-gateway` resolves to on this engine (what
 * `extra_hosts: pool-manager:host-gateway` puts in a container's /etc/hosts). One read of the engine's networks.
 */
export async function hostAddresses(reads: ComposeReads, networks: readonly string[]): Promise<string[]> {
  const listed = await reads.networks(networks);
  const existing = listed.map((n) => n.name).filter((name) => networks.includes(name));
  const gateways = networkGateways(listed, parseLocalAddresses((await readOptional(FIB_TRIE)) ?? ''));
  const hostGateway = configuredHostGateway(await readOptional(DOCKER_DAEMON_JSON)) ?? gateways.get(DEFAULT_BRIDGE) ?? [];
  return [...new Set([...existing.flatMap((name) => gateways.get(name) ?? []), ...hostGateway])];
}

/** Where Debian's dockerd reads `host-gateway-ip` from (its `--host-gateway-ip` flag is not visible through the API). */
export const DOCKER_DAEMON_JSON = '/etc/docker/daemon.json';
/** The kernel's routing tables, which list this host's own addresses (`/32 host LOCAL`), interface up or not. */
const FIB_TRIE = '/proc/net/fib_trie';

/**
 * Each network's gateway addresses. The default bridge's IPAM config carries no gateway (dockerd
 * 20.10 leaves it out): such a network is reached at this host's own addresses inside its
 * subnets, which is where dockerd put the bridge's address (docker0's, whatever `bip` says).
 */
export function networkGateways(networks: readonly EngineNetwork[], localAddresses: readonly string[]): Map<string, string[]> {
  const gateways = new Map<string, string[]>();
  for (const { name, gateways: listed, subnets } of networks) {
    const addresses = listed.map((a) => a.replace(/\/\d+$/, ''));
    gateways.set(name, addresses.length > 0 ? addresses : localAddresses.filter((address) => subnets.some((subnet) => inSubnet(address, subnet))));
  }
  return gateways;
}

/**
 * This host's own IPv4 addresses from /proc/net/fib_trie. Not os.networkInterfaces(): libuv leaves
 * out interfaces without carrier, and docker0 has none while no container is on the default bridge.
 */
export function parseLocalAddresses(fibTrie: string): string[] {
  const local = new Set<string>();
  let leaf: string | undefined;
  for (const line of fibTrie.split('\n')) {
    const node = /\|-- (\d+\.\d+\.\d+\.\d+)$/.exec(line);
    if (node) leaf = node[1];
    else if (leaf !== undefined && /\/32 host LOCAL/.test(line)) local.add(leaf);
  }
  return [...local];
}

function inSubnet(address: string, subnet: string): boolean {
  const [base, bits] = subnet.split('/');
  const width = Number(bits);
  if (base === undefined || !Number.isInteger(width) || width < 0 || width > 32 || !/^\d+\.\d+\.\d+\.\d+$/.test(base)) return false;
  const mask = width === 0 ? 0 : (~0 << (32 - width)) >>> 0;
  return ((ipv4(address) & mask) >>> 0) === ((ipv4(base) & mask) >>> 0);
}

const ipv4 = (address: string) => address.split('.').reduce((n, octet) => (n << 8) + Number(octet), 0) >>> 0;

/** dockerd's `host-gateway-ip` from its daemon.json text, when set. */
export function configuredHostGateway(daemonJson: string | undefined): string[] | undefined {
  if (daemonJson === undefined) return undefined;
  try {
    const address = (JSON.parse(daemonJson) as { 'host-gateway-ip'?: unknown })['host-gateway-ip'];
    return typeof address === 'string' && address !== '' ? [address] : undefined;
  } catch {
    return undefined;
  }
}

const readOptional = (path: string) => readFile(path, 'utf8').catch(() => undefined);

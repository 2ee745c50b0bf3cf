import { describe, expect, it } from 'vitest';
import { configuredHostGateway, networkGateways, parseLocalAddresses } from '../../src/drivers/compose-networks.js';
import { parseNetworkLines } from '../../src/drivers/compose-reads.js';

const FIB_TRIE = `Main:
  +-- 0.0.0.0/0 3 0 5
     |-- 0.0.0.0
        /0 universe UNICAST
     +-- 127.0.0.0/8 2 0 2
        +-- 127.0.0.0/31 1 0 0
           |-- 127.0.0.0
              /8 host LOCAL
           |-- 127.0.0.1
              /32 host LOCAL
        |-- 127.255.255.255
           /32 link BROADCAST
     +-- 172.16.0.0/12 2 0 2
           |-- 172.17.0.0
              /16 link UNICAST
           |-- 172.17.42.1
              /32 host LOCAL
           |-- 172.18.0.1
              /32 host LOCAL
     |-- 203.0.113.7
        /32 host LOCAL
Local:
  +-- 0.0.0.0/0 3 0 5
           |-- 172.17.42.1
              /32 host LOCAL
`;

describe("where containers reach the host, from Docker's networks", () => {
  it("reads this host's own addresses from the routing tables, once each", () => {
    expect(parseLocalAddresses(FIB_TRIE)).toEqual(['127.0.0.1', '172.17.42.1', '172.18.0.1', '203.0.113.7']);
  });

  it.each([
    { what: 'a user-defined network: its IPAM gateway', line: 'p_default\t172.18.0.1 \t172.18.0.0/16 ', expected: ['172.18.0.1'] },
    { what: 'a gateway written with its prefix length', line: 'p_default\t172.18.0.1/16 \t172.18.0.0/16 ', expected: ['172.18.0.1'] },
    { what: 'the default bridge, with no gateway in IPAM: the host address in its subnet (bip)', line: 'bridge\t\t172.17.0.0/16 ', expected: ['172.17.42.1'] },
    { what: 'a network with no gateway and no host address in it', line: 'lonely\t\t10.99.0.0/24 ', expected: [] },
    { what: 'a dual-stack network', line: 'p_v6\t172.19.0.1 fd00::1 \t172.19.0.0/16 fd00::/64 ', expected: ['172.19.0.1', 'fd00::1'] },
  ])('$what', ({ line, expected }) => {
    const [name] = line.split('\t');
    expect(networkGateways(parseNetworkLines(`${line}\n`), parseLocalAddresses(FIB_TRIE)).get(name!)).toEqual(expected);
  });

  it.each([
    { what: 'host-gateway-ip set in daemon.json', json: '{"host-gateway-ip": "192.0.2.10", "bip": "172.17.42.1/16"}', expected: ['192.0.2.10'] },
    { what: 'daemon.json without it', json: '{"bip": "172.17.42.1/16"}', expected: undefined },
    { what: 'no daemon.json', json: undefined, expected: undefined },
    { what: 'a daemon.json that is not JSON', json: '{bip:', expected: undefined },
  ])('host-gateway: $what', ({ json, expected }) => {
    expect(configuredHostGateway(json)).toEqual(expected);
  });
});

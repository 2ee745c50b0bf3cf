import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describeError } from './log.js';

const LOOPBACK = '127.0.0.1';

/** A bridge listener could not be opened; DaemonStartError carries it to the process owner. */
type ListenFailure = (message: string) => Error;

export interface BridgesDeps {
  /** A new bridge server (one per address; they share the port and everything else). */
  readonly createServer: () => Server;
  /** POOL_PORT: 0 lets the first listener pick the port, which the others then share. */
  readonly port: number;
  readonly log: { info(line: string): void; error(line: string): void };
  readonly failure: ListenFailure;
}

/** The bridge's listeners, one per address, all on one port. */
export interface Bridges {
  /** Listens on `address`; a failure is `failure(...)` naming the address and what to do. */
  listen(address: string): Promise<void>;
  /**
   * SPEC §6, POOL_BIND unset: loopback plus `found()`, the gateways of the agents' networks and
   * host-gateway's address, each as soon as it exists; an address no longer found closes its
   * listener. Loopback is required; a found address that cannot be listened on (not in this host's
   * network namespace, say) is reported once and tried again next time. When `found` fails (Docker
   * cannot be asked), the listeners stay as they are.
   */
  bindDefault(found: () => Promise<string[]>, onError: (what: string, error: unknown) => void): Promise<void>;
  addresses(): string[];
  port(): number;
  endpoint(address: string): string;
  /** Closes every listener; replies being written get `graceMs`, then their connections are cut. */
  closeAll(graceMs: number): Promise<void>;
}

export function createBridges(deps: BridgesDeps): Bridges {
  const servers = new Map<string, Server>();
  /** Default-bind addresses that could not be listened on, so each is reported once, not every reconcile. */
  const unbindable = new Set<string>();
  let port = deps.port;
  const endpoint = (address: string) => `http://${address.includes(':') ? `[${address}]` : address}:${port}`;

  async function listen(address: string): Promise<void> {
    if (servers.has(address)) return;
    const server = deps.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', (error: NodeJS.ErrnoException) =>
        reject(
          error.code === 'EADDRINUSE'
            ? deps.failure(`port ${port} on ${address} is already in use (another openclaw-pool daemon?); stop it or set POOL_PORT`)
            : deps.failure(`cannot listen on ${address}:${port}: ${error.message} (check POOL_BIND)`),
        ),
      );
      server.listen(port, address, () => resolve());
    });
    port = (server.address() as AddressInfo).port;
    servers.set(address, server);
    unbindable.delete(address);
    deps.log.info(`bridge listening on ${endpoint(address)}`);
  }

  function close(address: string): void {
    const server = servers.get(address);
    if (server === undefined) return;
    servers.delete(address);
    server.close();
    server.closeIdleConnections();
    deps.log.info(`bridge no longer listening on ${endpoint(address)}: the Docker network is gone`);
  }

  async function bindDefault(found: () => Promise<string[]>, onError: (what: string, error: unknown) => void): Promise<void> {
    if (!servers.has(LOOPBACK)) await listen(LOOPBACK);
    let addresses: string[];
    try {
      addresses = await found();
    } catch (error) {
      onError('reading the Docker networks the agents use (the bridge keeps its addresses)', error);
      return;
    }
    const wanted = new Set([LOOPBACK, ...addresses]);
    for (const address of servers.keys()) if (!wanted.has(address)) close(address);
    for (const address of wanted) {
      if (servers.has(address)) continue;
      try {
        await listen(address);
      } catch (error) {
        if (!unbindable.has(address)) deps.log.error(`bridge not listening on ${endpoint(address)}: ${describeError(error)}; will retry after each reconcile`);
        unbindable.add(address);
      }
    }
  }

  return {
    listen,
    bindDefault,
    addresses: () => [...servers.keys()],
    port: () => port,
    endpoint,
    async closeAll(graceMs) {
      const closing = [...servers.values()].map((server) => closeServer(server, graceMs));
      servers.clear();
      await Promise.all(closing);
    },
  };
}

/** Stops accepting, lets replies being written go out for `graceMs`, then cuts whatever still runs. */
export function closeServer(server: Server, graceMs: number): Promise<void> {
  return new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeIdleConnections();
    setTimeout(() => server.closeAllConnections(), graceMs).unref();
  });
}

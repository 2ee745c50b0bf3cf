import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_IMAGE, agentService, createComposeProject, requireDocker } from '../support/docker.js';
import { type TestDaemon, eventually, startTestDaemon } from '../support/daemon.js';

const docker = await requireDocker();

/** What `extra_hosts: pool-manager:host-gateway` puts in a container's /etc/hosts on this engine. */
async function hostGateway(): Promise<string> {
  const { stdout } = await execa('docker', ['run', '--rm', '--network', 'none', '--add-host', 'pool-manager:host-gateway', TEST_IMAGE, 'sh', '-c', 'grep pool-manager /etc/hosts']);
  return stdout.trim().split(/\s+/)[0]!;
}

const gatewayOf = async (network: string) =>
  (await execa('docker', ['network', 'inspect', '--format', '{{range .IPAM.Config}}{{.Gateway}}{{end}}', network])).stdout.trim();

/** POOL_BIND unset, the default a new user gets: the bridge follows the agents' Docker networks. */
describe.skipIf(!docker)('the bridge with POOL_BIND unset', () => {
  let pool: TestDaemon;
  let port: string;
  const health = async (address: string) => (await fetch(`http://${address}:${port}/health`)).status;

  beforeAll(async () => {
    const bridged = { ...agentService(), network_mode: undefined };
    const project = await createComposeProject({ cfo: bridged, gateway: bridged });
    pool = await startTestDaemon({ project, infra: ['gateway'], env: { POOL_BIND: '', SYNC_INTERVAL: '1' } });
    port = new URL(pool.url).port;
  });
  afterAll(async () => {
    await pool?.stop();
    await pool?.project.remove();
  });

  it('listens on loopback and on the address host-gateway resolves to, from the start', async () => {
    expect(await health('127.0.0.1')).toBe(200);
    expect(await health(await hostGateway())).toBe(200);
    expect((await pool.client.diagnostics()).bridge.addresses).toEqual(['127.0.0.1', await hostGateway()]);
  });

  it("listens on the agents' network gateway once the network exists, and stops when it is gone", async () => {
    const network = `${pool.project.name}_default`;
    expect((await pool.client.request('cfo')).status).toBe('started');
    const gateway = await gatewayOf(network);
    await eventually(async () => expect(await health(gateway)).toBe(200), 10_000);
    expect(pool.logs).toContainEqual(`bridge listening on http://${gateway}:${port}`);

    await pool.project.compose('down', '--timeout', '0');
    await eventually(() => expect(pool.logs).toContainEqual(`bridge no longer listening on http://${gateway}:${port}: the Docker network is gone`), 10_000);
    // Not probed by connecting: with the network gone, that address would route off this host.
    expect((await pool.client.diagnostics()).bridge.addresses).toEqual(['127.0.0.1', await hostGateway()]);
    expect(await health('127.0.0.1')).toBe(200);
  });
});

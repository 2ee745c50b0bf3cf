import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBridgeClient } from '../../sdk/index.js';
import { requireDocker } from '../support/docker.js';
import { type TestDaemon, startTestDaemon } from '../support/daemon.js';

const docker = await requireDocker();

describe.skipIf(!docker)('the bridge client against the real bridge', () => {
  let p: TestDaemon;
  beforeAll(async () => {
    p = await startTestDaemon();
  });
  afterAll(async () => {
    await p?.stop();
  });

  it('requests, heartbeats, reads and releases with replies that match the contract', async () => {
    const client = createBridgeClient({ baseUrl: p.url, agentId: 'ceo' });
    expect(await client.request('cfo')).toEqual({ status: 'started', agent: 'cfo' });
    expect(await client.heartbeat('cfo')).toEqual({ status: 'ok' });
    expect((await client.status()).running).toMatchObject([{ id: 'cfo', requested_by: 'ceo' }]);
    expect(await client.available()).toEqual({ agents: ['cfo'] });
    expect((await client.health()).status).toBe('ok');
    expect(await client.request('gateway')).toEqual({ status: 'forbidden', agent: 'gateway', error: 'infrastructure service' });
    expect(await client.release('cfo')).toEqual({ status: 'stopped', agent: 'cfo' });
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ComposeProject, agentService, createComposeProject, requireDocker } from '../support/docker.js';

const docker = await requireDocker();

describe.skipIf(!docker)('docker smoke test: compose v2 on the real engine', () => {
  let project: ComposeProject;
  beforeAll(async () => {
    project = await createComposeProject({ ceo: agentService(), gateway: agentService() });
  });
  afterAll(async () => {
    await project?.remove();
  });

  it('starts one service of a project and Docker reports its container running', async () => {
    await project.compose('up', '-d', 'ceo');
    expect(await project.containers()).toEqual([{ service: 'ceo', state: 'running' }]);
  });

  it('stops it and Docker reports the container exited, leaving other services untouched', async () => {
    await project.compose('up', '-d', 'gateway');
    await project.compose('stop', '--timeout', '5', 'ceo');
    const states = Object.fromEntries((await project.containers()).map((c) => [c.service, c.state]));
    expect(states).toEqual({ ceo: 'exited', gateway: 'running' });
  });

  it('refuses to pull: a service with a missing image fails to start with Docker saying why', async () => {
    const broken = await createComposeProject({ ghost: agentService({ image: 'openclaw-pool/does-not-exist:1' }) });
    try {
      await expect(broken.compose('up', '-d', 'ghost')).rejects.toThrow(/does-not-exist/);
      expect(await broken.containers()).toEqual([]);
    } finally {
      await broken.remove();
    }
  });
});

import { execa } from 'execa';
import { afterAll, describe, it } from 'vitest';
import { expectCapHeldUnderConcurrentRequests } from '../support/concurrency.js';
import { requireDocker } from '../support/docker.js';
import { AGENTS, type TestDaemon, startTestDaemon } from '../support/daemon.js';

const docker = await requireDocker();

const REQUESTS = 60;
const MAX_AGENTS = 3;

describe.skipIf(!docker)('concurrency against real Docker', () => {
  let p: TestDaemon | undefined;
  afterAll(async () => {
    await p?.stop();
  });

  it(`keeps at most ${MAX_AGENTS} agent containers running under ${REQUESTS} concurrent requests for ${AGENTS.length} agents`, async () => {
    p = await startTestDaemon({ agents: AGENTS, env: { MAX_AGENTS: String(MAX_AGENTS), EVICT_GRACE_SECONDS: '0' } });
    const project = p.project.name;
    await expectCapHeldUnderConcurrentRequests(p, {
      async agentContainers() {
        const { stdout } = await execa('docker', [
          'ps', '--filter', `label=com.docker.compose.project=${project}`, '--filter', 'status=running',
          '--format', '{{.Label "com.docker.compose.service"}}',
        ]);
        return stdout.split('\n').filter((s) => AGENTS.includes(s)).length;
      },
      startEvents: ['--filter', `label=com.docker.compose.project=${project}`, '--filter', 'event=start', '--format', '{{index .Actor.Attributes "com.docker.compose.service"}}'],
      agentOfStart: (line) => (line === '' ? undefined : line),
    }, { agents: AGENTS, requests: REQUESTS, maxAgents: MAX_AGENTS, label: 'compose' });
  }, 120_000);
});

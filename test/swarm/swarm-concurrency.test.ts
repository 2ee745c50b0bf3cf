import { afterAll, describe, it } from 'vitest';
import { expectCapHeldUnderConcurrentRequests } from '../support/concurrency.js';
import { AGENTS } from '../support/daemon.js';
import { type SwarmTestDaemon, requireSwarm, startSwarmTestDaemon } from '../support/swarm.js';

const swarm = await requireSwarm();

const REQUESTS = 60;
const MAX_AGENTS = 3;

describe.skipIf(!swarm)('concurrency against a real two-node swarm', () => {
  let p: SwarmTestDaemon | undefined;
  afterAll(async () => {
    await p?.stop();
  });

  it(`keeps at most ${MAX_AGENTS} agent tasks on the swarm under ${REQUESTS} concurrent requests for ${AGENTS.length} agents`, async () => {
    p = await startSwarmTestDaemon({ agents: AGENTS, env: { MAX_AGENTS: String(MAX_AGENTS), EVICT_GRACE_SECONDS: '0' } });
    const { stack } = p;
    await expectCapHeldUnderConcurrentRequests(p, {
      // Every task that holds a container or is about to, on either node: stricter than running ones.
      agentContainers: async () => (await stack.liveTasks()).filter((t) => AGENTS.includes(t.agent)).length,
      // A start is the scale of its service from 0 to 1.
      startEvents: ['--filter', 'type=service', '--filter', 'event=update', '--format', '{{.Actor.Attributes.name}} {{index .Actor.Attributes "replicas.old"}} {{index .Actor.Attributes "replicas.new"}}'],
      agentOfStart(line) {
        const [service = '', from, to] = line.split(' ');
        return service.startsWith(`${stack.name}_`) && from === '0' && to === '1' ? service.slice(stack.name.length + 1) : undefined;
      },
    }, { agents: AGENTS, requests: REQUESTS, maxAgents: MAX_AGENTS, label: 'swarm' });
  }, 240_000);
});

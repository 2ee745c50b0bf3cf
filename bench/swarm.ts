// Request and eviction latency through the daemon, compose driver vs swarm driver, in one run on
// the same machine: `npm run bench:swarm` makes the two-node test swarm around it
// (scripts/swarm-test-env.sh). Swarm is measured twice: on the stack's default overlay network, as
// users' stacks run, and on the host network, as the compose agents here do, which leaves
// swarm's own scheduling and task reporting.
import { setTimeout as sleep } from 'node:timers/promises';
import { type LaunchedTestDaemon, startTestDaemon } from '../test/support/daemon.js';
import { createSwarmStack, startSwarmTestDaemon, swarmAgentService } from '../test/support/swarm.js';
import { type Row, median, runStandalone, until } from './lib.js';

const ROUNDS = 6;
const env = { MAX_AGENTS: '1', EVICT_GRACE_SECONDS: '60', STOP_TIMEOUT_SECONDS: '3' };

interface Figures {
  readonly start: number[];
  readonly release: number[];
  readonly evict: number[];
}

async function timed(fn: () => Promise<{ body: unknown; text: string }>, expect: (body: any) => boolean): Promise<number> {
  const t = process.hrtime.bigint();
  const reply = await fn();
  const ms = Number(process.hrtime.bigint() - t) / 1e6;
  if (!expect(reply.body)) throw new Error(`unexpected reply: ${reply.text}`);
  return ms;
}

/** Lets the backend's own after-effects (events, reconciles, tasks winding down) pass between rounds. */
async function settle(t: LaunchedTestDaemon, running: string[]): Promise<void> {
  await until(async () => (await t.runningInDocker()).join(',') === running.join(','), 30_000, `Docker to run [${running}]`);
  await sleep(1000);
}

/** ROUNDS of: a request into a free slot, a release, and an eviction (a request on the full pool). */
async function rounds(t: LaunchedTestDaemon): Promise<Figures> {
  const figures: Figures = { start: [], release: [], evict: [] };
  for (let i = 0; i < ROUNDS; i++) {
    figures.start.push(await timed(() => t.http('POST', '/request', { agent: 'ceo' }), (b) => b.status === 'started'));
    await settle(t, ['ceo']);
    // ceo is past its grace period: a request for cto evicts it.
    t.advance(120);
    figures.evict.push(await timed(() => t.http('POST', '/request', { agent: 'cto' }), (b) => b.evicted === 'ceo'));
    await settle(t, ['cto']);
    figures.release.push(await timed(() => t.http('POST', '/release', { agent: 'cto' }), (b) => b.status === 'stopped'));
    await settle(t, []);
  }
  return figures;
}

/** Runs the rounds on a test daemon, removing it (and its backend) whatever happens. */
async function on(launch: () => Promise<LaunchedTestDaemon>): Promise<Figures> {
  const t = await launch();
  try {
    return await rounds(t);
  } finally {
    await t.stop();
  }
}

async function measure(): Promise<Row[]> {
  const agents = ['ceo', 'cto'];
  const compose = await on(() => startTestDaemon({ agents, infra: [], env }));
  const overlay = await on(() => startSwarmTestDaemon({ agents, infra: [], env }));
  const hostStack = await createSwarmStack(
    Object.fromEntries(agents.map((agent) => [agent, { ...swarmAgentService(), networks: ['hostnet'] }])),
    { hostnet: { external: true, name: 'host' } },
  );
  let host: Figures;
  try {
    host = await on(() => startSwarmTestDaemon({ agents, infra: [], env, stack: hostStack }));
  } finally {
    await hostStack.remove();
  }
  const rows = (what: string, key: keyof Figures): Row[] => {
    const floor = median(compose[key]);
    return [
      { id: 'S', what: `${what}: compose (median of ${ROUNDS})`, figure: floor, unit: 'ms', target: '', kind: 'info' },
      { id: 'S', what: `${what}: swarm, overlay network (floor = compose)`, figure: median(overlay[key]), floor, unit: 'ms', target: '', kind: 'info' },
      { id: 'S', what: `${what}: swarm, host network (floor = compose)`, figure: median(host[key]), floor, unit: 'ms', target: '', kind: 'info' },
    ];
  };
  return [...rows('/request into a free slot', 'start'), ...rows('eviction, /request on a full pool', 'evict'), ...rows('/release of a running agent', 'release')];
}

await runStandalone('swarm', 'Request and eviction latency: compose vs swarm (two nodes)', measure);

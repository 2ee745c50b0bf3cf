import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { poolCommands } from './commands.js';
import { GRACE_MS, PoolWorld } from './pool-world.js';

/**
 * POOL_MODEL_SEED, POOL_MODEL_PATH and POOL_MODEL_REPLAY (all three printed with a failure) replay
 * its shrunk command path; the seed alone replays the sequence before shrinking. POOL_MODEL_RUNS
 * changes how many sequences run.
 */
const RUNS = Number(process.env.POOL_MODEL_RUNS ?? 10_000);
const SEED = process.env.POOL_MODEL_SEED === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(process.env.POOL_MODEL_SEED);
const PATH = process.env.POOL_MODEL_PATH;
const REPLAY = process.env.POOL_MODEL_REPLAY;

describe('the pool service against a scripted Docker', () => {
  beforeEach(() => {
    // setImmediate stays real: it is how a step lets the pool's promises run to their end.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('keeps the cap, one operation per agent at a time, a first-come-first-served line, callers acting only as themselves, and state, Docker and state.json in agreement, whatever the interleaving', async () => {
    await checkModel(RUNS, false);
  }, 120_000);

  it('keeps a memory budget as well, evicting several agents at once where one does not free enough, whatever the interleaving', async () => {
    await checkModel(Math.ceil(RUNS / 2), true);
  }, 120_000);

  it('stops agents for idleness only by the rules (never pinned, busy-held or lately active), with the other invariants kept, whatever the interleaving', async () => {
    await checkModel(Math.ceil(RUNS / 2), false, true);
  }, 120_000);

  it('takes unresponsive agents first in work mode (never a pinned or busy-held one), with the other invariants kept, whatever the interleaving', async () => {
    await checkModel(Math.ceil(RUNS / 2), false, false, true);
  }, 120_000);

  // Bugs the model found, each as the shortest path it shrank to, kept as cases of their own.

  // Seed 1349569631, fixed. wait-line.ts, leave(): a client that hung up was taken out of line and the
  // wake timer re-armed, but the line was not served; the new head (here an agent adopted meanwhile,
  // stopped again as over the cap) waited until its deadline and was then answered pool_full.
  it('answers the next in line at once when the client at the head of the line hangs up', async () => {
    const world = new PoolWorld();
    world.configure(1);
    world.request('ceo');
    const dev = world.request('dev', 5, true);
    world.dockerAppears('qa');
    const qa = world.request('qa', 5);
    await world.step();
    world.answer('start', 'ceo');
    world.reconcile();
    await world.step();
    world.answer('list');
    await world.step();
    dev.controller?.abort();
    await world.step();
    // Served at once: out of line, its request going on (qa, adopted over the cap, is being stopped
    // first), not left at the head until its deadline.
    expect(world.pool.status().queue).toEqual([]);
    expect(qa.settled).toBe(false);
  });

  // Seed 120740761, fixed. wait-line.ts, wait: a request refused for want of memory enters the
  // line a few microtasks after its decision; its own stop and the eviction it then waited behind
  // settled together in between, so the serve that followed them ran on a line without it, and it
  // waited to its deadline with a slot and the memory free.
  it('serves a request that entered the line just after the stop that made room for it', async () => {
    const world = new PoolWorld(true);
    world.request('cto');
    world.request('cfo');
    await world.step();
    world.answer('start', 'cto');
    world.answer('start', 'cfo');
    await world.step();
    world.request('dev', 120);
    world.request('ceo');
    await world.step();
    world.release('cto');
    world.answer('start', 'ceo');
    await world.step();
    world.advance(600_000);
    await world.step();
    world.answer('stop', 'ceo', false);
    const cto = world.request('cto', 5);
    world.configure(2);
    await world.step();
    await world.finish();
    expect(cto.settled).toBe(true);
    expect(world.pool.status().queue).toEqual([]);
  });

  // Seed 942262637, fixed. core/queue.ts, withoutWaiters: a place in line kept its first
  // requester after that client left (its deadline passed), and the start it made at last was
  // recorded under a requester nobody was waiting for: under CALLER_POLICY=agents the agent that
  // did wait could then not release what it had requested.
  it('records a start from the line under a requester still waiting for it', async () => {
    const world = new PoolWorld();
    world.configure(1);
    world.request('cto');
    await world.step();
    world.answer('start', 'cto');
    await world.step();
    world.request('dev', 5);
    world.request('dev', 120, false, 'ceo');
    await world.step();
    world.advance(6_000);
    await world.step();
    expect(world.pool.status().queue).toEqual([expect.objectContaining({ agent: 'dev', requested_by: 'ceo', waiters: 1 })]);
    world.release('cto');
    await world.finish();
    expect(world.pool.status().running).toEqual([expect.objectContaining({ id: 'dev', requested_by: 'ceo' })]);
  });

  // Seeds 1003785841, 304597210, fixed. agent-work.ts, start: a start that succeeds makes a running
  // agent, whose grace then ends later than anything the wake timer was armed for (while starting
  // it could not be evicted, and its grace from the request had long passed), and nothing re-armed
  // the timer; the waiter was answered at its deadline, with pool_full, though the agent became
  // evictable a minute after its start.
  it('serves a waiter once the grace of an agent whose slow start succeeded ends', async () => {
    const world = new PoolWorld();
    world.configure(1);
    world.request('ceo');
    await world.step();
    world.advance(600_000);
    const qa = world.request('qa', 120);
    await world.step();
    world.answer('start', 'ceo');
    await world.step();
    world.advance(GRACE_MS + 1000);
    await world.step();
    expect(world.driver.inFlight('ceo', 'stop')).toBe(true);
    expect(qa.settled).toBe(false);
  });
});

/** Runs `runs` random command sequences, each on a fresh world, and fails with how to replay the shortest failure. */
async function checkModel(runs: number, memory: boolean, idleStop = false, work = false): Promise<void> {
  let steps = 0;
  let driverCalls = 0;
  let restarts = 0;
  let idleStops = 0;
  let refusals = 0;
  let unresponsiveEvictions = 0;
  const started = performance.now();
  const property = fc.asyncProperty(poolCommands(REPLAY, work), async (commands) => {
    const world = new PoolWorld(memory, idleStop, work);
    try {
      await fc.asyncModelRun(() => ({ model: world, real: world }), commands);
      await world.finish();
    } finally {
      steps += world.steps;
      driverCalls += world.driver.calls;
      restarts += world.restarts;
      idleStops += world.idleStops;
      refusals += world.refusals;
      unresponsiveEvictions += world.unresponsiveEvictions;
    }
  });
  const details = await fc.check(property, { numRuns: runs, seed: SEED, ...(PATH !== undefined && { path: PATH }) });
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  if (details.failed) {
    const path = details.counterexample?.[0]?.toString() ?? '(none)';
    const replayPath = /replayPath="([^"]*)"/.exec(path)?.[1];
    const replay = `POOL_MODEL_SEED=${details.seed} POOL_MODEL_PATH=${details.counterexamplePath}${replayPath === undefined ? '' : ` POOL_MODEL_REPLAY='${replayPath}'`} npx vitest run test/model/pool-model.test.ts -t '${memory ? 'memory budget' : idleStop ? 'idleness' : work ? 'unresponsive' : 'keeps the cap'}'`;
    const cause = details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance);
    throw new Error(`pool model failed after ${details.numRuns} sequences (${details.numShrinks} shrinks), seed ${details.seed}, path ${details.counterexamplePath}\n  commands: ${path}\n  ${cause}\n  replay: ${replay}`);
  }
  const figures = `${idleStop ? `, ${idleStops} idle stops` : ''}${work ? `, ${unresponsiveEvictions} evictions of unresponsive agents` : ''}`;
  console.log(`pool model${memory ? ' with a memory budget' : ''}${idleStop ? ' with idle stop' : ''}${work ? ' in work mode' : ''}: ${details.numRuns} sequences, ${steps} steps, ${driverCalls} driver calls, ${restarts} restarts, ${refusals} calls refused by the caller policy${figures} in ${seconds} s (seed ${SEED})`);
}

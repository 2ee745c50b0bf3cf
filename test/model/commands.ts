import fc from 'fast-check';
import { AGENTS, type From, INFRA, type PoolWorld, UNKNOWN, WAIT_MAX_SECONDS } from './pool-world.js';

type Command = fc.AsyncCommand<PoolWorld, PoolWorld>;

/** POOL_MODEL_TRACE=1: print each command and what follows it (with a replay, to read a failure). */
const TRACE = process.env.POOL_MODEL_TRACE !== undefined;

/** A command whose action is synchronous: act, then let the pool run and check. */
function command(describe: string, act: (world: PoolWorld) => void, options: { applies?: (world: Readonly<PoolWorld>) => boolean } = {}): Command {
  return {
    check: (world) => options.applies?.(world) ?? true,
    async run(_model, world) {
      act(world);
      await world.step();
      if (TRACE) console.log(`${describe}\n${world.describe()}`);
    },
    toString: () => describe,
  };
}

const agent = fc.constantFrom(...AGENTS);
/** Now and then a name the pool must refuse: infrastructure, or no service at all. */
const anyName = fc.oneof({ weight: 12, arbitrary: agent }, { weight: 1, arbitrary: fc.constantFrom(INFRA, UNKNOWN) });

/** Who calls: the host half the time, else an agent, known by its address (CALLER_POLICY=agents). */
const from = fc.oneof({ weight: 4, arbitrary: fc.constant<From>('host') }, { weight: 3, arbitrary: fc.constantFrom<From>(...AGENTS) });
const fromText = (who: From) => (who === 'host' ? '' : ` from ${who}`);

const request = fc
  .record({ name: anyName, wait: fc.option(fc.constantFrom(5, 30, WAIT_MAX_SECONDS), { freq: 2 }), hangsUp: fc.boolean(), who: from })
  .map(({ name, wait, hangsUp, who }) =>
    command(`request ${name}${wait === null ? '' : ` wait ${wait}s`}${hangsUp ? ' (may hang up)' : ''}${fromText(who)}`, (w) => w.request(name, wait ?? undefined, hangsUp, who)),
  );

const hangUp = fc.nat().map((pick) =>
  command(`hang up #${pick}`, (w) => {
    const callers = w.hangUps();
    callers[pick % callers.length]?.controller?.abort();
  }, { applies: (w) => w.hangUps().length > 0 }),
);

const release = fc.record({ name: anyName, who: from }).map(({ name, who }) => command(`release ${name}${fromText(who)}`, (w) => w.release(name, who)));

const heartbeat = fc
  .record({ name: anyName, busy: fc.option(fc.constantFrom(0, 30, 600), { freq: 2 }), who: from })
  .map(({ name, busy, who }) => command(`heartbeat ${name}${busy === null ? '' : ` busy ${busy}s`}${fromText(who)}`, (w) => w.heartbeat(name, busy ?? undefined, who)));

/** Work mode: the heartbeat loops of every agent beat at once, each as itself, but for one whose loop is dead (if any). */
const loops = fc
  .option(agent, { freq: 3 })
  .map((dead) => command(`heartbeat loops beat${dead === null ? '' : `, not ${dead}'s`}`, (w) => {
    for (const name of AGENTS) if (name !== dead) w.heartbeat(name, undefined, name);
  }));

const mark = agent.map((name) => command(`touch activity/${name}`, (w) => w.touchMark(name)));

const reconcile = fc.constant(command('reconcile', (w) => w.reconcile()));

/** Docker answers one call in flight, any of them, in any order: a success, a failure, or (by waiting) a slow answer. */
const answer = fc
  .record({ pick: fc.nat(), ok: fc.oneof({ weight: 3, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }), fresh: fc.boolean() })
  .map(({ pick, ok, fresh }) =>
    command(`answer call #${pick} ${ok ? `ok${fresh ? ' (listing as of now)' : ''}` : 'failed'}`, (w) => {
      const call = w.driver.pending[pick % w.driver.pending.length];
      if (ok) call?.succeed(fresh);
      else call?.fail();
    }, { applies: (w) => w.driver.pending.length > 0 }),
  );

/** Containers appearing (`docker compose up` by hand), vanishing (a crash, `docker rm`) or frozen (`docker pause`) behind the pool's back. */
const docker = fc
  .record({ name: agent, change: fc.constantFrom('appears', 'vanishes', 'is paused'), longAgo: fc.boolean() })
  .map(({ name, change, longAgo }) =>
    command(`docker: ${name} ${change}${change === 'appears' && longAgo ? ' (started 10 min ago)' : ''}`, (w) => {
      if (change === 'appears') w.dockerAppears(name, longAgo ? 600_000 : 0);
      else if (change === 'vanishes') w.dockerVanishes(name);
      else w.dockerPauses(name);
    }),
  );

const advance = fc
  .constantFrom(1_000, 10_000, 30_000, 61_000, 600_000)
  .map((ms) => command(`advance ${ms / 1000}s`, (w) => w.advance(ms)));

/** A reload (SIGHUP) with another MAX_AGENTS, lowered or raised again. */
const configure = fc.integer({ min: 1, max: 3 }).map((cap) => command(`reload with MAX_AGENTS=${cap}`, (w) => w.configure(cap)));

const restart = fc.constant<Command>({
  check: () => true,
  async run(_model, world) {
    await world.restart();
    await world.step();
  },
  toString: () => 'restart the daemon',
});

/** `replayPath`: what fast-check prints beside a shrunk failure, to run exactly those commands again; `work`: with the heartbeat loops of work mode. */
export const poolCommands = (replayPath?: string, work = false) => fc.commands(
  [
    fc.oneof(
      { weight: 8, arbitrary: answer },
      { weight: 6, arbitrary: request },
      { weight: 2, arbitrary: release },
      { weight: 2, arbitrary: heartbeat },
      { weight: 2, arbitrary: reconcile },
      { weight: 3, arbitrary: advance },
      { weight: 2, arbitrary: docker },
      { weight: 1, arbitrary: hangUp },
      { weight: 1, arbitrary: mark },
      { weight: 1, arbitrary: configure },
      { weight: 1, arbitrary: restart },
      ...(work ? [{ weight: 3, arbitrary: loops }] : []),
    ),
  ],
  { maxCommands: 40, size: 'large', ...(replayPath !== undefined && { replayPath }) },
);

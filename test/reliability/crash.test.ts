import { watch } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ComposeProject, agentService, createComposeProject, requireDocker } from '../support/docker.js';
import { eventually } from '../support/daemon.js';
import { prng } from '../support/prng.js';
import { type CrashPool, type DaemonProcess, createCrashPool, sameSet, stateFileAgents } from './crash-harness.js';

/**
 * kill -9 of the daemon at the worst moments (a start in flight, between an eviction's stop and the
 * next start, state.json being written), then a restart on the same POOL_DIR, socket and compose
 * project. After each restart: the daemon comes up, state.json parses and no temp file is read,
 * and once its reconcile has run Docker's running agents are within the cap, all known to the
 * daemon, and exactly the agent set of state.json.
 */
const docker = await requireDocker();
const SEED = Number(process.env.CRASH_SEED ?? Math.floor(Math.random() * 2 ** 31));
const RUNS = Number(process.env.CRASH_RUNS ?? 20);
const MAX_AGENTS = 2;
const AGENTS = ['a1', 'a2', 'a3', 'a4'];
const INFRA = ['gateway'];
/** How long the restarted daemon may take to converge (orphaned compose commands of the killed one finish meanwhile). */
const CONVERGE_MS = 20_000;
const rand = prng(SEED);
const pick = <T>(items: readonly T[]): T => items[Math.floor(rand() * items.length)] as T;
const ignore = () => {};
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;

describe.skipIf(!docker)('kill -9 of the daemon at the worst moments, then a restart', () => {
  let project: ComposeProject;
  let pool: CrashPool;
  let daemon: DaemonProcess;
  /** Measured durations (ms) of an uninterrupted start into a free slot, and of an eviction (stop + start). */
  let startMs = 400;
  let evictMs = 1000;

  beforeAll(async () => {
    console.info(`crash suite seed ${SEED} (replay with CRASH_SEED=${SEED}), ${RUNS} runs per scenario`);
    await execa('npm', ['run', 'build', '--silent'], { cwd: new URL('../..', import.meta.url).pathname });
    project = await createComposeProject(Object.fromEntries([...AGENTS, ...INFRA].map((name) => [name, agentService()])));
    pool = await createCrashPool({ project, agents: AGENTS, infra: INFRA, maxAgents: MAX_AGENTS });
    daemon = await pool.start();
    // Warm-up (also times the windows the kills aim at): a start into a free slot, then an eviction.
    let t = Date.now();
    await daemon.client.request('a1');
    startMs = Date.now() - t;
    await daemon.client.request('a2');
    t = Date.now();
    await daemon.client.request('a3');
    evictMs = Date.now() - t;
    console.info(`crash suite: a start takes ${startMs} ms, an eviction (stop + start) ${evictMs} ms`);
  });

  afterAll(async () => {
    await daemon?.kill9();
    await project?.remove();
    await pool?.cleanup();
  });

  /** A start outside the daemon, racing its restart (see the start-in-flight scenario). */
  let lateStart: Promise<unknown> | undefined;

  /** What a run observed besides breaks, for the summary. */
  interface Notes {
    hits: number;
    leftoverTemps: number;
    overCapAfterKill: number;
    /** Runs whose first check after `ready:` did not hold yet (the restart was still converging), and the slowest convergence. */
    converging: number;
    slowestMs: number;
    firstMisses: string[];
    restartMs: number[];
  }

  /**
   * The daemon was just killed. Restarts it and checks every invariant; returns the breaks found.
   * A torn temp file is planted beside state.json first: the restarted daemon must not read it.
   */
  async function restartAndCheck(killed: DaemonProcess, notes: Notes): Promise<string[]> {
    const breaks: string[] = [];
    const files = await pool.files();
    if (files.some((f) => f.includes('.json.tmp-'))) notes.leftoverTemps++;
    if ((await pool.runningInDocker()).length > MAX_AGENTS) notes.overCapAfterKill++;
    const planted = `state.json.tmp-${killed.child.pid}-999999`;
    await writeFile(join(pool.poolDir, planted), '{"version":1,"agents":{"a4":{"status":"runn');

    const restartAt = Date.now();
    try {
      daemon = await pool.start();
      notes.restartMs.push(Date.now() - restartAt);
    } catch (error) {
      breaks.push(`restart failed: ${(error as Error).message.slice(0, 2000)}`);
      daemon = await pool.start(); // keep the suite going; the break is counted
    }
    // An out-of-band start racing the restart must have landed before the checks begin.
    if (lateStart !== undefined) await lateStart.finally(() => (lateStart = undefined));
    const parsed = await stateFileAgents(pool.poolDir);
    if ('error' in parsed) breaks.push(parsed.error);
    const after = await pool.files();
    if (after.includes(planted)) breaks.push('the leftover temp file was not cleared at start-up');
    const corrupt = after.filter((f) => f.startsWith('state.json.corrupt-'));
    if (corrupt.length > 0) breaks.push(`state.json was torn and moved aside: ${corrupt.join(', ')}`);
    if (/state\.json was unreadable/.test(daemon.output())) breaks.push('the daemon found state.json unreadable');

    let last = '';
    let polls = 0;
    const t0 = Date.now();
    try {
      await eventually(
        async () => {
          polls++;
          const inDocker = await pool.runningInDocker();
          const status = await daemon.client.status();
          const known = status.running.map((r) => r.id).sort();
          const file = await stateFileAgents(pool.poolDir);
          const stateAgents = 'agents' in file ? file.agents : [`<${file.error}>`];
          last = `docker running [${inDocker}], status [${known}], state.json [${stateAgents}]`;
          try {
            check(inDocker, known, stateAgents);
          } catch (error) {
            if (polls === 1) notes.firstMisses.push((error as Error).message);
            throw error;
          }
        },
        CONVERGE_MS,
        100,
      );
      if (polls > 1) notes.converging++;
      notes.slowestMs = Math.max(notes.slowestMs, Date.now() - t0);
    } catch (error) {
      breaks.push(`not converged within ${CONVERGE_MS / 1000} s: ${(error as Error).message}`);
    }
    // Nor may temp files of the killed daemon pile up in POOL_DIR, crash after crash (state.json's or roster.json's).
    const orphans = (await pool.files()).filter((f) => f.includes(`.tmp-${killed.child.pid}-`));
    if (orphans.length > 0) breaks.push(`temp files of the killed daemon left in POOL_DIR: ${orphans.join(', ')}`);
    if (!daemon.isAlive()) breaks.push(`the restarted daemon exited: ${daemon.output().slice(-2000)}`);
    return breaks;

    function check(inDocker: string[], known: string[], stateAgents: string[]) {
      if (inDocker.length > MAX_AGENTS) throw new Error(`over the cap: ${last}`);
      const forgotten = inDocker.filter((a) => !known.includes(a));
      if (forgotten.length > 0) throw new Error(`running but unknown to the daemon (${forgotten}): ${last}`);
      if (!sameSet(stateAgents, inDocker)) throw new Error(`state.json differs from Docker: ${last}`);
      if (!sameSet(known, inDocker)) throw new Error(`status differs from Docker: ${last}`);
    }
  }

  async function scenario(name: string, run: (index: number, notes: Notes) => Promise<void>, hitsLabel: string) {
    const notes: Notes = { hits: 0, leftoverTemps: 0, overCapAfterKill: 0, converging: 0, slowestMs: 0, firstMisses: [], restartMs: [] };
    const breaks: string[] = [];
    const started = Date.now();
    for (let i = 0; i < RUNS; i++) {
      const killed = daemon;
      await run(i, notes);
      expect(killed.isAlive()).toBe(false);
      for (const b of await restartAndCheck(killed, notes)) breaks.push(`run ${i}: ${b}`);
    }
    console.info(`crash scenario ${name}: ${RUNS} runs, ${breaks.length} invariant breaks`);
    console.info(
      `  (${hitsLabel}: ${notes.hits}/${RUNS}; temp file left by the kill: ${notes.leftoverTemps}; over the cap right after the kill: ${notes.overCapAfterKill}; still converging at ready: ${notes.converging}, slowest ${notes.slowestMs} ms; restart to ready: median ${median(notes.restartMs)} ms; ${((Date.now() - started) / 1000).toFixed(1)} s)`,
    );
    for (const m of notes.firstMisses) console.info(`  converging at ready: ${m}`);
    for (const b of breaks) console.info(`  ${b}`);
    expect(breaks).toEqual([]);
  }

  /** Agents the daemon lists as running (it matches Docker after the last check). */
  const runningNow = async () => (await daemon.client.status()).running.map((r) => r.id);

  it('start in flight: SIGKILL while an agent is being started into a free slot', async () => {
    const window = Math.min(400, Math.max(150, startMs));
    await scenario(
      'start-in-flight',
      async (i, notes) => {
        let running = await runningNow();
        while (running.length >= MAX_AGENTS) {
          await daemon.client.release(pick(running));
          running = await runningNow();
        }
        const target = pick(AGENTS.filter((a) => !running.includes(a)));
        const delay = rand() * window;
        let settled = false;
        daemon.client.request(target, { requestedBy: 'crash-test' }).then(
          () => (settled = true),
          () => (settled = true),
        );
        await sleep(delay);
        if (!settled) notes.hits++;
        await daemon.kill9();
        if (i % 4 === 1) {
          // A late start lands while the daemon is down (as an orphaned `compose up` would): the pool
          // may now be over its cap, and the restart must adopt and bring it back under.
          await project.compose('up', '--detach', '--no-deps', pick(AGENTS.filter((a) => a !== target && !running.includes(a))));
        } else if (i % 4 === 3) {
          // The same, landing while the daemon restarts (before, during or after its start-up reconcile).
          const late = pick(AGENTS.filter((a) => a !== target && !running.includes(a)));
          lateStart = sleep(rand() * 700).then(() => project.compose('up', '--detach', '--no-deps', late));
        }
      },
      'killed before the start replied',
    );
  });

  it('eviction: SIGKILL between the victim stop and the newcomer start', async () => {
    const window = Math.max(600, Math.round(evictMs * 1.2));
    await scenario(
      'evict-stop-start',
      async (i, notes) => {
        let running = await runningNow();
        while (running.length < MAX_AGENTS) {
          await daemon.client.request(pick(AGENTS.filter((a) => !running.includes(a))));
          running = await runningNow();
        }
        const target = pick(AGENTS.filter((a) => !running.includes(a)));
        const from = daemon.output().length;
        daemon.client.request(target, { requestedBy: 'crash-test' }).catch(ignore);
        if (i % 2 === 0) {
          // Uniform over the whole stop + start.
          await sleep(rand() * window);
        } else {
          // Aimed: right after the victim is confirmed down, before or while the newcomer starts.
          const jitter = rand() * Math.max(150, startMs * 0.5);
          await Promise.race([daemon.waitFor(`evicted `, from), sleep(window * 2)]);
          await sleep(jitter);
        }
        const out = daemon.output().slice(from);
        if (out.includes('evicted ') && !out.includes(`started ${target}`)) notes.hits++;
        await daemon.kill9();
      },
      'killed after the stop was confirmed and before the start was',
    );
  });

  it('state.json being written: SIGKILL at a random instant of heavy churn', async () => {
    await scenario(
      'state-write-churn',
      async (i, notes) => {
        let stop = false;
        const requester = async () => {
          while (!stop) {
            await daemon.client.request(pick(AGENTS), { requestedBy: 'churn' }).catch(ignore);
          }
        };
        const heartbeater = async () => {
          while (!stop) {
            await daemon.client.heartbeat(pick(AGENTS)).catch(ignore);
            await sleep(5);
          }
        };
        const workers = [requester(), requester(), heartbeater(), heartbeater()];
        if (i % 2 === 0) {
          // A random instant of the churn.
          await sleep(100 + rand() * 1400);
        } else {
          // Aimed: the instant the daemon creates its Nth temp file of state.json (or, one run in two,
          // of roster.json, written right after it), i.e. mid-write.
          const prefix = i % 4 === 1 ? 'state.json.tmp-' : 'roster.json.tmp-';
          const nth = 1 + Math.floor(rand() * 4);
          let seen = 0;
          const killed = new Promise<void>((resolve) => {
            const watcher = watch(pool.poolDir, (_event, file) => {
              if (file?.startsWith(prefix) && ++seen === nth) {
                daemon.child.kill('SIGKILL');
                notes.hits++;
                watcher.close();
                resolve();
              }
            });
            setTimeout(() => {
              watcher.close();
              resolve();
            }, 3000);
          });
          await killed;
        }
        await daemon.kill9();
        stop = true;
        await Promise.allSettled(workers);
      },
      'kills fired the instant a state.json/roster.json temp file appeared',
    );
  });
});

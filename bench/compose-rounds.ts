// Targets 6 and 7: what the daemon adds to the docker compose work of a start and of an eviction,
// in alternating rounds against the same compose commands typed by hand (the driver runs
// `up --detach --no-deps <svc>` and `stop --timeout <s> <svc>`).
import { setTimeout as sleep } from 'node:timers/promises';
import { startTestDaemon, type TestDaemon } from '../test/support/daemon.js';
import { type Row, median, until } from './lib.js';

export const ROUNDS = 10;
const STOP_TIMEOUT = '3';

async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const t = process.hrtime.bigint();
  const value = await fn();
  return { ms: Number(process.hrtime.bigint() - t) / 1e6, value };
}

/** Waits until the daemon's view is `running` (in any order) and nothing is in transition, then lets Docker events settle. */
async function settle(t: TestDaemon, running: string[]): Promise<void> {
  const want = [...running].sort().join(',');
  await until(async () => {
    const s = (await t.http('GET', '/status')).body as { running: { id: string; state: string }[] };
    return s.running.every((a) => a.state === 'running') && s.running.map((a) => a.id).sort().join(',') === want;
  }, 30_000, `pool to show [${want}]`);
  await sleep(600);
}

const daemonEnv = { MAX_AGENTS: '1', EVICT_GRACE_SECONDS: '60', STOP_TIMEOUT_SECONDS: STOP_TIMEOUT };

export async function startRounds(): Promise<Row[]> {
  const t = await startTestDaemon({ agents: ['ceo', 'cto'], infra: [], env: daemonEnv });
  const viaDaemon: number[] = [];
  const byHand: number[] = [];
  try {
    await t.project.compose('create', 'ceo');
    for (let i = 0; i < ROUNDS; i++) {
      const d = await timed(() => t.http('POST', '/request', { agent: 'ceo' }));
      if ((d.value.body as { status?: string }).status !== 'started') throw new Error(`request: ${d.value.text}`);
      viaDaemon.push(d.ms);
      await t.project.compose('stop', '--timeout', STOP_TIMEOUT, 'ceo');
      await settle(t, []);
      byHand.push((await timed(() => t.project.compose('up', '--detach', '--no-deps', 'ceo'))).ms);
      await t.project.compose('stop', '--timeout', STOP_TIMEOUT, 'ceo');
      await settle(t, []);
    }
  } finally {
    await t.stop();
  }
  const floor = median(byHand);
  return [
    { id: '6', what: `/request into a free slot (median of ${ROUNDS})`, figure: median(viaDaemon), floor, unit: 'ms', target: 'compose up -d by hand + 50 ms', limit: floor + 50, kind: 'max' },
  ];
}

export async function evictRounds(): Promise<Row[]> {
  const t = await startTestDaemon({ agents: ['ceo', 'cto'], infra: [], env: daemonEnv });
  const viaDaemon: number[] = [];
  const byHand: number[] = [];
  try {
    await t.project.compose('create', 'cto');
    await t.http('POST', '/request', { agent: 'ceo' });
    await settle(t, ['ceo']);
    for (let i = 0; i < ROUNDS; i++) {
      // ceo runs and is past its grace period: a request for cto evicts it.
      t.advance(120);
      const d = await timed(() => t.http('POST', '/request', { agent: 'cto' }));
      if ((d.value.body as { evicted?: string }).evicted !== 'ceo') throw new Error(`request: ${d.value.text}`);
      viaDaemon.push(d.ms);
      await settle(t, ['cto']);
      // The same by hand the other way round: stop cto, start ceo (the daemon adopts it).
      byHand.push(
        (
          await timed(async () => {
            await t.project.compose('stop', '--timeout', STOP_TIMEOUT, 'cto');
            await t.project.compose('up', '--detach', '--no-deps', 'ceo');
          })
        ).ms,
      );
      await settle(t, ['ceo']);
    }
  } finally {
    await t.stop();
  }
  const floor = median(byHand);
  return [
    { id: '7', what: `eviction: /request on a full pool (median of ${ROUNDS})`, figure: median(viaDaemon), floor, unit: 'ms', target: 'compose stop + up -d by hand + 50 ms', limit: floor + 50, kind: 'max' },
  ];
}

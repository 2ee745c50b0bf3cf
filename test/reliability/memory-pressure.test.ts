/**
 * The pressure guard (issue 17) against the host's real MemAvailable: a filler container outside
 * the pool writes to its /dev/shm, which the kernel cannot reclaim, so MemAvailable really falls
 * below MEMORY_PRESSURE_MIN; removing it brings MemAvailable back. It reads host-wide memory, so
 * it runs here, one file at a time, and not beside the parallel main suite.
 *
 * The sizes follow from the host: the guard stands down only above the minimum plus a tenth of
 * it, so the minimum is set a tenth (and some) below MemAvailable at the start, and the filler
 * holds that gap and some more: about 2.6 GiB on a host with 23 GiB available.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { afterEach, describe, expect, it } from 'vitest';
import { pressureMargin } from '../../src/core/pressure.js';
import { type ComposeProject, TEST_IMAGE, createComposeProject, holding, requireDocker } from '../support/docker.js';
import { type TestDaemon, eventually, startTestDaemon } from '../support/daemon.js';

const docker = await requireDocker();
const MiB = 1024 ** 2;
/** What the rest of the machine (others' tests) may take or give back while this runs, either way. */
const NOISE_BYTES = 256 * MiB;
const SYNC_INTERVAL_S = 3;

async function memAvailable(): Promise<number> {
  const kib = Number(/^MemAvailable:\s+(\d+) kB$/m.exec(await readFile('/proc/meminfo', 'utf8'))?.[1]);
  if (!(kib > 0)) throw new Error('no MemAvailable in /proc/meminfo');
  return kib * 1024;
}

describe.skipIf(!docker)('the pressure guard on the host’s real memory (issue 17)', () => {
  let pool: TestDaemon | undefined;
  let project: ComposeProject | undefined;
  const filler = `pooltest-filler-${process.pid}`;
  afterEach(async () => {
    await execa('docker', ['rm', '--force', filler], { reject: false });
    await pool?.stop();
    await project?.remove();
    pool = project = undefined;
  });

  it('stops agents one per SYNC_INTERVAL and refuses starts while a filler holds the host below the minimum, and admits starts again once it is gone', async () => {
    const available = await memAvailable();
    // Back to `available`, less the noise, is above the minimum plus its margin (a tenth of it): the guard can stand down.
    const min = Math.floor((available - NOISE_BYTES) / 1.1);
    const fillerMiB = Math.ceil((available - min + NOISE_BYTES) / MiB);
    expect(available - fillerMiB * MiB, 'the host has room for the filler beside the rest').toBeGreaterThan(4 * 1024 * MiB);

    project = await createComposeProject({ a: holding(1), b: holding(1), c: holding(1), d: holding(1) });
    pool = await startTestDaemon({ project, infra: [], env: { MAX_AGENTS: '5', MEMORY_PRESSURE_MIN: String(min), SYNC_INTERVAL: String(SYNC_INTERVAL_S), EVICT_GRACE_SECONDS: '0' } });
    const request = async (agent: string) => (await pool!.http('POST', '/request', { agent })).body;
    for (const agent of ['a', 'b', 'c']) {
      expect(await request(agent)).toEqual({ status: 'started', agent });
      // Apart, so that their order by last activity is theirs.
      pool.advance(1);
    }

    await execa('docker', ['run', '--detach', '--name', filler, '--network', 'none', `--shm-size=${fillerMiB + 64}m`, TEST_IMAGE,
      'sh', '-c', `dd if=/dev/zero of=/dev/shm/fill bs=1M count=${fillerMiB} 2>/dev/null; trap 'exit 0' TERM INT; while :; do sleep 1; done`]);
    await eventually(async () => expect(await memAvailable()).toBeLessThan(min), 60_000, 200);
    // Three readings below, one per SYNC_INTERVAL, and the guard acts: the agents stopped one at a time.
    const goneAt = new Map<string, number>();
    await eventually(async () => {
      const running = await pool!.runningInDocker();
      for (const agent of ['a', 'b', 'c']) if (!running.includes(agent) && !goneAt.has(agent)) goneAt.set(agent, Date.now());
      expect(goneAt.size).toBe(3);
    }, 60_000, 100);
    const events = (await readFile(join(pool.poolDir, 'events.jsonl'), 'utf8')).trim().split('\n').map((line) => JSON.parse(line) as { type: string; agent: string; by: string });
    // The least recently active first, each at its own reading: a SYNC_INTERVAL (less a stop's spread) apart.
    expect(events.filter((e) => e.type === 'evicted' && e.by === 'memory_pressure').map((e) => e.agent)).toEqual(['a', 'b', 'c']);
    expect(goneAt.get('b')! - goneAt.get('a')!).toBeGreaterThanOrEqual((SYNC_INTERVAL_S * 1000) / 2);
    expect(goneAt.get('c')! - goneAt.get('b')!).toBeGreaterThanOrEqual((SYNC_INTERVAL_S * 1000) / 2);
    // Nothing runs and there is no budget: only the guard refuses.
    expect(await request('d')).toMatchObject({ status: 'pool_full', reason: 'memory_pressure' });
    expect(await pool.runningInDocker()).toEqual([]);

    await execa('docker', ['rm', '--force', filler]);
    await eventually(async () => expect(await memAvailable()).toBeGreaterThan(min + pressureMargin(min)), 60_000, 200);
    // The guard stands down at its next reading.
    await sleep(SYNC_INTERVAL_S * 1000);
    await eventually(async () => expect(await request('d')).toEqual({ status: 'started', agent: 'd' }), 30_000, 500);
    expect(await pool.runningInDocker()).toEqual(['d']);
  });
});

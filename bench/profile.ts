// Profiling aid (not a benchmark): a process-driver daemon under --cpu-prof, loaded on one route.
// BENCH_PROFILE_PATH=/status|/heartbeat, BENCH_PROFILE_DIR=where the .cpuprofile goes.
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { load, spawnProcessDaemon } from './lib.js';

if (process.env.BENCH_ENTRY === 'profile') {
  const dir = process.env.BENCH_PROFILE_DIR ?? (await mkdtemp(join(tmpdir(), 'pbprof-')));
  const path = process.env.BENCH_PROFILE_PATH ?? '/status';
  process.env.BENCH_DAEMON_NODE_ARGS = `--cpu-prof --cpu-prof-dir=${dir}`;
  const d = await spawnProcessDaemon({ agents: ['ceo', 'cto', 'cfo', 'qa'], running: ['ceo', 'cto', 'cfo'], maxAgents: 3 });
  try {
    const r = await load({ url: `${d.url}${path}`, ...(path === '/heartbeat' && { method: 'POST' as const, body: '{"agent":"ceo"}' }), seconds: 5 });
    console.log(`${path}: ${Math.round(r.rps)} req/s, p99 ${r.p99} ms; profile in ${dir}`);
  } finally {
    await d.stop();
  }
}

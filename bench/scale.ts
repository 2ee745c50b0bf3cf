// Target 8: scale. 1,000 known agents, MAX_AGENTS 200, all 200 running as local processes (the
// process driver, `sleep 3600`); `/status` under load; the pure admission decision at 10, 100 and
// 1,000 agents; Docker listings per reconcile with a recording DOCKER_BIN.
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type AgentRecord, type PoolRules, type PoolState, decideRequest } from '../src/core/index.js';
import { createComposeDriver } from '../src/drivers/compose.js';
import { agentService, createComposeProject } from '../test/support/docker.js';
import { type Row, load, runStandalone, spawnProcessDaemon, startBareServer, warm } from './lib.js';

const KNOWN = 1000;
const MAX = 200;
const names = (n: number, prefix = 'agent') => Array.from({ length: n }, (_, i) => `${prefix}-${String(i).padStart(4, '0')}`);

async function statusAtScale(): Promise<Row[]> {
  const all = names(KNOWN);
  const t0 = Date.now();
  const d = await spawnProcessDaemon({ agents: all, running: all.slice(0, MAX), maxAgents: MAX });
  const startSeconds = (Date.now() - t0) / 1000;
  try {
    const bytes = JSON.stringify((await d.http('GET', '/status')).json);
    const bare = await startBareServer(bytes, { port: 0 });
    await warm(`${bare.url}/status`);
    const floor = await load({ url: `${bare.url}/status`, seconds: 5 });
    await bare.stop();
    await warm(`${d.url}/status`);
    const s = await load({ url: `${d.url}/status`, seconds: 5 });
    // Heartbeats change the state on every call, so no two /status replies are alike: the worst case.
    const hb = load({ url: `${d.url}/heartbeat`, method: 'POST', body: JSON.stringify({ agent: all[0] }), connections: 4, seconds: 5 });
    const mixed = await load({ url: `${d.url}/status`, connections: 12, seconds: 5 });
    await hb;
    return [
      { id: '8', what: `GET /status p99, ${MAX} running of ${KNOWN} (${(bytes.length / 1024).toFixed(0)} KB; started in ${startSeconds.toFixed(1)} s)`, figure: s.p99, floor: floor.p99, unit: 'ms', target: '≤ 20 ms', limit: 20, kind: 'max' },
      { id: '8', what: 'GET /status req/s at that size (info)', figure: s.rps, floor: floor.rps, unit: 'req/s', target: '', kind: 'info' },
      { id: '8', what: 'GET /status p99 with heartbeats alongside (12+4 conn)', figure: mixed.p99, unit: 'ms', target: '≤ 20 ms', limit: 20, kind: 'max' },
    ];
  } finally {
    await d.stop();
  }
}

/** A full pool of `n` running agents, all past grace: a request for one more must pick a victim. */
function fullPool(n: number, now: number): { state: PoolState; rules: PoolRules; known: Set<string> } {
  const agents = new Map<string, AgentRecord>();
  names(n).forEach((name, i) => agents.set(name, { status: 'running', started: now - 3_600_000 + i, lastActive: now - 600_000 - ((i * 7919) % n), requestedBy: 'bench' }));
  return {
    state: { agents },
    rules: { maxAgents: n, evictGraceMs: 60_000, infra: new Set(), pinned: new Set(), busyMaxMs: 3_600_000 },
    known: new Set([...agents.keys(), 'newcomer']),
  };
}

function decideNs(n: number): number {
  const now = Date.now();
  const { state, rules, known } = fullPool(n, now);
  const catalogue = { known };
  const run = (iterations: number) => {
    let sink = 0;
    const t = process.hrtime.bigint();
    for (let i = 0; i < iterations; i++) {
      const d = decideRequest(state, { agent: 'newcomer', requestedBy: 'bench' }, now, rules, catalogue);
      if (d.kind === 'evict') sink++;
    }
    const ns = Number(process.hrtime.bigint() - t) / iterations;
    if (sink !== iterations) throw new Error('decideRequest did not evict');
    return ns;
  };
  const iterations = Math.max(200, Math.round(2_000_000 / n));
  run(iterations);
  return Math.min(run(iterations), run(iterations), run(iterations));
}

function decideCurve(): Row[] {
  const sizes = [10, 100, 1000];
  const ns = sizes.map(decideNs);
  const nlogn = (n: number) => n * Math.log2(n);
  const rows: Row[] = sizes.map((n, i) => ({ id: '8', what: `decideRequest (evicting) at n=${n}`, figure: ns[i]!, unit: 'ns/op', target: '', kind: 'info' as const }));
  for (const i of [1, 2]) {
    const growth = ns[i]! / ns[0]!;
    const bound = nlogn(sizes[i]!) / nlogn(sizes[0]!);
    rows.push({ id: '8', what: `decideRequest growth 10 → ${sizes[i]} (ratio of ns/op)`, figure: growth, unit: '×', target: `≤ n log n growth (${bound.toFixed(0)}×; linear ${sizes[i]! / 10}×)`, limit: bound, kind: 'max' });
  }
  return rows;
}

async function listingsPerReconcile(): Promise<Row[]> {
  const services = names(6, 'svc');
  const project = await createComposeProject(Object.fromEntries(services.map((n) => [n, agentService()])));
  const dir = await mkdtemp(join(tmpdir(), 'pbshim-'));
  try {
    const log = join(dir, 'calls.log');
    const bin = join(dir, 'docker-shim');
    await writeFile(bin, `#!/bin/sh\necho "$*" >> ${log}\nexec docker "$@"\n`);
    await chmod(bin, 0o755);
    const driver = createComposeDriver({ dockerBin: bin, composeDir: project.dir, project: project.name });
    await driver.init();
    const callsFor = async () => {
      await writeFile(log, '');
      await driver.list();
      return (await readFile(log, 'utf8')).split('\n').filter(Boolean).length;
    };
    const empty = await callsFor();
    await project.compose('up', '--detach', ...services);
    const six = await callsFor();
    return [
      { id: '8', what: 'docker calls per listing (one per reconcile), 0 running', figure: empty, unit: 'calls', target: '1, whatever the size', limit: 1, kind: 'max' },
      { id: '8', what: `docker calls per listing, ${services.length} running`, figure: six, unit: 'calls', target: '1, whatever the size', limit: 1, kind: 'max' },
    ];
  } finally {
    await project.remove();
    await rm(dir, { recursive: true, force: true });
  }
}

export async function main(): Promise<Row[]> {
  return [...(await statusAtScale()), ...decideCurve(), ...(await listingsPerReconcile())];
}

await runStandalone('scale', 'Scale: 1,000 known, 200 running (target 8)', main);

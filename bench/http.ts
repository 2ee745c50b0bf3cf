// Targets 1, 2 and 5: the HTTP bridge under 16 connections against a bare node:http server
// answering the same bytes, and the daemon's own RSS idle and under that load.
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Row, load, rssMb, runStandalone, sampleRss, spawnComposeDaemon, startBareServer, warm } from './lib.js';

const RUNNING = ['ceo', 'cto', 'cfo'];
const SECONDS = 5;

export async function main(): Promise<Row[]> {
  const d = await spawnComposeDaemon(RUNNING);
  try {
    await sleep(2000);
    const idleRss = await rssMb(d.pid);

    // (1) GET /status
    const statusBytes = JSON.stringify((await d.http('GET', '/status')).json);
    const bareStatus = await startBareServer(statusBytes, { port: 0 });
    await warm(`${bareStatus.url}/status`);
    const floorStatus = await load({ url: `${bareStatus.url}/status`, seconds: SECONDS });
    await bareStatus.stop();
    await warm(`${d.url}/status`);
    const peak = sampleRss(d.pid);
    const status = await load({ url: `${d.url}/status`, seconds: SECONDS });

    // (2) POST /heartbeat, with the durability the SPEC asks for checked on the side.
    const hbBody = JSON.stringify({ agent: 'ceo' });
    const bareHb = await startBareServer(JSON.stringify({ status: 'ok' }), { port: 0 });
    await warm(`${bareHb.url}/heartbeat`, 'POST', hbBody);
    const floorHb = await load({ url: `${bareHb.url}/heartbeat`, method: 'POST', body: hbBody, seconds: SECONDS });
    await bareHb.stop();
    await warm(`${d.url}/heartbeat`, 'POST', hbBody);
    const statePath = join(d.poolDir, 'state.json');
    const inodes = new Set<number>();
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        inodes.add((await stat(statePath).catch(() => ({ ino: -1 }))).ino);
        await sleep(20);
      }
    })();
    const hb = await load({ url: `${d.url}/heartbeat`, method: 'POST', body: hbBody, seconds: SECONDS });
    const loadEnded = Date.now();
    watching = false;
    await watcher;
    const loadRss = await peak.stop();
    await sleep(1500);
    const saved = JSON.parse(await readFile(statePath, 'utf8')) as { agents: Record<string, { last_active: string }> };
    const flushedAge = (loadEnded - Date.parse(saved.agents.ceo!.last_active)) / 1000;

    return [
      { id: '1', what: 'GET /status req/s (16 conn, 3 running)', figure: status.rps, floor: floorStatus.rps, unit: 'req/s', target: '≥ 0.7 × floor', limit: 0.7 * floorStatus.rps, kind: 'min' },
      { id: '1', what: 'GET /status p99 latency', figure: status.p99, floor: floorStatus.p99, unit: 'ms', target: '≤ 2 × floor (≥ 1 ms)', limit: 2 * Math.max(floorStatus.p99, 1), kind: 'max' },
      { id: '2', what: 'POST /heartbeat req/s (16 conn)', figure: hb.rps, floor: floorHb.rps, unit: 'req/s', target: '≥ 0.6 × floor', limit: 0.6 * floorHb.rps, kind: 'min' },
      { id: '2', what: `state.json writes during ${SECONDS} s of heartbeats`, figure: inodes.size - 1, unit: 'writes', target: `≤ 1/s (+1), not 1/heartbeat (${Math.round(hb.rps * SECONDS)} sent)`, limit: SECONDS + 1, kind: 'max' },
      { id: '2', what: 'age of saved last_active 1.5 s after load', figure: flushedAge, unit: 's', target: 'flushed within 1 s', limit: 1, kind: 'max' },
      { id: '5', what: 'daemon RSS idle (3 agents)', figure: idleRss, unit: 'MB', target: '≤ 80 MB', limit: 80, kind: 'max' },
      { id: '5', what: 'daemon RSS peak under (1)+(2) load', figure: loadRss, unit: 'MB', target: '≤ 120 MB', limit: 120, kind: 'max' },
    ];
  } finally {
    await d.stop();
  }
}

await runStandalone('http', 'HTTP bridge vs bare node:http (targets 1, 2, 5)', main);

// Target 3: sequential `status` round trips through the SDK (tRPC over the Unix socket) against
// a plain node:http request, with a keep-alive Agent, to a bare server on a socket path of the
// same length answering the same bytes.
import { Agent, request } from 'node:http';
import { dirname, join } from 'node:path';
import { createPoolClient } from '../sdk/index.js';
import { type Row, median, runStandalone, spawnProcessDaemon, startBareServer } from './lib.js';

const BLOCKS = 20;
const PER_BLOCK = 150;
const WARMUP = 500;

async function timeEach(n: number, fn: () => Promise<unknown>): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = process.hrtime.bigint();
    await fn();
    times.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  return times;
}

function get(agent: Agent, socketPath: string, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, agent, path }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve(Buffer.concat(chunks).toString()));
    });
    req.once('error', reject);
    req.end();
  });
}

export async function main(): Promise<Row[]> {
  const d = await spawnProcessDaemon({ agents: ['ceo', 'cto', 'cfo', 'qa'], running: ['ceo', 'cto', 'cfo'], maxAgents: 3 });
  const client = createPoolClient({ socketPath: d.socketPath });
  const toDaemon = new Agent({ keepAlive: true });
  const toBare = new Agent({ keepAlive: true });
  let bare: Awaited<ReturnType<typeof startBareServer>> | undefined;
  const times: Record<'sdk' | 'direct' | 'plain', number[]> = { sdk: [], direct: [], plain: [] };
  try {
    const reply = await get(toDaemon, d.socketPath, '/info.status');
    const bareSocket = join(dirname(d.socketPath), 'b.sock');
    bare = await startBareServer(reply, { socketPath: bareSocket });
    const ways = {
      sdk: () => client.status(),
      // The same procedure requested with plain node:http: what the server side alone costs.
      direct: () => get(toDaemon, d.socketPath, '/info.status'),
      plain: () => get(toBare, bareSocket, '/info.status'),
    };
    for (const fn of Object.values(ways)) await timeEach(WARMUP, fn);
    // Interleaved blocks: load from other processes on this shared machine falls on all three alike.
    for (let block = 0; block < BLOCKS; block++) {
      for (const [name, fn] of Object.entries(ways) as [keyof typeof ways, () => Promise<unknown>][]) times[name].push(...(await timeEach(PER_BLOCK, fn)));
    }
  } finally {
    client.close();
    toDaemon.destroy();
    toBare.destroy();
    await bare?.stop();
    await d.stop();
  }
  const [rpc, direct, plain] = [median(times.sdk) * 1000, median(times.direct) * 1000, median(times.plain) * 1000];
  const rounds = BLOCKS * PER_BLOCK;
  return [
    { id: '3', what: `SDK info.status round trip, median of ${rounds}`, figure: rpc, floor: plain, unit: 'µs', target: '≤ 3 × floor', limit: 3 * plain, kind: 'max' },
    { id: '3', what: 'of which the server: plain node:http GET /info.status to the daemon', figure: direct, floor: plain, unit: 'µs', target: '(breakdown)', kind: 'info' },
  ];
}

await runStandalone('rpc', 'tRPC over the Unix socket vs plain node:http on the same socket path (target 3), interleaved', main);

// Target 3: sequential `status` round trips through the SDK (tRPC over the Unix socket) against
// a plain node:http request, with a keep-alive Agent, to a bare server on the same socket path
// answering the same bytes.
import { mkdir, rm } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { dirname } from 'node:path';
import { createPoolClient } from '../sdk/index.js';
import { type Row, median, runStandalone, spawnProcessDaemon, startBareServer } from './lib.js';

const ROUNDS = 3000;
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
  let rpc: number;
  let direct: number;
  let reply: string;
  const socketPath = d.socketPath;
  try {
    const client = createPoolClient({ socketPath });
    await timeEach(WARMUP, () => client.status());
    rpc = median(await timeEach(ROUNDS, () => client.status()));
    client.close();
    // The same procedure requested with plain node:http: what the server side alone costs.
    const agent = new Agent({ keepAlive: true });
    reply = await get(agent, socketPath, '/info.status');
    await timeEach(WARMUP, () => get(agent, socketPath, '/info.status'));
    direct = median(await timeEach(ROUNDS, () => get(agent, socketPath, '/info.status')));
    agent.destroy();
  } finally {
    await d.stop();
  }
  // The daemon is gone and its socket with it: the bare server takes the same path.
  await mkdir(dirname(socketPath), { recursive: true });
  const bare = await startBareServer(reply, { socketPath });
  let plain: number;
  try {
    const agent = new Agent({ keepAlive: true });
    await timeEach(WARMUP, () => get(agent, socketPath, '/info.status'));
    plain = median(await timeEach(ROUNDS, () => get(agent, socketPath, '/info.status')));
    agent.destroy();
  } finally {
    await bare.stop();
    await rm(dirname(socketPath), { recursive: true, force: true });
  }
  return [
    { id: '3', what: `SDK info.status round trip, median of ${ROUNDS}`, figure: rpc * 1000, floor: plain * 1000, unit: 'µs', target: '≤ 3 × floor', limit: 3 * plain * 1000, kind: 'max' },
    { id: '3', what: 'of which the server: plain node:http GET /info.status to the daemon', figure: direct * 1000, floor: plain * 1000, unit: 'µs', target: '(breakdown)', kind: 'info' },
  ];
}

await runStandalone('rpc', 'tRPC over the Unix socket vs plain node:http on the same socket path (target 3)', main);

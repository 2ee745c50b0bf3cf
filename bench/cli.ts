// Target 4: `poolctl status` (the esbuild bundle) from cold start to exit, against `node -e ''`.
import { spawnSync } from 'node:child_process';
import { POOLCTL, type Row, median, runStandalone, spawnProcessDaemon } from './lib.js';

const ROUNDS = 10;

function timeRun(args: string[], env: NodeJS.ProcessEnv): number {
  const t = process.hrtime.bigint();
  const r = spawnSync(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const ms = Number(process.hrtime.bigint() - t) / 1e6;
  if (r.status !== 0) throw new Error(`${args.join(' ')} exited ${r.status}: ${r.stderr.toString()}`);
  return ms;
}

export async function main(): Promise<Row[]> {
  const d = await spawnProcessDaemon({ agents: ['ceo', 'cto', 'cfo', 'qa'], running: ['ceo', 'cto', 'cfo'], maxAgents: 3 });
  try {
    const env = { ...process.env, POOL_SOCKET: d.socketPath };
    timeRun(['-e', ''], env);
    timeRun([POOLCTL, 'status'], env);
    const bare: number[] = [];
    const cli: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      bare.push(timeRun(['-e', ''], env));
      cli.push(timeRun([POOLCTL, 'status'], env));
    }
    const floor = median(bare);
    return [
      { id: '4', what: `poolctl status, start to exit (median of ${ROUNDS})`, figure: median(cli), floor, unit: 'ms', target: "≤ node -e '' + 50 ms", limit: floor + 50, kind: 'max' },
    ];
  } finally {
    await d.stop();
  }
}

await runStandalone('cli', "poolctl cold start vs node -e '' (target 4)", main);

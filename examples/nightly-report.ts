/**
 * A host automation script: the nightly finance report needs the `cfo` agent for a while.
 * It asks the pool for `cfo` (evicting an idle agent if it must), keeps it marked active while
 * the job runs so it is not evicted mid-way, and releases it afterwards, unless it was already
 * running before, in which case someone else is using it and it is left alone.
 *
 *   node dist/examples/nightly-report.js [--socket /run/openclaw-pool/pool.sock] [--minutes 1]
 *
 * Exit codes: 0 done, 1 the pool refused (full, unknown agent, Docker error), 3 daemon unreachable.
 */
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { DaemonUnreachableError, PermissionDeniedError, PoolError, PoolFullError, createPoolClient } from '../sdk/index.js';

const AGENT = 'cfo';

const { values } = parseArgs({ options: { socket: { type: 'string' }, minutes: { type: 'string', default: '1' } } });
const pool = createPoolClient(values.socket === undefined ? {} : { socketPath: values.socket });

async function main(): Promise<number> {
  const reply = await pool.request(AGENT, { requestedBy: 'nightly-report' });
  const ours = reply.status === 'started';
  console.log(ours ? `started ${AGENT}${'evicted' in reply && reply.evicted ? ` (evicted ${reply.evicted})` : ''}` : `${AGENT} was already running`);

  // Stand-in for the real job: trigger the report in the agent and wait for it, heartbeating so
  // the pool sees the agent as busy and never picks it as the next eviction victim.
  const deadline = Date.now() + Number(values.minutes) * 60_000;
  while (Date.now() < deadline) {
    await pool.heartbeat(AGENT);
    await sleep(Math.min(15_000, Math.max(0, deadline - Date.now())));
  }

  if (ours) {
    await pool.release(AGENT, { requestedBy: 'nightly-report' });
    console.log(`released ${AGENT}`);
  }
  return 0;
}

main()
  .catch((error: unknown) => {
    if (error instanceof PoolFullError) console.error('the pool is full of recently active agents; try again later');
    else if (error instanceof DaemonUnreachableError || error instanceof PermissionDeniedError) {
      console.error(error.message);
      return 3;
    } else if (error instanceof PoolError) console.error(`refused: ${error.message}`);
    else throw error;
    return 1;
  })
  .then((code) => {
    pool.close();
    process.exitCode = code;
  });

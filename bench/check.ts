// bench:check: runs every benchmark, prints one table, and exits non-zero when a target is missed
// by more than CHECK_MARGIN (timings on a shared 2-core machine are noisy; strict verdicts are
// printed beside the margin ones).
import { main as callers } from './callers.js';
import { main as cli } from './cli.js';
import { evictRounds, startRounds } from './compose-rounds.js';
import { main as footprint } from './footprint.js';
import { main as http } from './http.js';
import { CHECK_MARGIN, type Row, printTable, verdict } from './lib.js';
import { main as rpc } from './rpc.js';
import { main as scale } from './scale.js';

const suites: [string, () => Promise<Row[]>][] = [
  ['http', http],
  ['rpc', rpc],
  ['cli', cli],
  ['start', startRounds],
  ['evict', evictRounds],
  ['scale', scale],
  ['footprint', footprint],
  ['callers', callers],
];
const only = process.env.BENCH_ONLY?.split(',');
const rows: Row[] = [];
let failed = false;
for (const [name, run] of suites) {
  if (only !== undefined && !only.includes(name)) continue;
  const started = Date.now();
  try {
    rows.push(...(await run()));
    console.error(`bench ${name}: done in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  } catch (error) {
    failed = true;
    console.error(`bench ${name} failed: ${(error as Error).stack ?? String(error)}`);
  }
}
printTable(`All benchmarks (${new Date().toISOString()}, node ${process.version})`, rows);
const misses = rows.filter((r) => verdict(r, CHECK_MARGIN) === 'miss');
const strict = rows.filter((r) => verdict(r) === 'miss');
console.log(`\n${rows.filter((r) => verdict(r) === 'pass').length} pass, ${strict.length} strict misses; with a ${CHECK_MARGIN * 100}% margin on each limit: ${misses.length} misses`);
for (const r of misses) console.log(`MISS ${r.id} ${r.what}: ${r.figure.toFixed(2)} ${r.unit}, limit ${r.limit?.toFixed(2)}`);
if (failed || misses.length > 0) process.exitCode = 1;

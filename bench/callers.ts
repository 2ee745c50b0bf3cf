// Issue 18: what caller identity adds to the bridge's hot path, a POST /heartbeat. Three daemons
// side by side, loaded in turn (three rounds, medians), so that the ratios come from one run:
// CALLER_POLICY=open (the path before identity), the default policy with the host calling from
// loopback, and an agent known by its own token among 50 (every entry's digest compared).
import { chmod, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Row, load, median, runStandalone, spawnComposeDaemon, warm } from './lib.js';

const SECONDS = 3;
const ROUNDS = 3;
const TOKENS = 50;

export async function main(): Promise<Row[]> {
  const dir = await mkdtemp(join(tmpdir(), 'pb-tokens-'));
  const tokensFile = join(dir, 'tokens');
  const token = (i: number) => `bench-token-${String(i).padStart(4, '0')}-0123456789abcdef`;
  // ceo's entry last: a match costs the whole book, as every presented token does.
  const names = [...Array.from({ length: TOKENS - 1 }, (_, i) => `agent-${i}`), 'ceo'];
  await writeFile(tokensFile, names.map((n, i) => `${n} ${token(i)}\n`).join(''));
  await chmod(tokensFile, 0o600);
  const body = JSON.stringify({ agent: 'ceo' });
  const open = await spawnComposeDaemon(['ceo'], { CALLER_POLICY: 'open' });
  const host = await spawnComposeDaemon(['ceo']);
  const byToken = await spawnComposeDaemon(['ceo'], { POOL_TOKENS_FILE: tokensFile });
  const bearer: Record<string, string> = { authorization: `Bearer ${token(TOKENS - 1)}` };
  // The open daemon is loaded with the token's header too (it ignores it): the client sends the same bytes to both.
  const runs: { d: typeof open; headers: Record<string, string> }[] = [
    { d: open, headers: {} },
    { d: host, headers: {} },
    { d: open, headers: bearer },
    { d: byToken, headers: bearer },
  ];
  try {
    for (const { d, headers } of runs) {
      await warm(`${d.url}/heartbeat`, 'POST', body);
      // load() fails on any non-2xx: a token the daemon did not take would stop the run here.
      await load({ url: `${d.url}/heartbeat`, method: 'POST', body, headers, seconds: 1 });
    }
    const rps = runs.map(() => [] as number[]);
    for (let round = 0; round < ROUNDS; round++) {
      for (const [i, { d, headers }] of runs.entries()) rps[i]!.push((await load({ url: `${d.url}/heartbeat`, method: 'POST', body, headers, seconds: SECONDS })).rps);
    }
    const [floor, asHost, floorWithHeader, asAgent] = rps.map(median) as [number, number, number, number];
    return [
      { id: '18.1', what: 'POST /heartbeat req/s, the host from loopback, CALLER_POLICY=agents', figure: asHost, floor, unit: 'req/s', target: '≥ 0.9 × CALLER_POLICY=open', limit: 0.9 * floor, kind: 'min' },
      { id: '18.2', what: `POST /heartbeat req/s, an agent by its token (1 of ${TOKENS})`, figure: asAgent, floor: floorWithHeader, unit: 'req/s', target: '≥ 0.7 × CALLER_POLICY=open (one sha256 a request)', limit: 0.7 * floorWithHeader, kind: 'min' },
    ];
  } finally {
    await Promise.all([open.stop(), host.stop(), byToken.stop()]);
  }
}

await runStandalone('callers', 'Caller identity on the heartbeat path (issue 18)', main);

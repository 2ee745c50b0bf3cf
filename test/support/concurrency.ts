import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { execa } from 'execa';
import { expect } from 'vitest';
import { RequestReply, StateFile } from '../../src/contract/index.js';
import type { LaunchedTestDaemon } from './daemon.js';

/** Docker's own view of a backend, independent of the daemon's. */
export interface DockerView {
  /** How many agent containers Docker holds right now (infrastructure excluded). */
  agentContainers(): Promise<number>;
  /** `docker events` arguments that report one line per container start Docker was asked for. */
  readonly startEvents: readonly string[];
  /** The agent a line of those events is about, if it is one. */
  agentOfStart(line: string): string | undefined;
}

/**
 * SPEC §1's cap under load, judged by Docker: `requests` requests for `agents`, all in flight
 * together, half through the bridge and half through the socket, while Docker's view is polled as
 * fast as it answers. Docker must never hold more than `maxAgents` agent containers, every start
 * the pool decided must have asked Docker once, and state.json must end as Docker ends.
 */
export async function expectCapHeldUnderConcurrentRequests(
  pool: LaunchedTestDaemon,
  docker: DockerView,
  { agents, requests, maxAgents, label }: { agents: readonly string[]; requests: number; maxAgents: number; label: string },
): Promise<void> {
  let watching = true;
  let maxRunning = 0;
  let polls = 0;
  const watcher = (async () => {
    while (watching) {
      maxRunning = Math.max(maxRunning, await docker.agentContainers());
      polls++;
    }
  })();
  // --since: on a loaded machine the stream may attach after the first requests; Docker replays
  // what it missed. Lines, not chunks: a chunk may end mid-line.
  const since = (Date.now() / 1000).toFixed(3);
  const events = execa('docker', ['events', '--since', since, ...docker.startEvents], { reject: false });
  const dockerStarts: string[] = [];
  createInterface({ input: events.stdout }).on('line', (line) => {
    const agent = docker.agentOfStart(line);
    if (agent !== undefined) dockerStarts.push(agent);
  });
  await new Promise((resolve) => setTimeout(resolve, 300));

  // Arrivals spread over three seconds so that evictions interleave with starts.
  const replies = await Promise.all(
    Array.from({ length: requests }, async (_, i) => {
      const agent = agents[(i * 5) % agents.length]!;
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 3000));
      return i % 2 === 0
        ? pool.http('POST', '/request', { agent, requested_by: `client-${i}` }).then((r) => r.body)
        : pool.client.request(agent, { requestedBy: `client-${i}` }).catch((e: Error) => ({ status: e.name }));
    }),
  );
  await new Promise((resolve) => setTimeout(resolve, 1000));
  watching = false;
  await watcher;
  events.kill();
  await events;

  const outcomes: Record<string, number> = {};
  for (const reply of replies) {
    const status = (reply as { status: string }).status;
    outcomes[status] = (outcomes[status] ?? 0) + 1;
  }
  const bridged = replies.filter((_, i) => i % 2 === 0);
  for (const reply of bridged) expect(RequestReply.safeParse(reply).success, JSON.stringify(reply)).toBe(true);

  const logged = (await readFile(join(pool.poolDir, 'events.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
  const loggedStarts = logged.filter((e) => e.type === 'started').map((e) => e.agent);
  const state = StateFile.parse(JSON.parse(await readFile(join(pool.poolDir, 'state.json'), 'utf8')));

  console.info(
    `concurrency (${label}): ${requests} requests, outcomes ${JSON.stringify(outcomes)}, ${dockerStarts.length} container starts, ` +
      `${polls} Docker polls, max ${maxRunning} agent containers at once`,
  );
  expect(maxRunning).toBeLessThanOrEqual(maxAgents);
  expect(polls).toBeGreaterThan(5);
  expect(outcomes.error ?? 0).toBe(0);
  expect(outcomes.DriverError ?? 0).toBe(0);
  // Every start the pool decided asked Docker once: overlapping requests shared it.
  expect(dockerStarts.sort()).toEqual(loggedStarts.sort());
  expect(Object.keys(state.agents).sort()).toEqual(await pool.runningInDocker());
  expect(Object.values(state.agents).every((a) => a.status === 'running')).toBe(true);
}

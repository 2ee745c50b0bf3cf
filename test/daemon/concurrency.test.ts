import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import { RequestReply, StateFile } from '../../src/contract/index.js';
import { requireDocker } from '../support/docker.js';
import { type TestDaemon, startTestDaemon } from '../support/daemon.js';

const docker = await requireDocker();

const AGENTS = ['ceo', 'cto', 'cfo', 'software-engineer', 'designer', 'qa', 'marketing', 'legal'];
const REQUESTS = 60;
const MAX_AGENTS = 3;

describe.skipIf(!docker)('concurrency against real Docker', () => {
  let p: TestDaemon | undefined;
  afterAll(async () => {
    await p?.stop();
  });

  it(`keeps at most ${MAX_AGENTS} agent containers running under ${REQUESTS} concurrent requests for ${AGENTS.length} agents`, async () => {
    p = await startTestDaemon({ agents: AGENTS, env: { MAX_AGENTS: String(MAX_AGENTS), EVICT_GRACE_SECONDS: '0' } });
    const pool = p;
    const project = pool.project.name;

    // Docker's own view, polled as fast as it answers, and its own record of container starts.
    let watching = true;
    let maxRunning = 0;
    let polls = 0;
    const watcher = (async () => {
      while (watching) {
        const { stdout } = await execa('docker', [
          'ps', '--filter', `label=com.docker.compose.project=${project}`, '--filter', 'status=running',
          '--format', '{{.Label "com.docker.compose.service"}}',
        ]);
        const running = stdout.split('\n').filter((s) => AGENTS.includes(s));
        maxRunning = Math.max(maxRunning, running.length);
        polls++;
      }
    })();
    const events = execa('docker', [
      'events', '--filter', `label=com.docker.compose.project=${project}`, '--filter', 'event=start',
      '--format', '{{index .Actor.Attributes "com.docker.compose.service"}}',
    ], { reject: false });
    const dockerStarts: string[] = [];
    events.stdout.on('data', (chunk: Buffer) => dockerStarts.push(...chunk.toString().split('\n').filter(Boolean)));
    await new Promise((resolve) => setTimeout(resolve, 300));

    // All in flight together, their arrivals spread over three seconds so that evictions interleave with starts.
    const replies = await Promise.all(
      Array.from({ length: REQUESTS }, async (_, i) => {
        const agent = AGENTS[(i * 5) % AGENTS.length]!;
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 3000));
        // Half through the bridge, half through the socket: one pool behind both.
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
      `concurrency: ${REQUESTS} requests, outcomes ${JSON.stringify(outcomes)}, ${dockerStarts.length} container starts, ` +
        `${polls} Docker polls, max ${maxRunning} agent containers running at once`,
    );
    expect(maxRunning).toBeLessThanOrEqual(MAX_AGENTS);
    expect(polls).toBeGreaterThan(5);
    expect(outcomes.error ?? 0).toBe(0);
    expect(outcomes.DriverError ?? 0).toBe(0);
    // Every start the pool decided asked Docker once: overlapping requests shared it.
    expect(dockerStarts.sort()).toEqual(loggedStarts.sort());
    expect(Object.keys(state.agents).sort()).toEqual(await pool.runningInDocker());
    expect(Object.values(state.agents).every((a) => a.status === 'running')).toBe(true);
  }, 120_000);
});

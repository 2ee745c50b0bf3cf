import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MetricsReply } from '../../src/contract/index.js';
import { type ComposeProject, agentService, createComposeProject, requireDocker } from '../support/docker.js';
import { type TestDaemon, eventually, startTestDaemon } from '../support/daemon.js';
import { parseExposition } from '../support/metrics.js';

const docker = await requireDocker();

const series = (name: string, labels: Record<string, string> = {}) => {
  const inner = Object.entries(labels).map(([k, v]) => `${k}="${v}"`).join(',');
  return `openclaw_pool_${name}${inner === '' ? '' : `{${inner}}`}`;
};

describe.skipIf(!docker)('GET /metrics: the daemon in Prometheus text format, on real Docker', () => {
  let project: ComposeProject;
  let p: TestDaemon;
  let scratch: string;
  let dockerDown: string;

  const scrape = async () => {
    const reply = await p.http('GET', '/metrics');
    expect(reply.status).toBe(200);
    return parseExposition(reply.text);
  };
  /** The value of one series (0 when it has not appeared yet). */
  const read = async (name: string, labels: Record<string, string> = {}) => (await scrape()).get(series(name, labels)) ?? 0;
  /** How much each series moved while `act` ran. */
  const moved = async (names: [string, Record<string, string>?][], act: () => Promise<unknown>) => {
    const before = await scrape();
    await act();
    const after = await scrape();
    return names.map(([name, labels]) => (after.get(series(name, labels)) ?? 0) - (before.get(series(name, labels)) ?? 0));
  };

  beforeAll(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'pool-'));
    // Real docker, except that `docker ps` fails while this file exists: a reconcile that cannot reach Docker.
    dockerDown = join(scratch, 'docker-down');
    const wrapper = join(scratch, 'docker');
    await writeFile(wrapper, `#!/bin/sh\nif [ "$1" = ps ] && [ -e '${dockerDown}' ]; then echo 'Cannot connect to the Docker daemon (injected)' >&2; exit 1; fi\nexec docker "$@"\n`);
    await chmod(wrapper, 0o755);
    project = await createComposeProject({
      ceo: agentService(),
      cto: agentService(),
      cfo: agentService(),
      // A start Docker refuses: the image does not exist and may not be pulled.
      ghost: agentService({ image: 'openclaw-pool/does-not-exist:1' }),
      gateway: agentService(),
    });
    await project.compose('up', '-d', 'gateway');
    p = await startTestDaemon({ project, infra: ['gateway'], env: { MAX_AGENTS: '2', POOL_TOKEN: 's3cret', DOCKER_BIN: wrapper } });
  });
  afterAll(async () => {
    await p?.stop();
    await project?.remove();
    await rm(scratch, { recursive: true, force: true });
  });

  it('answers in the Prometheus text format, without the token that POST needs', async () => {
    const reply = await p.http('GET', '/metrics');
    expect(reply.status).toBe(200);
    expect(reply.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(reply.text).toContain('# TYPE openclaw_pool_requests_total counter');
    expect(reply.text).toContain('# TYPE openclaw_pool_docker_operation_seconds histogram');
    expect((await p.http('POST', '/metrics', {})).status).toBe(405);
  });

  it('shows the pool gauges as the status has them', async () => {
    const samples = await scrape();
    expect(samples.get(series('slots_total'))).toBe(2);
    expect(samples.get(series('slots_free'))).toBe(2);
    expect(samples.get(series('agents', { state: 'running' }))).toBe(0);
    expect(samples.get(series('queue_length'))).toBe(0);
    expect(samples.get(series('docker_up'))).toBe(1);
    expect(samples.get(series('last_reconcile_error_timestamp_seconds'))).toBe(0);
    expect(samples.get(series('reconciles_total', { outcome: 'ok' }))).toBeGreaterThanOrEqual(1);
  });

  it('counts a start: the request by outcome, the event, and the compose up in the Docker histogram', async () => {
    const deltas = await moved(
      [
        ['requests_total', { operation: 'request', outcome: 'started' }],
        ['events_total', { type: 'started' }],
        ['docker_operation_seconds_count', { operation: 'start', outcome: 'ok' }],
      ],
      () => p.http('POST', '/request', { agent: 'ceo' }, { Authorization: 'Bearer s3cret' }),
    );
    expect(deltas).toEqual([1, 1, 1]);
    expect(await read('agents', { state: 'running' })).toBe(1);
    expect(await read('slots_free')).toBe(1);
    const samples = await scrape();
    expect(samples.get(series('docker_operation_seconds_bucket', { le: '+Inf', operation: 'start', outcome: 'ok' }))).toBeGreaterThanOrEqual(1);
    expect(samples.get(series('docker_operation_seconds_sum', { operation: 'start', outcome: 'ok' }))).toBeGreaterThan(0);
    // No MEMORY_BUDGET: no memory series, for the pool or for the running agent.
    expect([...samples.keys()].filter((name) => /^openclaw_pool_(agent_)?memory_bytes/.test(name))).toEqual([]);
  });

  it('counts every refusal by its reply status, on the socket as on the bridge', async () => {
    const deltas = await moved(
      [
        ['requests_total', { operation: 'request', outcome: 'already_running' }],
        ['requests_total', { operation: 'request', outcome: 'unknown_agent' }],
        ['requests_total', { operation: 'request', outcome: 'forbidden' }],
      ],
      async () => {
        await p.client.request('ceo');
        await p.client.request('janitor').catch(() => {});
        await p.client.request('gateway').catch(() => {});
      },
    );
    expect(deltas).toEqual([1, 1, 1]);
  });

  it('counts a start Docker refuses as an error, in the requests and in the Docker histogram', async () => {
    const deltas = await moved(
      [
        ['requests_total', { operation: 'request', outcome: 'error' }],
        ['events_total', { type: 'failed' }],
        ['docker_operation_seconds_count', { operation: 'start', outcome: 'error' }],
      ],
      () => p.client.request('ghost').catch(() => {}),
    );
    expect(deltas).toEqual([1, 1, 1]);
  });

  it('counts an eviction by its cause, and pool_full when nobody can be evicted', async () => {
    await p.client.request('cto');
    expect(
      await moved([['requests_total', { operation: 'request', outcome: 'pool_full' }]], () => p.client.request('cfo').catch(() => {})),
    ).toEqual([1]);
    p.advance(120);
    const deltas = await moved(
      [
        ['evictions_total', { cause: 'request' }],
        ['events_total', { type: 'evicted' }],
        ['docker_operation_seconds_count', { operation: 'stop', outcome: 'ok' }],
      ],
      () => p.client.request('cfo'),
    );
    expect(deltas).toEqual([1, 1, 1]);
  });

  it('counts releases and heartbeats', async () => {
    const deltas = await moved(
      [
        ['requests_total', { operation: 'release', outcome: 'stopped' }],
        ['requests_total', { operation: 'release', outcome: 'not_running' }],
        ['requests_total', { operation: 'heartbeat', outcome: 'ok' }],
        ['events_total', { type: 'released' }],
      ],
      async () => {
        await p.client.release('cfo');
        await p.client.release('cfo');
        for (let i = 0; i < 3; i++) await p.http('POST', '/heartbeat', { agent: 'cto' }, { Authorization: 'Bearer s3cret' });
        await p.client.heartbeat('cto');
      },
    );
    expect(deltas).toEqual([1, 1, 4, 1]);
  });

  it('shows a failed reconcile: its time, its message, Docker down, and a lag that grows until one succeeds', async () => {
    await writeFile(dockerDown, '');
    const deltas = await moved(
      [
        ['reconciles_total', { outcome: 'error' }],
        ['docker_operation_seconds_count', { operation: 'list', outcome: 'error' }],
      ],
      () => p.daemon.reload(p.config),
    );
    // A Docker event from the tests before may bring a reconcile of its own into the window.
    for (const delta of deltas) expect(delta).toBeGreaterThanOrEqual(1);
    const failed = await scrape();
    expect(failed.get(series('last_reconcile_error_timestamp_seconds'))).toBeGreaterThan(0);
    expect([...failed.keys()].find((key) => key.startsWith(series('last_reconcile_error_info')))).toContain('Cannot connect to the Docker daemon (injected)');
    expect(failed.get(series('docker_up'))).toBe(0);
    p.advance(300);
    expect(await read('reconcile_lag_seconds')).toBeGreaterThanOrEqual(300);

    await rm(dockerDown);
    await p.daemon.reload(p.config);
    expect(await read('reconcile_lag_seconds')).toBeLessThan(300);
    expect(await read('docker_up')).toBe(1);
  });

  it('shows a request waiting for a slot in the queue gauges, then its wait in the histogram', async () => {
    await p.client.request('ceo');
    await p.client.heartbeat('cto');
    const before = await scrape();
    const waiting = p.http('POST', '/request', { agent: 'cfo', wait_seconds: 60 }, { Authorization: 'Bearer s3cret' });
    await eventually(async () => expect(await read('queue_length')).toBe(1));
    expect(await read('queue_waiters')).toBe(1);
    await p.client.release('ceo');
    expect((await waiting).body).toMatchObject({ status: 'started', agent: 'cfo', waited_seconds: expect.any(Number) });
    const after = await scrape();
    const delta = (name: string, labels: Record<string, string>) => (after.get(series(name, labels)) ?? 0) - (before.get(series(name, labels)) ?? 0);
    expect(delta('wait_seconds_count', { outcome: 'started' })).toBe(1);
    expect(delta('events_total', { type: 'waiting' })).toBe(1);
    expect(after.get(series('queue_length'))).toBe(0);
  });

  it('serves the same metrics over the socket, as text or as JSON', async () => {
    const text = MetricsReply.parse(await p.client.metrics());
    expect(text).toMatchObject({ format: 'text', content_type: expect.stringMatching(/^text\/plain; version=0\.0\.4/) });
    if (text.format !== 'text') throw new Error('expected text');
    expect(parseExposition(text.text).get(series('slots_total'))).toBe(2);
    const json = MetricsReply.parse(await p.client.metrics({ format: 'json' }));
    if (json.format !== 'json') throw new Error('expected json');
    const requests = json.families.find((f) => f.name === 'openclaw_pool_requests_total');
    expect(requests).toMatchObject({ type: 'counter' });
    expect(requests?.values).toContainEqual({ labels: { operation: 'request', outcome: 'started' }, value: expect.any(Number) });
  });
});

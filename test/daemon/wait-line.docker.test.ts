import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { PoolFullError } from '../../sdk/index.js';
import { requireDocker } from '../support/docker.js';
import { type TestDaemon, type TestDaemonOptions, eventually, startTestDaemon } from '../support/daemon.js';

const docker = await requireDocker();

/** Wait for a slot (`wait_seconds`, SPEC §1 rule 6), against real Docker. */
describe.skipIf(!docker)('waiting for a slot', () => {
  const daemons: TestDaemon[] = [];
  const daemon = async (options: TestDaemonOptions = {}) => {
    const p = await startTestDaemon({ ...options, env: { MAX_AGENTS: '1', ...options.env } });
    daemons.push(p);
    return p;
  };
  afterEach(async () => {
    await Promise.all(daemons.splice(0).map((p) => p.stop()));
  });

  it('queues a request on a full pool, shows it in status, and starts it as soon as the slot is released', async () => {
    const p = await daemon();
    await p.client.request('ceo');
    const waiting = p.http('POST', '/request', { agent: 'cfo', requested_by: 'ceo', wait_seconds: 30 });
    const queued = await eventually(async () => {
      const status = await p.client.status();
      expect(status.queue).toHaveLength(1);
      return status.queue[0];
    });
    expect(queued).toMatchObject({ agent: 'cfo', requested_by: 'ceo', waiters: 1 });
    await sleep(300);
    await p.client.release('ceo');
    const reply = await waiting;
    expect(reply.status).toBe(200);
    expect(reply.body).toEqual({ status: 'started', agent: 'cfo', waited_seconds: expect.any(Number) });
    expect((reply.body as { waited_seconds: number }).waited_seconds).toBeGreaterThanOrEqual(0.3);
    expect(await p.runningInDocker()).toEqual(['cfo']);
    expect((await p.client.status()).queue).toEqual([]);
    const { events } = await p.client.history({ agent: 'cfo' });
    expect(events.map((e) => e.type)).toEqual(['waited', 'started']);
  });

  it('is served when the running agent leaves its grace period: evicted for the waiter', async () => {
    const p = await daemon({ env: { EVICT_GRACE_SECONDS: '2' } });
    await p.client.request('ceo');
    const reply = await p.client.request('cfo', { requestedBy: 'cto', waitSeconds: 30 });
    expect(reply).toMatchObject({ status: 'started', agent: 'cfo', evicted: 'ceo' });
    expect(reply.waited_seconds).toBeGreaterThanOrEqual(1);
    expect(await p.runningInDocker()).toEqual(['cfo']);
  });

  it('serves waiters first come, first served; new requests do not overtake them', async () => {
    const p = await daemon();
    await p.client.request('ceo');
    const order: string[] = [];
    const first = p.client.request('cfo', { waitSeconds: 30 }).then((r) => (order.push(r.agent), r));
    await eventually(async () => expect((await p.client.status()).queue).toHaveLength(1));
    const second = p.client.request('qa', { waitSeconds: 30 }).then((r) => (order.push(r.agent), r));
    await eventually(async () => expect((await p.client.status()).queue.map((q) => q.agent)).toEqual(['cfo', 'qa']));
    // A request that does not wait is refused while others wait, even as the slot comes free.
    await expect(p.client.request('legal')).rejects.toBeInstanceOf(PoolFullError);
    await p.client.release('ceo');
    await first;
    expect((await p.client.status()).queue.map((q) => q.agent)).toEqual(['qa']);
    await p.client.release('cfo');
    await second;
    expect(order).toEqual(['cfo', 'qa']);
  });

  it('lets waiters for the same agent share one place and one start', async () => {
    const p = await daemon();
    await p.client.request('ceo');
    const replies = Promise.all([
      p.client.request('cfo', { requestedBy: 'cto', waitSeconds: 30 }),
      p.http('POST', '/request', { agent: 'cfo', requested_by: 'qa', wait_seconds: 30 }),
      p.client.request('cfo', { requestedBy: 'legal', waitSeconds: 30 }),
    ]);
    await eventually(async () => expect((await p.client.status()).queue).toEqual([expect.objectContaining({ agent: 'cfo', waiters: 3 })]));
    await p.client.release('ceo');
    const [a, b, c] = await replies;
    expect([a.status, (b.body as { status: string }).status, c.status]).toEqual(['started', 'started', 'started']);
    const { events } = await p.client.history({ agent: 'cfo' });
    expect(events.filter((e) => e.type === 'started')).toHaveLength(1);
  });

  it('answers pool_full with waited_seconds at the deadline, and leaves nothing in line', async () => {
    const p = await daemon();
    await p.client.request('ceo');
    const reply = await p.http('POST', '/request', { agent: 'cfo', wait_seconds: 1 });
    expect(reply.body).toEqual({ status: 'pool_full', error: expect.stringContaining('no slot came free within'), waited_seconds: expect.any(Number) });
    expect((reply.body as { waited_seconds: number }).waited_seconds).toBeGreaterThanOrEqual(1);
    const error = await p.client.request('cfo', { waitSeconds: 0.5 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PoolFullError);
    expect((error as PoolFullError).details.waitedSeconds).toBeGreaterThanOrEqual(0.5);
    expect((await p.client.status()).queue).toEqual([]);
    expect((await p.client.history({ agent: 'cfo' })).events.map((e) => [e.type, e.reason])).toEqual([
      ['pool_full', expect.stringMatching(/^waited 1(\.\d)? s, no slot came free$/)],
      ['pool_full', expect.stringMatching(/^waited 0\.\d s, no slot came free$/)],
    ]);
  });

  it('takes a client that hangs up out of the line (HTTP and socket)', async () => {
    const p = await daemon();
    await p.client.request('ceo');
    const abort = new AbortController();
    const gone = fetch(`${p.url}/request`, { method: 'POST', body: JSON.stringify({ agent: 'cfo', wait_seconds: 60 }), signal: abort.signal }).catch(() => 'aborted');
    await eventually(async () => expect((await p.client.status()).queue).toHaveLength(1));
    abort.abort();
    expect(await gone).toBe('aborted');
    await eventually(async () => expect((await p.client.status()).queue).toEqual([]));
    const socketClient = (await import('../../sdk/index.js')).createPoolClient({ socketPath: p.socketPath });
    void socketClient.request('qa', { waitSeconds: 60 }).catch(() => {});
    await eventually(async () => expect((await p.client.status()).queue).toHaveLength(1));
    socketClient.close();
    await eventually(async () => expect((await p.client.status()).queue).toEqual([]));
    // Nobody was started for the clients that left, and the slot is still ceo's.
    await p.client.release('ceo');
    await sleep(200);
    expect(await p.runningInDocker()).toEqual([]);
    expect(p.logs.filter((line) => /error/i.test(line))).toEqual([]);
  });

  it('turns away a new agent with queue_full when QUEUE_MAX agents already wait', async () => {
    const p = await daemon({ env: { QUEUE_MAX: '1' } });
    await p.client.request('ceo');
    const first = p.client.request('cfo', { waitSeconds: 30 });
    await eventually(async () => expect((await p.client.status()).queue).toHaveLength(1));
    const refused = await p.http('POST', '/request', { agent: 'qa', wait_seconds: 30 });
    expect(refused.body).toEqual({ status: 'pool_full', error: expect.stringContaining('wait queue is full'), queue_full: true });
    await p.client.release('ceo');
    expect(await first).toMatchObject({ status: 'started', agent: 'cfo' });
  });

  it('answers waiters with an error when the daemon shuts down, instead of leaving them hanging', async () => {
    const p = await daemon();
    await p.client.request('ceo');
    const waiting = p.http('POST', '/request', { agent: 'cfo', wait_seconds: 60 }).catch((e: unknown) => e);
    await eventually(async () => expect((await p.client.status()).queue).toHaveLength(1));
    const stopping = p.stop();
    const reply = await waiting;
    await stopping;
    expect(reply).toMatchObject({ body: { status: 'error', agent: 'cfo', error: expect.stringContaining('shutting down') } });
  });
});

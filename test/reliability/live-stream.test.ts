import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LIVE_LIMITS } from '../../src/bridge/live.js';
import { requireDocker } from '../support/docker.js';
import { type TestDaemon, startTestDaemon } from '../support/daemon.js';
import { openSse } from '../support/sse.js';

const docker = await requireDocker();
/** The bridge cuts a request that is not whole within 30 s (src/bridge/server.ts); a stream must outlive that. */
const BRIDGE_REQUEST_TIMEOUT_MS = 30_000;

describe.skipIf(!docker)('a live stream held open for a long time', () => {
  let p: TestDaemon;
  beforeAll(async () => {
    p = await startTestDaemon();
  });
  afterAll(async () => {
    await p?.stop();
  });

  it('outlives the bridge’s header and request timeouts, gets keep-alive comments, and still delivers events', async () => {
    const s = await openSse(`${p.url}/events/stream`);
    try {
      await s.waitFor((f) => f.event === 'status');
      const opened = Date.now();
      // One keep-alive per quiet keepAliveMs, sent at the next once-a-second check: wait for the
      // count the request timeout spans, however late the checks run on a busy machine.
      const needed = Math.floor(BRIDGE_REQUEST_TIMEOUT_MS / LIVE_LIMITS.keepAliveMs);
      const keepAlives = () => s.frames.filter((f) => f.comment === 'keep-alive');
      await s.waitFor((f) => keepAlives()[needed - 1] === f, BRIDGE_REQUEST_TIMEOUT_MS + LIVE_LIMITS.keepAliveMs);
      const past = BRIDGE_REQUEST_TIMEOUT_MS + 2000 - (Date.now() - opened);
      if (past > 0) await new Promise((resolve) => setTimeout(resolve, past));
      expect(s.ended()).toBe(false);
      expect(await p.http('POST', '/request', { agent: 'cfo' })).toMatchObject({ body: { status: 'started' } });
      await s.waitFor((f) => f.event === 'pool' && f.data?.includes('"agent":"cfo"') === true, 5000);
    } finally {
      s.close();
    }
  }, 90_000);
});

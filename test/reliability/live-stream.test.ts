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
      await new Promise((resolve) => setTimeout(resolve, BRIDGE_REQUEST_TIMEOUT_MS + 2000));
      expect(s.ended()).toBe(false);
      const comments = s.frames.filter((f) => f.comment === 'keep-alive');
      expect(comments.length).toBeGreaterThanOrEqual(Math.floor(BRIDGE_REQUEST_TIMEOUT_MS / LIVE_LIMITS.keepAliveMs));
      expect(await p.http('POST', '/request', { agent: 'cfo' })).toMatchObject({ body: { status: 'started' } });
      await s.waitFor((f) => f.event === 'pool' && f.data?.includes('"agent":"cfo"') === true, 5000);
    } finally {
      s.close();
    }
  }, 60_000);
});

import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireDocker } from '../support/docker.js';
import { type TestDaemon, startTestDaemon } from '../support/daemon.js';

const run = promisify(execFile);
const EXAMPLE = new URL('../../dist/examples/nightly-report.js', import.meta.url).pathname;
const docker = await requireDocker();

describe.skipIf(!docker)('examples/nightly-report', () => {
  let p: TestDaemon;
  beforeAll(async () => {
    p = await startTestDaemon();
  });
  afterAll(async () => {
    await p?.stop();
  });

  it('starts cfo for the job, keeps it active, and releases it afterwards', async () => {
    const { stdout } = await run(process.execPath, [EXAMPLE, '--socket', p.socketPath, '--minutes', '0.01']);
    expect(stdout).toBe('started cfo\nreleased cfo\n');
    expect(await p.runningInDocker()).toEqual([]);
  });

  it('leaves cfo running when someone else had started it', async () => {
    await p.client.request('cfo');
    const { stdout } = await run(process.execPath, [EXAMPLE, '--socket', p.socketPath, '--minutes', '0.01']);
    expect(stdout).toBe('cfo was already running\n');
    expect(await p.runningInDocker()).toEqual(['cfo']);
  });
});

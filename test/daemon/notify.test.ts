import { chmod, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createNotifier } from '../../src/daemon/notify.js';
import { eventually } from '../support/daemon.js';
import { useTempDir } from '../support/tmp.js';

/** A stand-in systemd-notify that records each call's arguments and the socket it was given. */
async function recordingNotify(dir: string, delaySeconds = 0): Promise<{ bin: string; calls: () => Promise<string[]> }> {
  const log = join(dir, 'calls');
  const bin = join(dir, 'systemd-notify');
  await writeFile(bin, `#!/bin/sh\nsleep ${delaySeconds}\necho "$NOTIFY_SOCKET $*" >> ${log}\n`);
  await chmod(bin, 0o755);
  await writeFile(log, '');
  return { bin, calls: async () => (await readFile(log, 'utf8')).split('\n').filter(Boolean) };
}

describe('telling systemd how the daemon is (sd_notify through systemd-notify)', () => {
  const tempDir = useTempDir();
  const errors: string[] = [];
  const onError = (what: string) => errors.push(what);

  it('sends READY=1 with the status, then each new status once, then STOPPING=1', async () => {
    const notify = await recordingNotify(await tempDir());
    const notifier = createNotifier({ env: { NOTIFY_SOCKET: '/run/systemd/notify' }, onError, bin: notify.bin });
    notifier.ready('0 of 3 slots used');
    notifier.status('0 of 3 slots used');
    notifier.status('1 of 3 slots used');
    notifier.stopping();
    const pid = `--pid=${process.pid}`;
    await eventually(async () => expect(await notify.calls()).toEqual([
      `/run/systemd/notify ${pid} READY=1 STATUS=0 of 3 slots used`,
      `/run/systemd/notify ${pid} STATUS=1 of 3 slots used`,
      `/run/systemd/notify ${pid} STOPPING=1 STATUS=stopping`,
    ]));
  });

  it('sends only the newest of the statuses queued behind a message in flight, in order', async () => {
    const notify = await recordingNotify(await tempDir(), 0.3);
    const notifier = createNotifier({ env: { NOTIFY_SOCKET: '@notify' }, onError, bin: notify.bin });
    notifier.ready('0 of 2 slots used');
    for (const used of [1, 2, 1, 2]) notifier.status(`${used} of 2 slots used`);
    notifier.reloading();
    notifier.ready('2 of 2 slots used');
    await eventually(async () => expect((await notify.calls()).map((c) => c.split(' ').slice(2).join(' '))).toEqual([
      'READY=1 STATUS=0 of 2 slots used',
      'STATUS=2 of 2 slots used',
      'RELOADING=1',
      'READY=1 STATUS=2 of 2 slots used',
    ]), 5000);
  });

  it('does nothing outside systemd, where there is no NOTIFY_SOCKET', async () => {
    const notify = await recordingNotify(await tempDir());
    const notifier = createNotifier({ env: {}, onError, bin: notify.bin });
    notifier.ready('0 of 3 slots used');
    notifier.stopping();
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(await notify.calls()).toEqual([]);
  });

  it('reports a systemd-notify that cannot run, and goes on', async () => {
    const failures: string[] = [];
    const notifier = createNotifier({ env: { NOTIFY_SOCKET: '@notify' }, onError: (what) => failures.push(what), bin: '/nonexistent/systemd-notify' });
    notifier.ready('0 of 3 slots used');
    await eventually(() => expect(failures).toEqual(['telling systemd READY=1 STATUS=0 of 3 slots used']));
  });
});

import { spawn } from 'node:child_process';

/**
 * sd_notify(3) for a `Type=notify` unit: READY=1 once the daemon answers, STATUS= lines for
 * `systemctl status`, RELOADING=1 and STOPPING=1 around a reload and a stop. Outside systemd
 * (no NOTIFY_SOCKET) every call does nothing.
 */
export interface Notifier {
  ready(status: string): void;
  status(status: string): void;
  reloading(): void;
  stopping(): void;
}

export interface NotifierOptions {
  readonly env: NodeJS.ProcessEnv;
  readonly onError: (what: string, error: unknown) => void;
  /** `systemd-notify`, or a stand-in for tests. */
  readonly bin?: string;
}

/**
 * Node cannot send on a datagram Unix socket without a native addon, so each message goes through
 * `systemd-notify`, which the unit accepts with NotifyAccess=all. systemd ≥ 246's systemd-notify
 * waits for the manager to have read the message before it exits (sd_notify_barrier), so the
 * message is attributed to this unit even though its sender is gone by then. Messages go out one
 * at a time, in order; of the STATUS lines queued behind one in flight only the newest is sent.
 */
export function createNotifier(options: NotifierOptions): Notifier {
  const socket = options.env.NOTIFY_SOCKET;
  const bin = options.bin ?? 'systemd-notify';
  let sending = false;
  const queue: string[][] = [];
  let lastStatus: string | undefined;

  const pump = async () => {
    if (sending) return;
    sending = true;
    for (let message = queue.shift(); message !== undefined; message = queue.shift()) {
      try {
        await notifyOnce(bin, [`--pid=${process.pid}`, ...message], { ...process.env, NOTIFY_SOCKET: socket });
      } catch (error) {
        options.onError(`telling systemd ${message.join(' ')}`, error);
      }
    }
    sending = false;
  };
  const send = (message: string[]) => {
    if (socket === undefined || socket === '') return;
    const statusOnly = message.length === 1 && message[0]!.startsWith('STATUS=');
    const last = queue.at(-1);
    if (statusOnly && last?.length === 1 && last[0]!.startsWith('STATUS=')) queue[queue.length - 1] = message;
    else queue.push(message);
    void pump();
  };

  return {
    ready(status) {
      lastStatus = status;
      send(['READY=1', `STATUS=${status}`]);
    },
    status(status) {
      if (status === lastStatus) return;
      lastStatus = status;
      send([`STATUS=${status}`]);
    },
    reloading() {
      send(['RELOADING=1']);
    },
    stopping() {
      send(['STOPPING=1', 'STATUS=stopping']);
    },
  };
}

/** How long one systemd-notify may take: it waits for systemd to read the message, which is at once. */
const NOTIFY_TIMEOUT_MS = 5000;

/**
 * One systemd-notify run. Plain spawn with an 'error' listener from the start, not execa: with no
 * file descriptor left (EMFILE) execa throws before it listens, and the child's 'error' event then
 * crashes the daemon; here it is one more failed notification.
 */
function notifyOnce(bin: string, args: string[], env: NodeJS.ProcessEnv): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { env, stdio: 'ignore' });
    const timer = setTimeout(() => child.kill('SIGKILL'), NOTIFY_TIMEOUT_MS);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`${bin} exited ${signal ?? `with code ${code}`}`));
    });
  });
}

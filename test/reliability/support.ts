import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { TEST_IMAGE } from '../support/docker.js';
import { eventually } from '../support/daemon.js';
import { type SpawnedDaemon, buildOnce, daemonEnv, spawnDaemon } from '../support/spawn-daemon.js';

export const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/**
 * A private dockerd of our own (own socket, data-root, exec-root and containerd), so the tests can
 * stop and restart it without touching the machine's engine that others use. It runs in a network
 * namespace of its own (`unshare --net`): in the host's, `--bridge=none` makes dockerd delete the
 * host's docker0 at start-up (moby's removeDefaultBridgeInterface), and networks it creates would
 * draw from the main engine's address pools. Its containers reach nothing outside that namespace;
 * the daemon under test reaches the engine through its socket, a file.
 */
export async function startPrivateDockerd(root?: string) {
  const dir = root ?? (await mkdtemp('/tmp/d-'));
  const sock = join(dir, 'docker.sock');
  const pidfile = join(dir, 'docker.pid');
  const host = `unix://${sock}`;
  let child: ChildProcess | undefined;
  let log = '';

  const docker = (args: string[], options: { timeout?: number; input?: string } = {}) =>
    execa('docker', ['-H', host, ...args], { reject: false, timeout: options.timeout ?? 30_000, env: { DOCKER_HOST: host } });

  async function up(): Promise<void> {
    const dockerd = ['dockerd', '--host', host, '--data-root', join(dir, 'data'), '--exec-root', join(dir, 'exec'), '--pidfile', pidfile,
      '--bridge=none', '--iptables=false', '--ip-masq=false'];
    // unshare execs dockerd: the pidfile's process is still the child.
    child = spawn('unshare', ['--net', '--', ...dockerd], { stdio: ['ignore', 'pipe', 'pipe'], detached: false });
    child.stdout!.on('data', (c) => (log += c));
    child.stderr!.on('data', (c) => (log += c));
    await eventually(async () => {
      const info = await docker(['info', '--format', '{{.ServerVersion}}'], { timeout: 5000 });
      if (info.failed) throw new Error(`private dockerd not answering: ${info.stderr}\n${log.slice(-2000)}`);
    }, 60_000, 200);
  }

  async function currentPid(): Promise<number | undefined> {
    try {
      const n = Number((await readFile(pidfile, 'utf8')).trim());
      return Number.isInteger(n) && n > 0 && isAlive(n) ? n : undefined;
    } catch {
      return undefined;
    }
  }

  /** SIGSTOP / SIGCONT the engine: its socket still accepts connections, nothing answers (a hung dockerd). */
  async function signal(sig: 'SIGSTOP' | 'SIGCONT'): Promise<void> {
    const p = await currentPid();
    if (p !== undefined) process.kill(p, sig);
  }

  /** SIGTERM via the pidfile, then waits until the process is gone. */
  async function down(): Promise<void> {
    const pid = await currentPid();
    if (pid === undefined) return;
    process.kill(pid, 'SIGCONT');
    process.kill(pid, 'SIGTERM');
    const gone = () => {
      if (isAlive(pid)) throw new Error(`dockerd ${pid} still running`);
    };
    await eventually(gone, 60_000, 100).catch(() => isAlive(pid) && process.kill(pid, 'SIGKILL'));
    await eventually(gone, 60_000, 100);
  }

  await up();
  const image = await execa('sh', ['-c', `docker save ${TEST_IMAGE} | docker -H ${host} load`], { reject: false });
  if (image.failed) throw new Error(`cannot load ${TEST_IMAGE} into the private dockerd: ${image.stderr}`);

  return {
    dir,
    host,
    docker,
    up,
    down,
    signal,
    log: () => log,
    async remove() {
      await down();
      // A stopped engine leaves mounts behind (exec/netns/default is an nsfs mount): unmount what is under dir, deepest first.
      const mountinfo = await readFile('/proc/self/mountinfo', 'utf8');
      const points = mountinfo.split('\n').map((l) => l.split(' ')[4] ?? '').filter((m) => m.startsWith(`${dir}/`)).sort((a, b) => b.length - a.length);
      for (const point of points) await execa('umount', ['-l', point], { reject: false });
      await rm(dir, { recursive: true, force: true }).catch(() => {});
    },
  };
}

export type PrivateDockerd = Awaited<ReturnType<typeof startPrivateDockerd>>;

/** A compose project (JSON is YAML) in a temp dir, driven against the given engine. */
export async function createProjectOn(host: string | undefined, services: Record<string, Record<string, unknown>>) {
  const dir = await mkdtemp(join(tmpdir(), 'rel-compose-'));
  const name = `poolrel-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  await writeFile(join(dir, 'compose.yaml'), JSON.stringify({ name, services }, null, 2));
  const env = host === undefined ? {} : { DOCKER_HOST: host };
  const compose = (...args: string[]) =>
    execa('docker', ['compose', '--project-directory', dir, '-p', name, ...args], { env, reject: false, timeout: 60_000 });
  return {
    dir,
    name,
    env,
    compose,
    /** Services whose containers are running (one `docker ps`). */
    async running(): Promise<string[]> {
      const r = await execa('docker', ['ps', '--filter', `label=com.docker.compose.project=${name}`, '--filter', 'status=running',
        '--format', '{{.Label "com.docker.compose.service"}}'], { env, reject: false, timeout: 30_000 });
      if (r.failed) throw new Error(`docker ps failed: ${r.stderr}`);
      return r.stdout.split('\n').filter(Boolean).sort();
    },
    async remove() {
      await compose('down', '--timeout', '0', '--remove-orphans');
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export async function scratchDir(prefix = '/tmp/r-'): Promise<string> {
  const dir = await mkdtemp(prefix);
  await mkdir(join(dir, 'pool'), { recursive: true });
  return dir;
}

/**
 * A built daemon, spawned, on a compose project of its own private engine (so the engine can be
 * stopped, hung or restarted under it), bridge on loopback; `env` sets the pool.env variables a
 * test varies. `prepare` runs once the project exists, before the daemon starts. `remove` undoes
 * all of it, engine included.
 */
export async function daemonOnPrivateEngine(
  services: Record<string, Record<string, unknown>>,
  env: Record<string, string>,
  prepare: (engine: PrivateDockerd, project: Awaited<ReturnType<typeof createProjectOn>>) => Promise<void> = async () => {},
) {
  await buildOnce();
  const engine = await startPrivateDockerd();
  const project = await createProjectOn(engine.host, services);
  const scratch = await scratchDir();
  let daemon: SpawnedDaemon | undefined;
  const remove = async () => {
    await daemon?.kill();
    if (process.env.POOL_TEST_LOGS) console.log(daemon?.output());
    await engine.up().catch(() => {});
    await project.remove().catch(() => {});
    await engine.remove();
    await rm(scratch, { recursive: true, force: true });
  };
  try {
    await prepare(engine, project);
    daemon = spawnDaemon(project.dir, daemonEnv(project, scratch, { DOCKER_HOST: engine.host, ...env }));
    return { engine, project, daemon, url: await daemon.ready(), remove };
  } catch (error) {
    await remove();
    throw error;
  }
}

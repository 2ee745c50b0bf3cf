import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { type ClientRequest, get } from 'node:http';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';

export const TEST_IMAGE = process.env.POOL_TEST_IMAGE ?? 'openclaw-pool/busybox:latest';

/**
 * Whether a Docker engine with compose v2 and the test image is here. Under CI=true a missing
 * engine is an error that fails the file: a green run must have exercised real Docker.
 */
export async function requireDocker(): Promise<boolean> {
  const problem = await dockerProblem();
  if (problem === undefined) return true;
  const message = `Docker tests cannot run: ${problem}. Run 'sudo scripts/provision-docker.sh' first.`;
  if (process.env.CI === 'true') throw new Error(message);
  console.warn(`SKIPPED: ${message}`);
  return false;
}

async function dockerProblem(): Promise<string | undefined> {
  const info = await execa('docker', ['info', '--format', '{{.ServerVersion}}'], { reject: false, timeout: 20_000 });
  if (info.failed) return `'docker info' failed (${(info.stderr || info.shortMessage || '').trim().split('\n')[0]})`;
  const compose = await execa('docker', ['compose', 'version'], { reject: false, timeout: 20_000 });
  if (compose.failed) return "'docker compose' (compose v2) is not installed";
  const image = await execa('docker', ['image', 'inspect', TEST_IMAGE], { reject: false, timeout: 20_000 });
  if (image.failed) return `the test image ${TEST_IMAGE} is missing`;
  return undefined;
}

/** A busybox agent's command: it idles and exits promptly on SIGTERM (busybox sh as PID 1 ignores it otherwise). */
export const AGENT_COMMAND = ['sh', '-c', "trap 'exit 0' TERM INT; while :; do sleep 0.2; done"];

/** A compose service running the test agent. */
export function agentService(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    image: TEST_IMAGE,
    pull_policy: 'never',
    network_mode: 'host',
    command: AGENT_COMMAND,
    ...extra,
  };
}

/**
 * A busybox agent that holds `mib` MiB: what it writes to /dev/shm (a tmpfs of `shm_size`) is
 * charged to its container's memory, and Docker's stats count it (cgroup v1 and v2 alike). Asked
 * to stop, it keeps what it holds `lingerSeconds` longer, as an agent that shuts down would.
 */
export const holding = (mib: number, extra: Record<string, unknown> = {}, lingerSeconds = 0) =>
  agentService({
    shm_size: `${mib + 16}m`,
    command: ['sh', '-c', `dd if=/dev/zero of=/dev/shm/fill bs=1M count=${mib} 2>/dev/null; trap 'sleep ${lingerSeconds}; exit 0' TERM INT; while :; do sleep 0.2; done`],
    ...extra,
  });

/** The Engine API's unix socket: DOCKER_HOST's, or the default one. */
const engineSocket = () => {
  const host = process.env.DOCKER_HOST ?? '';
  return host.startsWith('unix://') ? host.slice('unix://'.length) : '/var/run/docker.sock';
};

/** One reading of Docker's view of a project's memory: each running container's latest figure (bytes), by service. */
export interface MemorySample {
  /** When the reading that made this sample arrived (ms). */
  readonly at: number;
  readonly shown: ReadonlyMap<string, number>;
}

/**
 * Docker's own view of the project's running containers' memory, until `stop`: each container's
 * stats stream through the Engine API (which hides cgroup v1 from v2), opened as soon as a listing
 * every 50 ms shows it running. dockerd reads its containers once a second; each reading that
 * arrives makes a sample of every running container's latest figure, usage less the inactive file
 * cache as `docker stats` counts it (a stopped container's readings have none: it drops out). The
 * tests' own road to the engine, not the driver's.
 */
export function watchDockerMemory(project: { readonly name: string }): { stop(): Promise<MemorySample[]> } {
  const samples: MemorySample[] = [];
  const latest = new Map<string, { service: string; bytes: number }>();
  const streams = new Map<string, ClientRequest>();
  const filters = encodeURIComponent(JSON.stringify({ label: [`com.docker.compose.project=${project.name}`] }));
  type Stats = { memory_stats?: { usage?: number; stats?: Record<string, number> } };
  const follow = (id: string, service: string) => {
    const gone = () => {
      latest.delete(id);
      streams.delete(id);
    };
    const req = get({ socketPath: engineSocket(), path: `/containers/${id}/stats?stream=1`, headers: { Host: 'docker' } }, (res) => {
      const lines = createInterface({ input: res });
      // `stop` destroys the streams still open: readline passes the response's error on.
      lines.on('error', gone);
      lines.on('line', (line) => {
        const { usage, stats = {} } = (JSON.parse(line) as Stats).memory_stats ?? {};
        // A stopped container's stream goes on, with no figures.
        if (usage === undefined) latest.delete(id);
        else latest.set(id, { service, bytes: usage - (stats.total_inactive_file ?? stats.inactive_file ?? 0) });
        samples.push({ at: Date.now(), shown: new Map([...latest.values()].map((c) => [c.service, c.bytes])) });
      });
      res.once('end', gone);
    });
    req.on('error', gone);
    streams.set(id, req);
  };
  let watching = true;
  const loop = (async () => {
    while (watching) {
      const running = await new Promise<{ Id: string; Labels: Record<string, string> }[]>((resolve, reject) => {
        get({ socketPath: engineSocket(), path: `/containers/json?filters=${filters}`, headers: { Host: 'docker' } }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')) as { Id: string; Labels: Record<string, string> }[]));
        }).once('error', reject);
      });
      for (const c of running) if (!streams.has(c.Id)) follow(c.Id, c.Labels['com.docker.compose.service'] ?? c.Id);
      await sleep(50);
    }
  })();
  // A failed listing fails the test at `stop`, not as an unhandled rejection before it.
  loop.catch(() => {});
  return {
    async stop() {
      watching = false;
      // The listing first: none is followed after this.
      await loop;
      for (const req of [...streams.values()]) req.destroy();
      return samples;
    },
  };
}

export interface ComposeProject {
  readonly dir: string;
  readonly name: string;
  compose(...args: string[]): Promise<string>;
  /** Containers of the project as Docker lists them: service label and state. */
  containers(): Promise<{ service: string; state: string }[]>;
  remove(): Promise<void>;
}

/** Writes a compose project (JSON is YAML) into a temp dir, with a unique project name. */
export async function createComposeProject(services: Record<string, Record<string, unknown>>, topLevel: Record<string, unknown> = {}): Promise<ComposeProject> {
  const dir = await mkdtemp(join(tmpdir(), 'pool-compose-'));
  const name = `pooltest-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  await writeFile(join(dir, 'compose.yaml'), JSON.stringify({ name, services, ...topLevel }, null, 2));
  // Every profile, as the daemon does: a project with profiles is otherwise only partly visible.
  const composeArgv = ['compose', '--project-directory', dir, '--profile', '*', '-p', name];
  const compose = async (...args: string[]) => (await execa('docker', [...composeArgv, ...args])).stdout;
  return {
    dir,
    name,
    compose,
    async containers() {
      const { stdout } = await execa('docker', [
        'ps', '--all', '--filter', `label=com.docker.compose.project=${name}`,
        '--format', '{{.Label "com.docker.compose.service"}}\t{{.State}}',
      ]);
      return stdout.split('\n').filter(Boolean).map((line) => {
        const [service = '', state = ''] = line.split('\t');
        return { service, state };
      });
    },
    async remove() {
      await execa('docker', [...composeArgv, 'down', '--timeout', '0', '--remove-orphans'], { reject: false });
      await rm(dir, { recursive: true, force: true });
    },
  };
}

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
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

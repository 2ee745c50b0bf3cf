import { cp, mkdir, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { AGENT_IMAGE } from '../support/agent-image.js';

const FIXTURE = fileURLToPath(new URL('./fixture/', import.meta.url));

/** A TCP port nobody listens on now (bound on 127.0.0.1, then closed): the .env's POOL_PORT. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface Outcome {
  code: number | undefined;
  stdout: string;
  stderr: string;
}

export interface OpenclawProject {
  /** `/home/pooltest-<random>`, removed with the project. */
  readonly home: string;
  /** The compose project directory, `<home>/openclaw`, as on an OpenClaw host. */
  readonly dir: string;
  /** COMPOSE_PROJECT_NAME from the .env (unique per run). */
  readonly name: string;
  /** `<dir>/pool`: the daemon's default POOL_DIR and the agents' `./pool:/pool` mount. */
  readonly poolDir: string;
  readonly port: number;
  readonly ctoContainerName: string;
  /** `docker compose` in the project as its operator runs it (the .env applies, COMPOSE_PROFILES=seed included). */
  compose(...args: string[]): Promise<string>;
  /** A command inside a running service's container, as its compose user (uid 1001); never throws. */
  exec(service: string, command: string[]): Promise<Outcome>;
  /** Services whose containers Docker says are running, sorted. */
  running(): Promise<string[]>;
  /** Services that have a container at all (any state), sorted. */
  created(): Promise<string[]>;
  remove(): Promise<void>;
}

/**
 * Copies the fixture into `/home/pooltest-<random>/openclaw` and writes its `.env` (project name,
 * image, a free POOL_PORT, COMPOSE_PROFILES=seed) and `pool/autostart.txt`. Nothing is started.
 */
export async function createOpenclawProject(autostart: string): Promise<OpenclawProject> {
  const id = `${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const home = `/home/pooltest-${id}`;
  const dir = join(home, 'openclaw');
  const name = `openclaw-${id}`;
  const port = await freePort();
  const ctoContainerName = `${name}-cto`;
  await mkdir(dir, { recursive: true });
  await cp(FIXTURE, dir, { recursive: true });
  await writeFile(
    join(dir, '.env'),
    [
      `COMPOSE_PROJECT_NAME=${name}`,
      'COMPOSE_PROFILES=seed',
      `AGENT_IMAGE=${AGENT_IMAGE}`,
      `POOL_PORT=${port}`,
      `CTO_CONTAINER_NAME=${ctoContainerName}`,
      '',
    ].join('\n'),
  );
  const poolDir = join(dir, 'pool');
  await mkdir(poolDir);
  await writeFile(join(poolDir, 'autostart.txt'), autostart);

  const compose = async (...args: string[]) => (await execa('docker', ['compose', '--project-directory', dir, ...args], { cwd: dir })).stdout;
  const services = async (all: boolean) => {
    const { stdout } = await execa('docker', [
      'ps', ...(all ? ['--all'] : []), '--filter', `label=com.docker.compose.project=${name}`,
      '--format', '{{.Label "com.docker.compose.service"}}',
    ]);
    return stdout.split('\n').filter(Boolean).sort();
  };
  return {
    home,
    dir,
    name,
    poolDir,
    port,
    ctoContainerName,
    compose,
    // --profile '*': `exec` must reach a service whose profile is not in COMPOSE_PROFILES too.
    async exec(service, command) {
      const result = await execa('docker', ['compose', '--project-directory', dir, '--profile', '*', 'exec', '-T', service, ...command], {
        cwd: dir,
        reject: false,
        timeout: 60_000,
      });
      return { code: result.exitCode, stdout: result.stdout, stderr: result.stderr };
    },
    running: () => services(false),
    created: () => services(true),
    async remove() {
      await execa('docker', ['compose', '--project-directory', dir, '--profile', '*', 'down', '--timeout', '0', '--remove-orphans'], { cwd: dir, reject: false });
      await rm(home, { recursive: true, force: true });
    },
  };
}

import { access, mkdir, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { execa } from 'execa';
import { eventually } from './daemon.js';

/**
 * A real systemd as PID 1 in a container (the recipe in STACK-NOTES): a "box" that behaves as a
 * small systemd host, driving the host's Docker engine through its socket. Used by the systemd suite
 * (npm run test:systemd) to run scripts/install.sh and the unit as on a VPS.
 *
 * Never --privileged, never --cgroupns=host with /sys/fs/cgroup mounted: that combination remounts
 * the host's cgroup tree read-only and breaks Docker for everything else on the machine.
 */

export const SYSTEMD_IMAGE = process.env.POOL_SYSTEMD_IMAGE ?? 'openclaw-pool/systemd:bookworm';
const ROOT = new URL('../..', import.meta.url).pathname.replace(/\/$/, '');
const NPM_CACHE = join(tmpdir(), 'openclaw-pool-systemd-npm-cache');

export interface ExecResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

export interface ExecOptions {
  /** Extra environment of the command (added to the container's). */
  env?: Record<string, string>;
  /** A user name or uid[:gid] of the box (docker exec -u): a name gets its supplementary groups. */
  user?: string;
  input?: string;
  /** Milliseconds; a command still running then is reported with exitCode 124. */
  timeout?: number;
}

export interface SystemdBox {
  /** The container's name. */
  readonly name: string;
  /** Runs a command in the box as root (unless opts.user); never throws on a non-zero exit. */
  exec(argv: string[], opts?: ExecOptions): Promise<ExecResult>;
  /** `/bin/sh -c script` in the box. */
  sh(script: string, opts?: ExecOptions): Promise<ExecResult>;
  /** The messages of a unit in the journal of the current boot, one per line (journalctl -o cat). */
  journal(unit: string): Promise<string>;
  /** Restarts the container: a clean shutdown of its systemd and a boot; resolves once booted. */
  restart(): Promise<void>;
  /** Removes the container and its network; idempotent. */
  remove(): Promise<void>;
}

export interface SystemdBoxOptions {
  /** Host directories mounted read-write at the same path inside (compose resolves paths on the host). */
  binds?: string[];
  /** Users to create in the box (no home directory is made: /home/<user> may be a bind's parent). */
  users?: string[];
}

/**
 * Builds the image (scripts/build-systemd-image.sh: debootstrap, about a minute, root only) unless
 * the engine already has it.
 */
export async function ensureSystemdImage(): Promise<void> {
  const present = await execa('docker', ['image', 'inspect', SYSTEMD_IMAGE], { reject: false });
  if (!present.failed) return;
  if (process.getuid?.() !== 0) throw new Error(`the image ${SYSTEMD_IMAGE} is missing; build it as root: sudo scripts/build-systemd-image.sh`);
  await execa('bash', [join(ROOT, 'scripts/build-systemd-image.sh'), SYSTEMD_IMAGE], { stdio: 'inherit' });
}

/** Where the host's compose plugin is, as the docker CLI reports it. */
async function composePluginDir(): Promise<string> {
  const { stdout } = await execa('docker', ['info', '--format', '{{range .ClientInfo.Plugins}}{{if eq .Name "compose"}}{{.Path}}{{end}}{{end}}']);
  if (stdout.trim() === '') throw new Error("the docker CLI reports no compose plugin ('docker compose' v2 is needed)");
  return dirname(await realpath(stdout.trim()));
}

/** The npm package directory of the host's npm (the box's `npm` links into it). */
async function npmDir(): Promise<string> {
  const { stdout } = await execa('sh', ['-c', 'command -v npm']);
  return dirname(dirname(await realpath(stdout.trim())));
}

const STANDIN_DOCKER_UNIT = `# The box drives the host's Docker through its socket, so it runs no dockerd. This stand-in lets
# openclaw-pool.service keep Requires=docker.service and After=docker.service, as on a real host.
[Unit]
Description=Docker (stand-in: the host's engine, through /run/docker.sock)
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/true
[Install]
WantedBy=multi-user.target
`;

export async function startSystemdBox(options: SystemdBoxOptions = {}): Promise<SystemdBox> {
  await ensureSystemdImage();
  const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
  if (major < 20 || (major === 20 && minor < 19)) throw new Error(`the box runs the host's Node, which must be >= 20.19 (this is ${process.version})`);
  const name = `openclaw-pool-systemd-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const node = await realpath(process.execPath);
  const docker = await realpath((await execa('sh', ['-c', 'command -v docker'])).stdout.trim());
  const caBundle = '/etc/ssl/certs/ca-certificates.crt';
  const haveCa = await access(caBundle).then(() => true, () => false);
  await mkdir(NPM_CACHE, { recursive: true });
  const mounts: [string, string, 'ro' | 'rw'][] = [
    ['/var/run/docker.sock', '/run/docker.sock', 'rw'],
    [docker, '/usr/bin/docker', 'ro'],
    [await composePluginDir(), '/usr/libexec/docker/cli-plugins', 'ro'],
    [node, '/usr/bin/node', 'ro'],
    [await npmDir(), '/usr/lib/node_modules/npm', 'ro'],
    // install.sh runs from the checkout, which it only copies from.
    [ROOT, ROOT, 'ro'],
    // Its `npm ci --omit=dev` reaches the npm registry only if it trusts this machine's CA bundle (NODE_EXTRA_CA_CERTS).
    ...(haveCa ? [['/etc/ssl/certs', '/etc/ssl/certs', 'ro'] as [string, string, 'ro']] : []),
    // One npm cache for every box (npm's cache is safe to share): each install.sh runs `npm ci`.
    [NPM_CACHE, '/root/.npm', 'rw'],
    ...(options.binds ?? []).map((dir): [string, string, 'rw'] => [dir, dir, 'rw']),
  ];
  // A network of its own: the box reaches the npm registry through it and shares nothing with others' containers.
  await execa('docker', ['network', 'create', '--label', 'openclaw-pool.test=systemd', name]);
  let removed = false;
  const remove = async () => {
    if (removed) return;
    removed = true;
    await execa('docker', ['rm', '--force', '--volumes', name], { reject: false });
    await execa('docker', ['network', 'rm', name], { reject: false });
  };
  try {
    await execa('docker', [
      'run', '--detach', '--name', name, '--hostname', 'poolbox', '--label', 'openclaw-pool.test=systemd', '--network', name,
      // STACK-NOTES: exactly these. SIGRTMIN+3 is systemd's "halt", so docker stop/restart is a clean shutdown.
      '--cgroupns=private', '--cap-add=SYS_ADMIN', '--tmpfs', '/run', '--tmpfs', '/run/lock', '--stop-signal=SIGRTMIN+3',
      ...mounts.flatMap(([from, to, mode]) => ['--volume', `${from}:${to}:${mode}`]),
      ...(haveCa ? ['--env', `NODE_EXTRA_CA_CERTS=${caBundle}`] : []),
      '--env', 'npm_config_update_notifier=false', '--env', 'npm_config_fund=false', '--env', 'npm_config_audit=false',
      SYSTEMD_IMAGE, '/sbin/init',
    ]);
    const box = makeBox(name, remove);
    await waitForBoot(box);
    const users = (options.users ?? []).map((user) => `useradd --no-create-home --home-dir /home/${user} --shell /bin/sh ${user}`);
    const setup = await box.sh([
      'set -e',
      `node -v >/dev/null || { echo "the host's node does not run in the box (ldd $(command -v node))" >&2; exit 1; }`,
      'ln -sfn /usr/lib/node_modules/npm/bin/npm-cli.js /usr/bin/npm',
      ...users,
      `cat >/etc/systemd/system/docker.service <<'EOF'\n${STANDIN_DOCKER_UNIT}EOF`,
      'systemctl daemon-reload',
      'systemctl enable --now --quiet docker.service',
    ].join('\n'));
    if (setup.exitCode !== 0) throw new Error(`setting up the systemd box failed: ${setup.stderr || setup.stdout}`);
    return box;
  } catch (error) {
    await remove();
    throw error;
  }
}

function makeBox(name: string, remove: () => Promise<void>): SystemdBox {
  const exec = async (argv: string[], opts: ExecOptions = {}): Promise<ExecResult> => {
    const flags = [
      ...(opts.input !== undefined ? ['--interactive'] : []),
      ...(opts.user !== undefined ? ['--user', opts.user] : []),
      ...Object.entries(opts.env ?? {}).flatMap(([key, value]) => ['--env', `${key}=${value}`]),
    ];
    const result = await execa('docker', ['exec', ...flags, name, ...argv], {
      reject: false,
      stripFinalNewline: true,
      ...(opts.input !== undefined ? { input: opts.input } : { stdin: 'ignore' as const }),
      ...(opts.timeout !== undefined && { timeout: opts.timeout }),
    });
    return { stdout: String(result.stdout), stderr: String(result.stderr), exitCode: result.timedOut ? 124 : (result.exitCode ?? 1) };
  };
  const box: SystemdBox = {
    name,
    exec,
    sh: (script, opts) => exec(['/bin/sh', '-c', script], opts),
    async journal(unit) {
      return (await exec(['journalctl', '--boot', '--unit', unit, '--no-pager', '--output', 'cat'])).stdout;
    },
    async restart() {
      // A shutdown runs every stop job (openclaw-pool's stops the agents): give it longer than docker's 10 s.
      await execa('docker', ['restart', '--time', '120', name]);
      await waitForBoot(box);
    },
    remove,
  };
  return box;
}

/**
 * Until systemd reports the boot finished: `running`, or `degraded` (a unit failed, which may be
 * what a test left behind: openclaw-pool.service failed on purpose).
 */
async function waitForBoot(box: SystemdBox): Promise<void> {
  // Before systemd has set up its bus, systemctl cannot connect at all: try again shortly.
  await eventually(async () => {
    const state = await box.exec(['systemctl', 'is-system-running', '--wait'], { timeout: 60_000 });
    if (state.stdout !== 'running' && state.stdout !== 'degraded') throw new Error(`the systemd box did not boot within 60 s: ${state.stdout} ${state.stderr}`);
  }, 60_000, 200);
}

export interface InstallOptions {
  /** Passed as --compose-dir. */
  composeDir: string;
  /**
   * Values for /etc/openclaw-pool/pool.env, as an operator would set them after installing: the
   * script runs once with --no-start to write its pool.env, these replace (or are appended to) its
   * lines, and a second run starts the service with them, writing the drop-in from them.
   */
  poolEnv?: Record<string, string>;
  /** Further arguments of install.sh (e.g. --no-start). */
  args?: string[];
  /** Environment of install.sh (e.g. SUDO_USER). */
  env?: Record<string, string>;
}

/** Runs scripts/install.sh from the checkout inside the box, as root; throws with its output when it fails. */
export async function installInBox(box: SystemdBox, options: InstallOptions): Promise<ExecResult> {
  const install = async (args: string[]) => {
    const result = await box.exec(['bash', join(ROOT, 'scripts/install.sh'), '--compose-dir', options.composeDir, ...args], { env: options.env ?? {}, timeout: 300_000 });
    if (result.exitCode !== 0) throw new Error(`install.sh ${args.join(' ')} exited ${result.exitCode}:\n${result.stdout}\n${result.stderr}`);
    return result;
  };
  if (options.poolEnv === undefined) return install(options.args ?? []);
  await install(['--no-start']);
  await setPoolEnv(box, options.poolEnv);
  return install(options.args ?? []);
}

/** Sets variables in the box's /etc/openclaw-pool/pool.env: replaces their lines, or appends them; keeps its mode. */
export async function setPoolEnv(box: SystemdBox, values: Record<string, string>): Promise<void> {
  // The new lines come on stdin (awk's first file), so no value is ever quoted for a shell or sed.
  const script = `set -e
f=/etc/openclaw-pool/pool.env
awk 'NR == FNR { key = substr($0, 1, index($0, "=") - 1); line[key] = $0; order[++n] = key; next }
  match($0, /^[A-Za-z_][A-Za-z0-9_]*=/) { key = substr($0, 1, RLENGTH - 1); if (key in line) { print line[key]; done[key] = 1; next } }
  { print }
  END { for (i = 1; i <= n; i++) if (!(order[i] in done)) print line[order[i]] }' /dev/stdin "$f" >"$f.new"
cat "$f.new" >"$f"
rm "$f.new"`;
  const input = Object.entries(values).map(([key, value]) => `${key}=${value}\n`).join('');
  const result = await box.sh(script, { input });
  if (result.exitCode !== 0) throw new Error(`editing pool.env failed: ${result.stderr}`);
}

export interface HomeComposeProject {
  /** The user whose home holds the project (created in the box by startSystemdBox({ users })). */
  readonly user: string;
  /** /home/<user>/openclaw, on the host and in the box alike. */
  readonly dir: string;
  readonly name: string;
  /** Services of the project with a running container, as the host's engine lists them. */
  running(): Promise<string[]>;
  /** Each container's id and start time, to tell a container left running from one restarted. */
  starts(): Promise<Map<string, string>>;
  remove(): Promise<void>;
}

/**
 * A compose project at /home/<user>/openclaw, where the earlier bash manager's users keep theirs. It
 * is made on this machine (compose resolves paths on the host) and mounted at the same path in the box.
 */
export async function createHomeComposeProject(services: Record<string, Record<string, unknown>>): Promise<HomeComposeProject> {
  const user = `pool${Math.random().toString(36).slice(2, 8)}`;
  const dir = `/home/${user}/openclaw`;
  const name = `poolsd-${process.pid}-${user}`;
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'compose.yaml'), JSON.stringify({ name, services }, null, 2));
  const ps = async (format: string) =>
    (await execa('docker', ['ps', '--filter', `label=com.docker.compose.project=${name}`, '--format', format])).stdout.split('\n').filter(Boolean);
  return {
    user,
    dir,
    name,
    async running() {
      return (await ps('{{.Label "com.docker.compose.service"}}')).sort();
    },
    async starts() {
      const ids = await ps('{{.ID}}');
      if (ids.length === 0) return new Map();
      const { stdout } = await execa('docker', ['inspect', '--format', '{{index .Config.Labels "com.docker.compose.service"}} {{.Id}} {{.State.StartedAt}}', ...ids]);
      return new Map(stdout.split('\n').map((line) => {
        const [service = '', ...rest] = line.split(' ');
        return [service, rest.join(' ')];
      }));
    },
    async remove() {
      await execa('docker', ['compose', '--project-directory', dir, '-p', name, 'down', '--timeout', '0', '--remove-orphans'], { reject: false });
      await rm(`/home/${user}`, { recursive: true, force: true });
    },
  };
}

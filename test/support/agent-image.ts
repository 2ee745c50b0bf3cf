import { createHash } from 'node:crypto';
import { chmod, copyFile, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

/** An OpenClaw-like agent image: busybox, bash, curl and jq, the project's shims in /usr/local/bin. */
export const AGENT_IMAGE = 'openclaw-pool/agent:test';

const SHIMS = fileURLToPath(new URL('../../shims/', import.meta.url));
const SHIM_NAMES = ['request-agent', 'heartbeat'];
/** Host binaries copied in with their shared libraries; busybox provides sh and the applets. */
const BINARIES = ['/usr/bin/bash', '/usr/bin/curl', '/usr/bin/jq'];
/**
 * Idles until SIGTERM. The trap makes TERM end it at once even when sh is PID 1 (no `init: true`),
 * and `wait` on a background sleep lets the trap run immediately instead of after the sleep.
 */
const IDLE = "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done";
const CHANGES = [
  'ENV PATH=/usr/local/bin:/usr/bin:/bin',
  `CMD ${JSON.stringify(['/bin/sh', '-c', IDLE])}`,
];
const INPUTS_LABEL = 'openclaw-pool.test-inputs';

/**
 * Makes sure `AGENT_IMAGE` exists on the engine at `dockerHost` (default: the usual one), built
 * from this host's binaries with `docker import` (nothing can be pulled here). An image built from
 * the same inputs is reused; a change to the shims or to this recipe rebuilds it.
 */
export async function ensureAgentImage(dockerHost?: string): Promise<string> {
  const env = dockerHost === undefined ? {} : { DOCKER_HOST: dockerHost };
  const busybox = await findBusybox();
  const inputs = await inputsHash(busybox);
  const present = await execa('docker', ['image', 'inspect', '--format', `{{index .Config.Labels "${INPUTS_LABEL}"}}`, AGENT_IMAGE], { env, reject: false });
  if (!present.failed && present.stdout.trim() === inputs) return AGENT_IMAGE;

  const rootfs = await mkdtemp(join(tmpdir(), 'pool-agent-rootfs-'));
  try {
    await buildRootfs(rootfs, busybox);
    const changes = [...CHANGES, `LABEL ${INPUTS_LABEL}=${inputs}`].flatMap((change) => ['--change', change]);
    await execa('tar', ['-C', rootfs, '--numeric-owner', '-c', '.']).pipe('docker', ['import', ...changes, '-', AGENT_IMAGE], { env });
  } finally {
    await rm(rootfs, { recursive: true, force: true });
  }
  return AGENT_IMAGE;
}

/** The static /bin/busybox when there is one, else whatever busybox is on PATH (Debian's, dynamic: its libraries come along). */
async function findBusybox(): Promise<string> {
  if (existsSync('/bin/busybox')) return '/bin/busybox';
  const found = await execa('sh', ['-c', 'command -v busybox'], { reject: false });
  if (found.failed || found.stdout.trim() === '') throw new Error('busybox is not installed on this host (apt-get install busybox-static)');
  return found.stdout.trim();
}

async function inputsHash(busybox: string): Promise<string> {
  const hash = createHash('sha256');
  hash.update(JSON.stringify({ busybox, BINARIES, CHANGES }));
  for (const shim of SHIM_NAMES) hash.update(await readFile(join(SHIMS, shim)));
  return hash.digest('hex').slice(0, 16);
}

/** The shared libraries `ldd` names for `binary` (none for a static one). */
async function sharedLibraries(binary: string): Promise<string[]> {
  const { stdout, exitCode } = await execa('ldd', [binary], { reject: false });
  if (exitCode !== 0) return []; // "not a dynamic executable"
  return [...stdout.matchAll(/(\/\S+) \(0x[0-9a-f]+\)/g)].map((match) => match[1] ?? '').filter(Boolean);
}

async function copyInto(rootfs: string, path: string, target = path): Promise<void> {
  await mkdir(dirname(join(rootfs, target)), { recursive: true });
  await copyFile(path, join(rootfs, target));
}

async function buildRootfs(rootfs: string, busybox: string): Promise<void> {
  const libraries = new Set<string>();
  for (const binary of [busybox, ...BINARIES]) {
    await copyInto(rootfs, binary);
    for (const library of await sharedLibraries(binary)) libraries.add(library);
  }
  for (const library of libraries) await copyInto(rootfs, library);
  if (busybox !== '/bin/busybox') await copyInto(rootfs, busybox, '/bin/busybox');

  const { stdout } = await execa(busybox, ['--list']);
  // Some busybox builds have a `bash` applet: the real bash wins.
  const present = new Set(BINARIES.map((binary) => binary.split('/').pop()));
  for (const applet of stdout.split('\n').filter((name) => name && !present.has(name))) {
    await symlink('busybox', join(rootfs, 'bin', applet)).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'EEXIST') throw error;
    });
  }
  // `#!/bin/bash` and `#!/usr/bin/env bash` both work, as in OpenClaw's images.
  await symlink('/usr/bin/bash', join(rootfs, 'bin', 'bash'));
  await symlink('/bin/busybox', join(rootfs, 'usr', 'bin', 'env'));

  await mkdir(join(rootfs, 'usr', 'local', 'bin'), { recursive: true });
  for (const shim of SHIM_NAMES) {
    await copyFile(join(SHIMS, shim), join(rootfs, 'usr', 'local', 'bin', shim));
    await chmod(join(rootfs, 'usr', 'local', 'bin', shim), 0o755);
  }
  await mkdir(join(rootfs, 'tmp'));
  await chmod(join(rootfs, 'tmp'), 0o1777);
  // Docker mounts /etc/hosts (with extra_hosts) but glibc, without nsswitch.conf, asks DNS first
  // and stops at its NXDOMAIN: `pool-manager` would never resolve for curl.
  await mkdir(join(rootfs, 'etc'), { recursive: true });
  await writeFile(join(rootfs, 'etc', 'nsswitch.conf'), 'hosts: files dns\n');
}

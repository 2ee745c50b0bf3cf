import { DriverError } from '../contract/errors.js';
import type { ObservedAgent } from '../core/reconcile.js';
import type { ComposeCommands } from './compose-commands.js';
import type { ComposeReads } from './compose-reads.js';
import { STOP_SLACK_MS } from './docker.js';

/** The project's service containers, stopped ones included: one read, whatever the pool size. */
export async function listContainers(reads: ComposeReads): Promise<ObservedAgent[]> {
  const observed: ObservedAgent[] = [];
  for (const { service: agent, state, createdAt: startedAt } of await reads.containers(true)) {
    // A paused container is up (it holds its memory), as Docker's own State.Running says.
    const paused = state === 'paused';
    observed.push({ agent, running: state === 'running' || paused, ...(paused && { paused }), ...(startedAt !== undefined && { startedAt }) });
  }
  return observed;
}

/** `compose stop`, then `kill` if that failed; resolves only once the listing shows the agent down. */
export async function stopService(commands: ComposeCommands, reads: ComposeReads, agent: string, timeoutMs: number): Promise<void> {
  const seconds = Math.ceil(timeoutMs / 1000);
  let stopError: unknown;
  try {
    await commands.compose(['stop', '--timeout', String(seconds), '--', agent], timeoutMs + STOP_SLACK_MS);
  } catch (error) {
    stopError = error;
    // A kill is immediate on a healthy engine; do not wait the 120 s meant for starts.
    await commands.compose(['kill', '--', agent], STOP_SLACK_MS).catch((killError: unknown) => {
      stopError = killError;
    });
  }
  // Counted until Docker confirms it is down, whatever the commands said.
  if ((await listContainers(reads)).some((o) => o.agent === agent && o.running)) {
    if (stopError instanceof DriverError) throw stopError;
    throw new DriverError(`${agent} is still running after stop and kill`, ['docker', 'compose', 'stop', agent], undefined, '');
  }
}

/** Memory in use by each running service's container (`docker stats`, which takes a second or two), in bytes. */
export async function memoryUsage(commands: ComposeCommands, reads: ComposeReads): Promise<Map<string, number>> {
  const services = new Map((await reads.containers(false)).map(({ service, id }) => [id, service]));
  if (services.size === 0) return new Map();
  const stdout = await commands.docker(['stats', '--no-stream', '--format', '{{.Container}}\t{{.MemUsage}}', ...services.keys()], commands.queryTimeoutMs);
  const usage = new Map<string, number>();
  for (const line of stdout.split('\n')) {
    const [id, memory] = line.split('\t');
    const service = services.get(id ?? '');
    // "12.3MiB / 7.7GiB": what the container uses, then its limit.
    const bytes = parseDockerSize(memory?.split('/')[0] ?? '');
    if (service !== undefined && bytes !== undefined) usage.set(service, bytes);
  }
  return usage;
}

const SIZE_UNITS = new Map(Object.entries({ B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3, TiB: 1024 ** 4, kB: 1e3, KB: 1e3, MB: 1e6, GB: 1e9, TB: 1e12 }));

/** Docker's human sizes (`352KiB`, `1.045GiB`, `12.4 MB`, `0B`) in bytes; undefined for anything else. */
export function parseDockerSize(text: string): number | undefined {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]+)\s*$/.exec(text);
  if (match === null) return undefined;
  const unit = SIZE_UNITS.get(match[2] ?? '');
  return unit === undefined ? undefined : Math.round(Number(match[1]) * unit);
}

import type { EngineApi } from './engine-api.js';
import { STACK_LABEL, type StackNaming, type SwarmReads, type Task } from './swarm-reads.js';

/** The parts of the Engine API's swarm objects read here. */
interface ApiTask {
  ID: string;
  ServiceID: string;
  NodeID?: string;
  Slot?: number;
  CreatedAt: string;
  DesiredState: string;
  Status: { State: string; Err?: string };
}
interface ApiService {
  ID: string;
  Spec: { Name: string; Mode?: { Replicated?: { Replicas?: number } } };
  ServiceStatus?: { RunningTasks: number; DesiredTasks: number };
}
interface ApiNode {
  ID: string;
  Spec?: { Name?: string };
  Description?: { Hostname?: string };
  Status?: { State?: string };
}

/** swarmkit's states are lower case (`running`); the CLI prints them capitalised (`Running`), as the driver compares them. */
const asPrinted = (state: string) => state.charAt(0).toUpperCase() + state.slice(1).toLowerCase();

/**
 * Reads over the Engine API: no process per read, and no resident `docker events` child. Tasks
 * name their service and node by ID; the names come from the service and node listings, fetched
 * beside them, as the CLI's resolver looks them up.
 */
export function apiSwarmReads(api: EngineApi, stack: StackNaming): SwarmReads {
  const byStack = { label: [`${STACK_LABEL}=${stack.name}`] };
  const services = (query: Record<string, unknown> = {}, signal?: AbortSignal) => api.get<ApiService[]>('/services', { ...query, filters: byStack }, signal);
  const nodes = (signal?: AbortSignal) => api.get<ApiNode[]>('/nodes', {}, signal);
  const taskList = (filters: Record<string, string[]>, signal?: AbortSignal) => api.get<ApiTask[]>('/tasks', { filters }, signal);

  return {
    calls: { role: ['GET', '/info'], services: ['GET', `/services?filters=${JSON.stringify(byStack)}`] },
    async agents() {
      return (await services()).map((s) => stack.agentOf(s.Spec.Name)).filter((agent) => agent !== undefined).sort();
    },
    async tasks(service, signal) {
      const [tasks, known] = await Promise.all([taskList({ service: [service] }, signal), nodes(signal)]);
      return asCliTasks(stack, tasks, () => service, known);
    },
    async stackTasks() {
      const [tasks, listed, known] = await Promise.all([taskList(byStack), services(), nodes()]);
      const names = new Map(listed.map((s) => [s.ID, s.Spec.Name]));
      // A task whose service is gone by now is named by the service's ID, as the CLI names it.
      return asCliTasks(stack, tasks, (id) => names.get(id) ?? id, known);
    },
    async unconverged(signal) {
      const listed = await services({ status: true }, signal);
      // ServiceStatus comes with API 1.41 (Docker 20.10): for an older engine, running tasks are counted here, as its CLI counted them.
      const running = listed.some((s) => s.ServiceStatus === undefined) ? await runningTasks(signal) : new Map<string, number>();
      const pending = new Set<string>();
      for (const s of listed) {
        const agent = stack.agentOf(s.Spec.Name);
        const desired = s.ServiceStatus?.DesiredTasks ?? s.Spec.Mode?.Replicated?.Replicas;
        const up = s.ServiceStatus?.RunningTasks ?? running.get(s.ID) ?? 0;
        if (agent !== undefined && desired !== undefined && up !== desired) pending.add(agent);
      }
      return pending;
    },
    async swarmRole() {
      const { Swarm: swarm } = await api.get<{ Swarm?: { LocalNodeState?: string; ControlAvailable?: boolean } }>('/info');
      return { state: swarm?.LocalNodeState ?? '', manager: swarm?.ControlAvailable === true };
    },
    async *serviceChanges(signal) {
      for await (const event of api.stream<{ Action?: string; Actor?: { Attributes?: Record<string, string> } }>('/events', { filters: { type: ['service'] } }, signal)) {
        yield { service: event.Actor?.Attributes?.name ?? '', action: event.Action ?? '' };
      }
    },
  };

  /** Running tasks by service ID, leaving out nodes that are down, as `docker service ls` did before ServiceStatus. */
  async function runningTasks(signal: AbortSignal): Promise<Map<string, number>> {
    const [tasks, known] = await Promise.all([taskList(byStack, signal), nodes(signal)]);
    const down = new Set(known.filter((n) => n.Status?.State === 'down').map((n) => n.ID));
    const counts = new Map<string, number>();
    for (const t of tasks) if (t.Status.State === 'running' && !down.has(t.NodeID ?? '')) counts.set(t.ServiceID, (counts.get(t.ServiceID) ?? 0) + 1);
    return counts;
  }
}

/**
 * Tasks as `docker service ps` / `docker stack ps` print them: the node by its name, else its
 * hostname, else its ID (a node that left); together by service and slot, the newest first.
 */
function asCliTasks(stack: StackNaming, tasks: readonly ApiTask[], serviceName: (id: string) => string, known: readonly ApiNode[]): Task[] {
  const nodeNames = new Map(known.map((n) => [n.ID, n.Spec?.Name || n.Description?.Hostname || n.ID]));
  return tasks
    .map((t) => ({
      // `<service>.<slot>`, or `<service>.<node ID>` for a global service's task: the CLI's order.
      key: [serviceName(t.ServiceID), t.Slot || 0, t.Slot ? '' : (t.NodeID ?? '')] as const,
      created: Date.parse(t.CreatedAt),
      task: {
        id: t.ID,
        agent: stack.agentOf(serviceName(t.ServiceID)),
        node: t.NodeID ? (nodeNames.get(t.NodeID) ?? t.NodeID) : undefined,
        desired: asPrinted(t.DesiredState),
        state: asPrinted(t.Status.State),
        error: t.Status.Err ?? '',
      },
    }))
    .sort((a, b) => compareKeys(a.key, b.key) || b.created - a.created)
    .map(({ task }) => task);
}

function compareKeys(a: readonly [string, number, string], b: readonly [string, number, string]): number {
  const text = (x: string, y: string) => (x < y ? -1 : x > y ? 1 : 0);
  return text(a[0], b[0]) || a[1] - b[1] || text(a[2], b[2]);
}

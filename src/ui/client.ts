import type { EventsReply, PoolEvent, StatusReply } from '../contract/api.js';
import {
  type Connection,
  TIMELINE_MAX_EVENTS,
  TIMELINE_WINDOW_MS,
  agentRows,
  connectionText,
  queueRows,
  recentEvents,
  showsNodes,
  slotSegments,
  slotSummary,
  timelineItems,
} from './view.js';
import { budgetSummary, showsMemory } from '../text/memory.js';

/**
 * The status page's script (bundled into the page by scripts/build-ui.mjs). Read-only: it only
 * GETs `/events/stream`, `/status` and `/events`. The stream is the normal path; while it is down
 * the page polls once a second and tries the stream again every few seconds.
 */
const POLL_MS = 1000;
const STREAM_RETRY_MS = 5000;
const RENDER_MS = 1000;

let status: StatusReply | undefined;
let events: PoolEvent[] = [];
let connection: Connection = 'connecting';
let pollTimer: number | undefined;
let retryTimer: number | undefined;

const byId = <T extends HTMLElement>(id: string): T => {
  const element = document.getElementById(id);
  if (element === null) throw new Error(`status page: #${id} missing`);
  return element as T;
};

function cell(tag: 'td' | 'th', text: string, options: { className?: string; title?: string; hidden?: boolean } = {}): HTMLElement {
  const element = document.createElement(tag);
  element.textContent = text;
  if (tag === 'th') element.setAttribute('scope', 'row');
  if (options.className !== undefined) element.className = options.className;
  if (options.title !== undefined) element.title = options.title;
  if (options.hidden === true) element.hidden = true;
  return element;
}

function row(cells: HTMLElement[], id?: string): HTMLTableRowElement {
  const tr = document.createElement('tr');
  if (id !== undefined) tr.dataset.agent = id;
  tr.append(...cells);
  return tr;
}

function renderSlots(current: StatusReply): void {
  const bar = byId('slot-bar');
  bar.replaceChildren(
    ...slotSegments(current).map((segment) => {
      const span = document.createElement('span');
      span.className = segment.kind;
      span.textContent = `${segment.count} ${segment.kind}`;
      // CSSOM writes are allowed by the page's CSP; style attributes in markup would not be.
      span.style.flexGrow = String(segment.count);
      return span;
    }),
  );
  const summary = slotSummary(current);
  bar.setAttribute('aria-label', summary);
  byId('slot-summary').textContent = summary;
  const memory = budgetSummary(current);
  byId('memory-summary').hidden = memory === undefined;
  byId('memory-summary').textContent = memory ?? '';
}

function renderAgents(current: StatusReply, now: number): void {
  const nodes = showsNodes(current);
  const memory = showsMemory(current);
  byId('agents').querySelector('th[data-column="node"]')?.toggleAttribute('hidden', !nodes);
  byId('agents').querySelector('th[data-column="memory"]')?.toggleAttribute('hidden', !memory);
  const rows = agentRows(current, now).map((agent) =>
    row(
      [
        cell('th', agent.id),
        cell('td', agent.state),
        // Third, so that on a phone the question the page answers most is in view without scrolling.
        cell('td', agent.evictable, { className: agent.protected ? 'evictable protected' : 'evictable' }),
        cell('td', agent.lastActive, { className: 'time', title: agent.lastActiveAt }),
        cell('td', agent.started, { className: 'time', title: agent.startedAt }),
        cell('td', agent.requestedBy),
        cell('td', agent.node, { hidden: !nodes }),
        cell('td', agent.memory, { hidden: !memory }),
      ],
      agent.id,
    ),
  );
  byId('agents').querySelector('tbody')?.replaceChildren(...rows);
  byId('agents-empty').hidden = rows.length > 0;
}

function renderQueue(current: StatusReply, now: number): void {
  const rows = queueRows(current.queue, now).map((entry) =>
    row([cell('th', entry.agent), cell('td', entry.requestedBy), cell('td', entry.waiting), cell('td', entry.deadline), cell('td', entry.waiters)], entry.agent),
  );
  byId('queue').querySelector('tbody')?.replaceChildren(...rows);
  const wrapper = byId('queue').parentElement;
  if (wrapper !== null) wrapper.hidden = rows.length === 0;
  byId('queue-empty').hidden = rows.length > 0;
}

function renderTimeline(now: number): void {
  const items = timelineItems(events, now).map((item) => {
    const li = document.createElement('li');
    li.className = item.type;
    const time = document.createElement('time');
    time.dateTime = item.at;
    time.textContent = item.time;
    li.append(time, ' ', item.text);
    return li;
  });
  byId('timeline').replaceChildren(...items);
  byId('timeline-empty').hidden = items.length > 0;
}

function render(): void {
  const now = Date.now();
  const indicator = byId('connection');
  if (indicator.dataset.connection !== connection) {
    indicator.dataset.connection = connection;
    indicator.textContent = connectionText(connection);
  }
  if (status !== undefined) {
    renderSlots(status);
    renderAgents(status, now);
    renderQueue(status, now);
  }
  renderTimeline(now);
}

function setConnection(next: Connection): void {
  connection = next;
  render();
}

function addEvent(event: PoolEvent): void {
  events = recentEvents([...events, event], Date.now());
}

function openStream(): void {
  clearTimeout(retryTimer);
  const source = new EventSource('/events/stream');
  source.addEventListener('open', () => {
    stopPolling();
    setConnection('live');
  });
  source.addEventListener('history', (message) => {
    events = recentEvents(JSON.parse((message as MessageEvent<string>).data) as PoolEvent[], Date.now());
    render();
  });
  source.addEventListener('pool', (message) => {
    addEvent(JSON.parse((message as MessageEvent<string>).data) as PoolEvent);
    render();
  });
  source.addEventListener('status', (message) => {
    status = JSON.parse((message as MessageEvent<string>).data) as StatusReply;
    render();
  });
  source.addEventListener('error', () => {
    // CONNECTING: the browser retries by itself; CLOSED (the daemon refused, e.g. too many streams): we retry later.
    if (source.readyState === EventSource.CLOSED) retryTimer = window.setTimeout(openStream, STREAM_RETRY_MS);
    if (connection === 'live') setConnection('polling');
    startPolling();
  });
}

async function getJson<T>(path: string): Promise<T> {
  const response = await fetch(path, { headers: { Accept: 'application/json' }, cache: 'no-store' });
  if (!response.ok) throw new Error(`GET ${path}: HTTP ${response.status}`);
  return (await response.json()) as T;
}

async function poll(): Promise<void> {
  try {
    const since = new Date(Date.now() - TIMELINE_WINDOW_MS).toISOString().replace(/\.\d+Z$/, 'Z');
    const [nextStatus, log] = await Promise.all([
      getJson<StatusReply>('/status'),
      getJson<EventsReply>(`/events?since=${encodeURIComponent(since)}&limit=${TIMELINE_MAX_EVENTS}`),
    ]);
    // The stream may have come back while this poll was out; its data is newer.
    if (connection === 'live') return;
    status = nextStatus;
    events = recentEvents(log.events, Date.now());
    setConnection('polling');
  } catch {
    if (connection !== 'live') setConnection('offline');
  }
}

function startPolling(): void {
  if (pollTimer !== undefined) return;
  void poll();
  pollTimer = window.setInterval(() => void poll(), POLL_MS);
}

function stopPolling(): void {
  clearInterval(pollTimer);
  pollTimer = undefined;
}

// Relative times ("12s ago", "gives up in 40s") move on between updates.
window.setInterval(render, RENDER_MS);
openStream();
render();

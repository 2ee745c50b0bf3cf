import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ComposeProject, agentService, createComposeProject, requireDocker } from '../support/docker.js';
import { eventually } from '../support/daemon.js';
import { type SseConnection, openSse } from '../support/sse.js';
import { http } from '../support/http.js';
import { type SpawnedDaemon, daemonEnv, spawnDaemon } from '../support/spawn-daemon.js';
import { artifactPath, launchChromium, requireChromium } from '../support/browser.js';
import { LIVE_LIMITS } from '../../src/bridge/live.js';

const ready = (await requireDocker()) && (await requireChromium());
const TOKEN = 'browser-suite-token';
/** The bound: a change shows on the page without reload within 2 s. */
const LIVE_MS = 2000;

/** A row of the agents table as a reader sees it: the visible cells' text. */
const agentRows = async (page: Page) => (await page.locator('#agents tbody tr').allInnerTexts()).map((row) => row.split('\t').map((cell) => cell.trim()));
const rowOf = async (page: Page, agent: string) => (await agentRows(page)).find((cells) => cells[0] === agent);
const timeline = (page: Page) => page.locator('#timeline li').allInnerTexts();
const connection = (page: Page) => page.locator('#connection').innerText();

// The daemon is the built one (`node dist/openclaw-pool.mjs`), so the suite also shows that
// `npm run build` ships the page where the installed daemon looks for it.
describe.skipIf(!ready)('the status page in headless Chromium, against a real daemon', () => {
  let project: ComposeProject;
  let scratch: string;
  let daemon: SpawnedDaemon;
  let env: Record<string, string>;
  let url: string;
  let browser: Awaited<ReturnType<typeof launchChromium>>;
  let page: Page;
  let navigations = 0;
  const requests: { method: string; url: string; authorization?: string }[] = [];
  const consoleErrors: string[] = [];

  const post = async (path: string, body: unknown) => (await http(url, 'POST', path, body, { headers: { Authorization: `Bearer ${TOKEN}` } })).body;

  beforeAll(async () => {
    project = await createComposeProject(Object.fromEntries(['ceo', 'cto', 'cfo', 'designer', 'qa', 'gateway'].map((name) => [name, agentService()])));
    scratch = await mkdtemp(join(tmpdir(), 'pool-'));
    await mkdir(join(scratch, 'pool'));
    await writeFile(join(scratch, 'pool', 'autostart.txt'), 'ceo\ncto\n');
    env = daemonEnv(project, scratch, {
      MAX_AGENTS: '3',
      PINNED_AGENTS: 'ceo',
      EVICT_GRACE_SECONDS: '2',
      SYNC_INTERVAL: '3600',
      STOP_TIMEOUT_SECONDS: '3',
      POOL_TOKEN: TOKEN,
    });
    daemon = spawnDaemon(project.dir, env);
    url = await daemon.ready();
    await eventually(async () => {
      const status = (await http(url, 'GET', '/status')).body as { running: { id: string; state: string }[] };
      expect(status.running.filter((a) => a.state === 'running').map((a) => a.id)).toEqual(['ceo', 'cto']);
    }, 30_000);

    browser = await launchChromium({ width: 1280, height: 800 });
    page = browser.context.pages()[0] ?? (await browser.context.newPage());
    page.on('framenavigated', (frame) => {
      if (frame === page.mainFrame()) navigations += 1;
    });
    page.on('request', (request) => requests.push({ method: request.method(), url: request.url(), authorization: request.headers().authorization }));
    page.on('console', (message) => {
      if (message.type() === 'error') consoleErrors.push(message.text());
    });
    page.on('pageerror', (error) => consoleErrors.push(error.message));
  });

  afterAll(async () => {
    await browser?.close();
    await daemon?.kill();
    await project?.remove();
    if (scratch !== undefined) await rm(scratch, { recursive: true, force: true });
  });

  it('shows the running agents in a semantic table: who is pinned, who is in grace, who is evictable now', async () => {
    await page.goto(`${url}/`);
    await eventually(async () => expect(await connection(page)).toBe('Live: updates as they happen'), 10_000);
    const table = page.getByRole('table', { name: /Pooled agents/ });
    expect(await table.getByRole('columnheader').allInnerTexts()).toEqual(['Agent', 'State', 'Evictable', 'Last active', 'Started', 'Requested by']);
    // The stream opens before its first status arrives.
    await eventually(async () => expect(await table.getByRole('rowheader').allInnerTexts()).toEqual(['ceo', 'cto']), 5000);
    const relative = expect.stringMatching(/^just now$|^\d+[smhd] ago$/);
    expect(await rowOf(page, 'ceo')).toEqual(['ceo', 'running', 'protected: pinned', relative, relative, 'autostart']);
    // cto's 2 s grace runs out with no event: the page shows it without being asked.
    await eventually(async () => expect((await rowOf(page, 'cto'))?.[2]).toBe('evictable now'), 10_000);
    expect(await page.locator('#slot-summary').innerText()).toBe('3 slots: 2 running, 0 starting, 0 stopping, 1 free');
    expect(await page.locator('#slot-bar').getAttribute('aria-label')).toBe('3 slots: 2 running, 0 starting, 0 stopping, 1 free');
    expect(await timeline(page)).toEqual([expect.stringMatching(/^\d\d:\d\d:\d\d started cto \(by autostart\)$/), expect.stringMatching(/^\d\d:\d\d:\d\d started ceo \(by autostart\)$/)]);
    expect(await page.locator('#queue-empty').innerText()).toBe('Nobody is waiting.');
  });

  it('shows an agent requested through the bridge within 2 s, without reloading', async () => {
    await page.evaluate(() => Object.assign(globalThis, { sameDocument: true }));
    expect(await post('/request', { agent: 'cfo', requested_by: 'ceo' })).toEqual({ status: 'started', agent: 'cfo' });
    await eventually(async () => {
      const row = await rowOf(page, 'cfo');
      expect(row?.slice(0, 2)).toEqual(['cfo', 'running']);
      expect(row?.[5]).toBe('ceo');
    }, LIVE_MS);
    // The test calls the bridge from loopback: the host, whose requested_by is its claim (via host).
    expect(await timeline(page)).toContainEqual(expect.stringMatching(/ started cfo \(by ceo via host\)$/));

    // A busy hold comes with a heartbeat, not an event: the page shows it all the same.
    expect(await post('/heartbeat', { agent: 'cfo', busy_seconds: 600 })).toEqual({ status: 'ok' });
    await eventually(async () => expect((await rowOf(page, 'cfo'))?.[2]).toMatch(/^protected: busy hold until \d\d:\d\d:\d\d$/), LIVE_MS);
    expect(await page.evaluate(() => (globalThis as { sameDocument?: boolean }).sameDocument)).toBe(true);
    expect(navigations).toBe(1);
  });

  it('shows an eviction in the timeline within 2 s: who was evicted, for whom, by whom', async () => {
    // ceo is pinned and cfo on a busy hold: cto is the one to go.
    const reply = await post('/request', { agent: 'designer', requested_by: 'ops' });
    expect(reply).toEqual({ status: 'started', agent: 'designer', evicted: 'cto' });
    await eventually(async () => {
      expect((await timeline(page))[0]).toMatch(/ started designer \(by ops via host; evicted cto\)$/);
      expect(await timeline(page)).toContainEqual(expect.stringMatching(/^\d\d:\d\d:\d\d evicted cto for designer \(by ops via host; .+\)$/));
      expect((await agentRows(page)).map((cells) => cells[0])).toEqual(['ceo', 'cfo', 'designer']);
    }, LIVE_MS);
    expect(await rowOf(page, 'designer')).toEqual(['designer', 'running', expect.stringMatching(/^protected: grace until \d\d:\d\d:\d\d$|^evictable now$/), 'just now', 'just now', 'ops']);
    expect(navigations).toBe(1);
  });

  let queued: Promise<Record<string, unknown>> | undefined;

  it('shows a request waiting for a slot in the wait queue within 2 s', async () => {
    // Every agent protected (ceo pinned, cfo and designer on busy holds): a request for qa has to wait.
    expect(await post('/heartbeat', { agent: 'designer', busy_seconds: 600 })).toEqual({ status: 'ok' });
    queued = post('/request', { agent: 'qa', requested_by: 'cfo', wait_seconds: 60 });
    await eventually(async () => {
      expect(await page.getByRole('table', { name: /Requests waiting/ }).locator('tbody tr').allInnerTexts()).toEqual([
        expect.stringMatching(/^qa\tcfo\tsince (just now|\d+s ago)\tgives up in \d+s\t1$/),
      ]);
      expect(await page.locator('#queue-empty').isHidden()).toBe(true);
    }, LIVE_MS);
  });

  it('keeps screenshots at 1280×800 and 375×800, and fits a 375 px wide screen', async () => {
    await page.screenshot({ path: await artifactPath('status-page-1280x800.png') });
    await page.setViewportSize({ width: 375, height: 800 });
    const width = Number(await page.evaluate('document.documentElement.scrollWidth'));
    expect(width).toBeLessThanOrEqual(375);
    // The table may scroll inside its region; its agent names stay readable at the left.
    expect(await page.getByRole('rowheader', { name: 'designer' }).isVisible()).toBe(true);
    await page.screenshot({ path: await artifactPath('status-page-375x800.png') });
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  it('empties the queue when the waiting request gets its slot', async () => {
    expect(await post('/release', { agent: 'designer', requested_by: 'ops' })).toEqual({ status: 'stopped', agent: 'designer' });
    expect(await queued).toMatchObject({ status: 'started', agent: 'qa', waited_seconds: expect.any(Number) });
    await eventually(async () => {
      expect(await page.locator('#queue-empty').innerText()).toBe('Nobody is waiting.');
      expect((await agentRows(page)).map((cells) => cells[0])).toEqual(['ceo', 'cfo', 'qa']);
      expect(await timeline(page)).toContainEqual(expect.stringMatching(/ waited qa \(by cfo via host; waited [\d.]+ s for a slot\)$/));
    }, LIVE_MS);
  });

  it('is read-only and asks for nothing secret: GETs to its own origin only, no token, no errors', async () => {
    const origin = new URL(url).origin;
    expect(requests.length).toBeGreaterThan(0);
    for (const request of requests) {
      expect(request.method).toBe('GET');
      expect(new URL(request.url).origin).toBe(origin);
      expect(['/', '/events/stream', '/status', '/events']).toContain(new URL(request.url).pathname);
      expect(request.authorization).toBeUndefined();
    }
    expect(await page.content()).not.toContain(TOKEN);
    // A CSP violation (a script or style the policy blocks) would be logged here.
    expect(consoleErrors).toEqual([]);
  });

  it('polls /status every second when it cannot have a stream, and goes live again when it can', async () => {
    // The page holds one stream; fill the rest so a second page is refused one.
    const held: SseConnection[] = [];
    try {
      for (let i = 1; i < LIVE_LIMITS.maxStreams; i++) held.push(await openSse(`${url}/events/stream`));
      expect(held.every((s) => s.status === 200)).toBe(true);
      const second = await browser.context.newPage();
      await second.goto(`${url}/ui`);
      await eventually(async () => expect(await connection(second)).toBe('Live stream unavailable: polling every second'), 10_000);
      expect(await post('/release', { agent: 'qa', requested_by: 'ops' })).toEqual({ status: 'stopped', agent: 'qa' });
      await eventually(async () => {
        expect((await agentRows(second)).map((cells) => cells[0])).toEqual(['ceo', 'cfo']);
        expect((await timeline(second))[0]).toMatch(/ released qa \(by ops via host\)$/);
      }, LIVE_MS);

      for (const s of held.splice(0)) s.close();
      // It tries the stream again every 5 s.
      await eventually(async () => expect(await connection(second)).toBe('Live: updates as they happen'), 10_000);
      await second.close();
    } finally {
      for (const s of held) s.close();
    }
  });

  it('says when the daemon is gone, and picks up by itself when it is back', async () => {
    await daemon.kill();
    await eventually(async () => expect(await connection(page)).toBe('Daemon unreachable: retrying every second'), 10_000);
    // Same port, so the page's EventSource finds it again. The agents kept running; autostart
    // fills the free slot with cto again, and the page shows that too.
    daemon = spawnDaemon(project.dir, { ...env, POOL_PORT: new URL(url).port });
    await daemon.ready();
    await eventually(async () => expect(await connection(page)).toBe('Live: updates as they happen'), 15_000);
    await eventually(async () => expect(await agentRows(page)).toEqual([expect.arrayContaining(['ceo']), expect.arrayContaining(['cfo']), expect.arrayContaining(['cto', 'running', 'autostart'])]), 15_000);
    expect(navigations).toBe(1);
  });
});

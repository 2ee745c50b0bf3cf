import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MAX_EVENTS_LIMIT, StatusReply } from '../../src/contract/index.js';
import { POOLCTL, poolctl } from '../support/cli.js';
import { requireDocker } from '../support/docker.js';
import { type TestDaemon, eventually, startTestDaemon } from '../support/daemon.js';

const docker = await requireDocker();

describe('poolctl without a daemon', () => {
  it('exits 3 and says how to start the daemon when nothing listens on the socket', async () => {
    const run = await poolctl(['status', '--socket', join(tmpdir(), 'no-daemon.sock')]);
    expect(run.code).toBe(3);
    expect(run.stderr).toContain('cannot reach the openclaw-pool daemon');
    expect(run.stderr).toContain('systemctl start openclaw-pool');
  });

  it('honours POOL_SOCKET', async () => {
    const run = await poolctl(['who'], { env: { POOL_SOCKET: '/nonexistent/pool.sock' } });
    expect(run.code).toBe(3);
    expect(run.stderr).toContain('/nonexistent/pool.sock');
  });

  it.each([
    { args: ['start'], what: 'a missing agent' },
    { args: ['start', 'bad/name'], what: 'an invalid agent name' },
    { args: ['frobnicate'], what: 'an unknown command' },
    { args: ['status', '--bogus'], what: 'an unknown option' },
  ])('exits 2 on $what', async ({ args }) => {
    const run = await poolctl([...args, '--socket', '/nonexistent.sock']);
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
  });

  it('prints help with examples for each command', async () => {
    const run = await poolctl(['start', '--help']);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('poolctl start cfo');
    expect(run.stdout).not.toMatch(/\x1b\[/);
  });
});

describe.skipIf(!docker)('poolctl against a real daemon', () => {
  let p: TestDaemon;
  const ctl = (...args: string[]) => poolctl([...args, '--socket', p.socketPath]);
  beforeAll(async () => {
    p = await startTestDaemon({ env: { MAX_AGENTS: '2' } });
  });
  afterAll(async () => {
    await p?.stop();
  });
  afterEach(async () => {
    for (const agent of await p.runningInDocker()) await p.client.release(agent);
  });

  it('starts an agent, then says it is already running', async () => {
    const first = await ctl('start', 'cfo');
    expect(first).toMatchObject({ code: 0, stdout: 'cfo started\n' });
    expect(first.stderr).toContain('starting cfo');
    expect(await p.runningInDocker()).toEqual(['cfo']);
    expect(await ctl('start', 'cfo')).toMatchObject({ code: 0, stdout: 'cfo is already running\n' });
  });

  it('shows the eviction as it happens when the pool is full', async () => {
    await p.client.request('ceo');
    await p.client.request('cto');
    p.advance(120);
    await p.client.heartbeat('cto');
    const run = await ctl('start', 'qa', '--by', 'ceo');
    expect(run.code).toBe(0);
    expect(run.stdout).toBe('qa started (evicted ceo)\n');
    expect(run.stderr.split('\n').filter(Boolean)).toEqual(['stopping ceo to make room for qa', 'stopped ceo', 'starting qa']);
  });

  it('exits 1 with the reason when the pool is full, saying what would have to go, and prints the bridge reply with --json', async () => {
    await p.client.request('ceo');
    await p.client.request('cto');
    const run = await ctl('start', 'qa');
    expect(run).toMatchObject({ code: 1, stdout: '' });
    // Without a budget, only the slot is short: the least recently active agent would have to go.
    expect(run.stderr.trim().split('\n').map((line) => line.trim())).toEqual([
      'poolctl: all agents recently active, try again later',
      'short of a slot (2 of 2 taken)',
      'what would have to go, least recently active first:',
      'AGENT  KEPT BY',
      // poolctl counts the time left on its own clock; this daemon's is a test clock that an earlier test moved on.
      expect.stringMatching(/^ceo    grace, \d+[sm] left$/),
    ]);
    const json = await ctl('start', 'qa', '--json');
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout)).toEqual({ status: 'pool_full', error: 'all agents recently active, try again later' });
  });

  it('exits 1 for an unknown agent and for an infrastructure service', async () => {
    const unknown = await ctl('start', 'janitor');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('known agents: ceo, cfo');
    expect((await ctl('stop', 'gateway')).code).toBe(1);
  });

  it('prints status as a table with relative times and the slot summary, or as JSON', async () => {
    await p.client.request('cfo', { requestedBy: 'ceo' });
    const run = await ctl('status');
    expect(run.code).toBe(0);
    const lines = run.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^AGENT\s+STATE\s+STARTED\s+LAST ACTIVE\s+REQUESTED BY\s+EVICTABLE$/);
    expect(lines[1]).toMatch(/^cfo\s+running\s+just now\s+just now\s+ceo\s+no \(grace, \d+[sm] left\)$/);
    expect(lines[2]).toBe('2 slots: 1 used, 1 free');
    const json = await ctl('status', '--json');
    expect(StatusReply.parse(JSON.parse(json.stdout)).running.map((a) => a.id)).toEqual(['cfo']);
  });

  it('lists running agents with who, checks health, and stops an agent', async () => {
    await p.client.request('cfo');
    expect(await ctl('who')).toMatchObject({ code: 0, stdout: 'cfo\n' });
    expect(JSON.parse((await ctl('who', '--json')).stdout)).toEqual({ agents: ['cfo'] });
    expect((await ctl('health')).stdout).toMatch(/^ok: docker ok/);
    expect(await ctl('stop', 'cfo')).toMatchObject({ code: 0, stdout: 'cfo stopped\n' });
    expect(await ctl('stop', 'cfo')).toMatchObject({ code: 0, stdout: 'cfo was not running\n' });
    expect(await p.runningInDocker()).toEqual([]);
  });

  it('follows events with watch, one line each when piped, and ends cleanly on SIGTERM', async () => {
    const child = spawn(process.execPath, [POOLCTL, 'watch', '--socket', p.socketPath], { env: { ...process.env, NO_COLOR: '1' } });
    let out = '';
    child.stdout.on('data', (c) => (out += c));
    // Once a probe's events show up, the subscription is live and nothing after it can be missed.
    await eventually(async () => {
      await p.client.request('qa', { requestedBy: 'probe' });
      await p.client.release('qa', { requestedBy: 'probe' });
      expect(out).toMatch(/released qa \(by probe\)/);
    }, 15_000, 300);
    await p.client.request('designer', { requestedBy: 'ceo' });
    await eventually(() => expect(out).toMatch(/started designer \(by ceo\)/));
    expect(out).toMatch(/starting designer \(by ceo\)/);
    child.kill('SIGTERM');
    expect(await new Promise((resolve) => child.once('exit', resolve))).toBe(0);
  });

  it('start --wait queues on a full pool and starts once a slot is free; a bad --wait is a usage error', async () => {
    await p.client.request('ceo');
    await p.client.request('cto');
    const child = spawn(process.execPath, [POOLCTL, 'start', 'qa', '--wait', '30s', '--socket', p.socketPath], { env: { ...process.env, NO_COLOR: '1' } });
    let out = '';
    let err = '';
    child.stdout.on('data', (c) => (out += c));
    child.stderr.on('data', (c) => (err += c));
    await eventually(() => expect(err).toMatch(/pool full: waiting for a slot \(up to 30 s, place 1 of 1 in line\)/));
    await p.client.release('ceo');
    expect(await new Promise((resolve) => child.once('exit', resolve))).toBe(0);
    expect(out).toMatch(/^qa started after waiting \d+(\.\d)? s\n$/);
    expect(await ctl('start', 'qa', '--wait', 'forever')).toMatchObject({ code: 2, stderr: expect.stringContaining('--wait "forever"') });
    expect(await ctl('start', 'qa', '--wait', '2h')).toMatchObject({ code: 2, stderr: expect.stringContaining('at most 1h') });
  });

  it('answers "why was my agent stopped?" with events --agent --since, as lines or JSON', async () => {
    await p.client.request('cfo', { requestedBy: 'ceo' });
    await p.client.request('qa', { requestedBy: 'ceo' });
    p.advance(120);
    await p.client.request('legal', { requestedBy: 'marketing' });
    const run = await ctl('events', '--agent', 'cfo', '--since', '1h');
    expect(run.code).toBe(0);
    expect(run.stdout.trim().split('\n').at(-1)).toMatch(/^\S+Z evicted cfo for legal \(by marketing; least recently active\)$/);
    const json = (await ctl('events', '--agent', 'legal', '--json')).stdout.trim().split('\n').map((line) => JSON.parse(line));
    expect(json.map((e) => [e.type, e.agent])).toEqual([['evicted', 'cfo'], ['started', 'legal']]);
    expect(await ctl('events', '--since', 'last week')).toMatchObject({ code: 2, stderr: expect.stringContaining('--since "last week"') });
    expect(await ctl('events', '--limit', '0')).toMatchObject({ code: 2 });
  });

  it('takes a --since or --limit that names no time or count as a usage error with a sentence, not the daemon\'s validation JSON', async () => {
    const beforeEpoch = '--since "99999999d": reaches back before 1970; give a shorter duration or an ISO 8601 time';
    // 99999999d is a year the daemon refuses; 999999999d is past what a Date can hold ("Invalid time value").
    for (const since of ['99999999d', '999999999d']) {
      expect(await ctl('events', '--since', since)).toEqual({ code: 2, stdout: '', stderr: `poolctl: ${beforeEpoch.replace('99999999d', since)}\n` });
    }
    expect(await ctl('events', '--limit', '0x10')).toEqual({ code: 2, stdout: '', stderr: `poolctl: --limit "0x10": expected a whole number from 1 to ${MAX_EVENTS_LIMIT}\n` });
    expect(await ctl('start', 'qa', '--wait', '99999999d')).toMatchObject({ code: 2, stdout: '', stderr: expect.stringContaining('at most 1h') });
  });

  it('follows the log with events --follow: history first, then new events as they happen, none twice', async () => {
    await p.client.request('marketing', { requestedBy: 'ceo' });
    const child = spawn(process.execPath, [POOLCTL, 'events', '--follow', '--agent', 'marketing', '--socket', p.socketPath], { env: { ...process.env, NO_COLOR: '1' } });
    let out = '';
    child.stdout.on('data', (c) => (out += c));
    await eventually(() => expect(out).toMatch(/started marketing \(by ceo\)/));
    await p.client.release('marketing', { requestedBy: 'ceo' });
    await eventually(() => expect(out).toMatch(/released marketing \(by ceo\)/));
    await p.client.request('designer', { requestedBy: 'ceo' });
    child.kill('SIGTERM');
    expect(await new Promise((resolve) => child.once('exit', resolve))).toBe(0);
    expect(out.trim().split('\n').map((line) => line.split(' ').slice(1, 3).join(' '))).toEqual(['started marketing', 'released marketing']);
  });

  it('refuses a user outside the socket group with exit 3 and says which group to join', async () => {
    const run = await poolctl(['status', '--socket', p.socketPath], { user: 'nobody' });
    expect(run.code).toBe(3);
    expect(run.stderr).toContain('permission denied');
    expect(run.stderr).toContain('join the socket');
  });
});

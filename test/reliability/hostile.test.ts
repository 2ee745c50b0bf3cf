/**
 * Hostile input against the REAL bridge of a real daemon (real compose project on real dockerd):
 * every reply is the documented status code with a JSON `{"error": ...}` body (or the documented
 * SPEC reply), an invalid name never reaches Docker (DOCKER_BIN is a recording shim), and the
 * daemon keeps answering `GET /health` on other connections during and after each attack.
 */
import { chmod, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { type Socket, connect } from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ErrorReply,
  HeartbeatInput,
  HeartbeatReply,
  ReleaseInput,
  ReleaseReply,
  RequestInput,
  RequestReply,
  StatusReply,
  UnknownAgentReply,
  loadConfig,
} from '../../src/contract/index.js';
import { createDaemon } from '../../src/daemon/daemon.js';
import { agentService, createComposeProject, requireDocker } from '../support/docker.js';
import { type TestDaemon, eventually, startTestDaemon } from '../support/daemon.js';
import { rawTcp } from '../support/http.js';
import { prng } from '../support/prng.js';

const docker = await requireDocker();

const MAX_BODY = 1024;
const POSTS = ['/request', '/release', '/heartbeat'] as const;

// ---------------------------------------------------------------------------------------------
// helpers

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  body: unknown;
}

/** One request on a connection of its own (no pooling), so "another connection" is literal. */
function fresh(url: string, method: string, path: string, body?: string, headers: Record<string, string> = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${url}${path}`, { method, agent: false, headers, timeout: 10_000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => {
        let parsed: unknown;
        try {
          parsed = JSON.parse(text);
        } catch {
          parsed = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, body: parsed });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no reply within 10 s`)));
    req.on('error', reject);
    req.end(body);
  });
}

async function expectHealthy(url: string): Promise<void> {
  const reply = await fresh(url, 'GET', '/health');
  expect(reply.status).toBe(200);
  expect(reply.body).toMatchObject({ status: 'ok' });
}

/** The JSON body of the first response in a raw reply. */
function firstJson(reply: string): unknown {
  const head = reply.indexOf('\r\n\r\n');
  const length = /content-length:\s*(\d+)/i.exec(reply.slice(0, head));
  const body = reply.slice(head + 4, head + 4 + Number(length?.[1] ?? 0));
  return JSON.parse(body);
}

function expectErrorBody(reply: Reply, status: number): void {
  expect(reply.status, reply.text).toBe(status);
  expect(reply.headers['content-type']).toBe('application/json');
  expect(ErrorReply.strict().parse(reply.body).error).not.toBe('');
}

/** A recording DOCKER_BIN: one line per invocation (its argv), then the real docker. */
async function createDockerShim(): Promise<{ bin: string; dir: string; lines(): Promise<string[]> }> {
  const dir = await mkdtemp(join(tmpdir(), 'pool-shim-'));
  const log = join(dir, 'docker.log');
  const bin = join(dir, 'docker');
  await writeFile(log, '');
  await writeFile(bin, `#!/bin/sh\nprintf '%s\\n' "$*" >> '${log}'\nexec docker "$@"\n`);
  await chmod(bin, 0o755);
  return { bin, dir, lines: async () => (await readFile(log, 'utf8')).split('\n').filter(Boolean) };
}

/** Waits until the shim log has not grown for `quietMs` (background reconciles after Docker events). */
async function quiesce(lines: () => Promise<string[]>, quietMs = 1000): Promise<number> {
  let count = (await lines()).length;
  let stableSince = Date.now();
  // Still growing after 15 s: the count so far, for the caller's checks to judge.
  await eventually(async () => {
    const now = (await lines()).length;
    if (now !== count) {
      count = now;
      stableSince = Date.now();
    }
    if (Date.now() - stableSince < quietMs) throw new Error('the shim log is still growing');
  }, 15_000, 100).catch(() => {});
  return count;
}


const openFds = async () => (await readdir('/proc/self/fd')).length;

// ---------------------------------------------------------------------------------------------
// hostile input on a daemon whose DOCKER_BIN records every call

/** Names the bridge must refuse with 400 before anything reaches Docker. */
const INVALID_NAMES: readonly string[] = [
  'a;rm -rf /',
  ';rm -rf /',
  '$(id)',
  'a$(id)',
  '`id`',
  'a`id`',
  'a|cat /etc/passwd',
  'a&b',
  'a&&b',
  'a\nb',
  'ceo\n',
  'ceo\r\nX-Injected: 1',
  'ceo\u0000',
  '../../etc/passwd',
  'ceo/../cto',
  '..',
  '.hidden',
  '-rf',
  '--help',
  '',
  ' ',
  ' ceo',
  'ceo ',
  'ce o',
  'ceo>out',
  'ceo<in',
  "ceo'",
  'ceo"',
  'ceo*',
  '~root',
  'ceo%00',
  'C:\\Windows',
  'é',
  'agent-ü',
  '日本語',
  '💥',
  '\u202eceo',
  'ceo\u200b',
  'a'.repeat(256),
  'a'.repeat(500),
];

/** Valid names that are not services of the project: 200 unknown_agent, never `compose up`. */
const UNKNOWN_VALID_NAMES: readonly string[] = ['nobody', 'CEO', 'ceo.backup', 'ceo_', '0day', 'a'.repeat(255), 'x'];

describe.skipIf(!docker)('hostile input on the HTTP bridge (real daemon, recording DOCKER_BIN)', () => {
  let p: TestDaemon;
  let shim: Awaited<ReturnType<typeof createDockerShim>>;
  let inputsTried = 0;

  /** POST through a fresh connection, counting the hostile inputs. */
  const post = (path: string, body: string, headers: Record<string, string> = {}) => {
    inputsTried++;
    return fresh(p.url, 'POST', path, body, { 'Content-Type': 'application/json', ...headers });
  };

  beforeAll(async () => {
    shim = await createDockerShim();
    p = await startTestDaemon({
      env: { MAX_BODY_SIZE: String(MAX_BODY), DOCKER_BIN: shim.bin },
      agents: ['ceo', 'cto'],
      infra: ['gateway'],
    });
    expect((await p.http('POST', '/request', { agent: 'ceo', requested_by: 'autostart' })).body).toMatchObject({ status: 'started' });
    // The shim is really in the path: the start above went through it.
    expect((await shim.lines()).filter((line) => line.startsWith('compose ') && / up .*ceo/.test(line))).toHaveLength(1);
  });
  afterAll(async () => {
    console.log(`hostile inputs tried (excluding the generator): ${inputsTried}`);
    await p?.stop();
    if (shim) await rm(shim.dir, { recursive: true, force: true });
  });

  it('refuses malformed JSON and JSON of the wrong type with 400 {error}, without calling Docker', async () => {
    const malformed = ['{"agent":', '{agent:"ceo"}', "{'agent':'ceo'}", '{"agent":"ceo",}', '{"agent":"ceo"}}', 'nul', '\u0000', '\uFEFF{"agent":"ceo"}', '{"agent":"ce\\o"}', '{"agent":"\\ud800"x}', '   ', ''];
    const wrongType = ['[]', '["ceo"]', '[{"agent":"ceo"}]', '"ceo"', '42', '-1e999', 'null', 'true', 'false'];
    const badAgent = [
      '{"agent":null}',
      '{"agent":42}',
      '{"agent":true}',
      '{"agent":["ceo"]}',
      '{"agent":[]}',
      '{"agent":{"name":"ceo"}}',
      '{"agent":{"$ne":null}}',
      '{"agent":{"toString":"ceo"}}',
      '{"agent":[["ceo"]]}',
    ];
    const missing = ['{}', '{"requested_by":"ceo"}', '{"Agent":"ceo"}', '{"agent ":"ceo"}', '{"__proto__":{"agent":"ceo"}}', '{"constructor":{"prototype":{"agent":"ceo"}}}'];
    const requestOnly = [
      '{"agent":"ceo","requested_by":["x"]}',
      '{"agent":"ceo","requested_by":{"a":1}}',
      '{"agent":"ceo","requested_by":null}',
      '{"agent":"ceo","requested_by":7}',
      '{"agent":"ceo","wait_seconds":"5"}',
      '{"agent":"ceo","wait_seconds":[5]}',
      '{"agent":"ceo","wait_seconds":{"s":5}}',
      '{"agent":"ceo","wait_seconds":-1}',
      '{"agent":"ceo","wait_seconds":1e999}',
      '{"agent":"ceo","wait_seconds":3601}',
      '{"agent":"ceo","wait_seconds":null}',
    ];
    const before = await quiesce(shim.lines);
    const statusBefore = StatusReply.parse((await p.http('GET', '/status')).body);
    for (const path of POSTS) {
      const bodies = [...malformed, ...wrongType, ...badAgent, ...missing, ...(path === '/request' ? requestOnly : [])];
      for (const body of bodies) {
        const reply = await post(path, body);
        expectErrorBody(reply, 400);
      }
      await expectHealthy(p.url);
    }
    expect(await post('/request', '{"requested_by":"ceo"}')).toMatchObject({ status: 400, body: { error: 'agent field required' } });
    expect(await post('/heartbeat', '{"agent":{"$ne":null}}')).toMatchObject({ status: 400, body: { error: 'agent must be a string' } });
    expect(await post('/release', '"ceo"')).toMatchObject({ status: 400, body: { error: 'request body must be a JSON object' } });
    expect((await shim.lines()).slice(before)).toEqual([]);
    const statusAfter = StatusReply.parse((await p.http('GET', '/status')).body);
    expect(statusAfter.running.map((a) => a.id)).toEqual(statusBefore.running.map((a) => a.id));
    expect(await p.runningInDocker()).toEqual(['ceo']);
  });

  it('ignores extra fields: still a valid request', async () => {
    const extra = { extra: 1, nested: { a: [1, { b: null }] }, list: [[], {}], agent_id: 'cto', AGENT: 'cto' };
    expect(RequestReply.parse((await post('/request', JSON.stringify({ agent: 'ceo', requested_by: 'cto', ...extra }))).body)).toEqual({
      status: 'already_running',
      agent: 'ceo',
    });
    // /heartbeat has no requested_by or wait_seconds: there they are extra fields, of any type.
    const hb = await post('/heartbeat', JSON.stringify({ agent: 'ceo', requested_by: ['x'], wait_seconds: 'soon', ...extra }));
    expect(hb).toMatchObject({ status: 200, body: { status: 'ok' } });
    const release = await post('/release', JSON.stringify({ agent: 'nobody', wait_seconds: { x: 1 }, ...extra }));
    expect(release.status).toBe(200);
    expect(UnknownAgentReply.parse(release.body).agent).toBe('nobody');
    expect(await p.runningInDocker()).toEqual(['ceo']);
  });

  it('refuses names with shell metacharacters, traversal, unicode or over 255 characters: 400 and no docker process', async () => {
    const before = await quiesce(shim.lines);
    for (const name of INVALID_NAMES) {
      const bodies: [string, string][] = [
        ['/request', JSON.stringify({ agent: name })],
        ['/request', JSON.stringify({ agent: 'ceo', requested_by: name })],
        ['/release', JSON.stringify({ agent: name })],
        ['/release', JSON.stringify({ agent: 'ceo', requested_by: name })],
        ['/heartbeat', JSON.stringify({ agent: name })],
      ];
      for (const [path, body] of bodies) {
        const reply = await post(path, body);
        expectErrorBody(reply, 400);
        expect((reply.body as { error: string }).error, `${path} ${body}`).toMatch(/invalid (agent name|requested_by)/);
      }
    }
    await expectHealthy(p.url);
    // Nothing reached Docker: not one process was spawned for all of them.
    expect((await shim.lines()).slice(before)).toEqual([]);
    expect(await p.runningInDocker()).toEqual(['ceo']);
    expect(await readdir(join(p.poolDir, 'activity')).catch(() => [])).not.toContain('passwd');
  });

  it('answers 200 unknown_agent to valid names that are not services, with no `compose up`', async () => {
    const before = await quiesce(shim.lines);
    for (const name of UNKNOWN_VALID_NAMES) {
      const reply = await post('/request', JSON.stringify({ agent: name, requested_by: 'ceo' }));
      expect(reply.status).toBe(200);
      const parsed = UnknownAgentReply.strict().parse(reply.body);
      expect(parsed.agent).toBe(name);
      expect(parsed.known).toEqual(['ceo', 'cto']);
      expect(ReleaseReply.parse((await post('/release', JSON.stringify({ agent: name }))).body)).toMatchObject({ status: 'unknown_agent' });
      expect(await post('/heartbeat', JSON.stringify({ agent: name }))).toMatchObject({ status: 200, body: { status: 'ok' } });
    }
    await expectHealthy(p.url);
    const calls = (await shim.lines()).slice(before);
    // Looking the compose file up again for a new name is allowed; starting, stopping or killing is not.
    expect(calls.filter((line) => / (up|start|stop|kill|rm|down|run|create)( |$)/.test(line))).toEqual([]);
    expect(await p.runningInDocker()).toEqual(['ceo']);
  });

  it('never touches an infrastructure service, whatever the operation', async () => {
    const before = await quiesce(shim.lines);
    const statusBefore = StatusReply.parse((await p.http('GET', '/status')).body);
    const gatewayBefore = (await p.project.containers()).filter((c) => c.service === 'gateway');
    expect(gatewayBefore).toEqual([{ service: 'gateway', state: 'running' }]);

    const request = await post('/request', JSON.stringify({ agent: 'gateway', requested_by: 'ceo' }));
    expect(RequestReply.parse(request.body)).toEqual({ status: 'forbidden', agent: 'gateway', error: 'infrastructure service' });
    const waiting = await post('/request', JSON.stringify({ agent: 'gateway', wait_seconds: 5 }));
    expect(waiting.body).toMatchObject({ status: 'forbidden' });
    const release = await post('/release', JSON.stringify({ agent: 'gateway', requested_by: 'ceo' }));
    expect(release.status).toBe(200);
    expect(ReleaseReply.parse(release.body)).toMatchObject({ status: 'forbidden', agent: 'gateway' });
    const heartbeat = await post('/heartbeat', JSON.stringify({ agent: 'gateway' }));
    expect(HeartbeatReply.strict().parse(heartbeat.body)).toEqual({ status: 'ok' });

    await sleep(1200); // past the activity flush and any debounced work
    const statusAfter = StatusReply.parse((await p.http('GET', '/status')).body);
    expect(statusAfter.running.map((a) => a.id)).toEqual(statusBefore.running.map((a) => a.id));
    expect(statusAfter.slots_free).toBe(statusBefore.slots_free);
    expect((await fresh(p.url, 'GET', '/available')).body).toEqual({ agents: ['ceo'] });
    expect((await p.project.containers()).filter((c) => c.service === 'gateway')).toEqual(gatewayBefore);
    expect((await shim.lines()).slice(before).filter((line) => line.includes('gateway'))).toEqual([]);
    expect(await readFile(join(p.poolDir, 'state.json'), 'utf8').catch(() => '')).not.toContain('gateway');
  });

  it('413 to a body over MAX_BODY_SIZE by Content-Length: Connection: close, the rest never read', async () => {
    inputsTried++;
    // The body would be 100 kB; we send 20 bytes and wait: the server answers and closes without it.
    const result = await rawTcp(p.url, `POST /request HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"agent":"ceo","xx":`, {
      giveUpMs: 5000,
    });
    expect(result.error).toBeUndefined();
    expect(result.reply).toMatch(/^HTTP\/1\.1 413 /);
    expect(result.reply).toMatch(/\r\nConnection: close\r\n/i);
    expect(ErrorReply.strict().parse(firstJson(result.reply))).toEqual({ error: `request body over ${MAX_BODY} bytes` });
    expect(result.closedAfterMs).toBeLessThan(3000);

    // A client that keeps pushing megabytes after the 413 is cut off, not drained.
    inputsTried++;
    const flood = await rawTcp(
      p.url,
      (socket) => {
        socket.write(`POST /heartbeat HTTP/1.1\r\nHost: x\r\nContent-Length: 50000000\r\n\r\n`);
        const chunk = Buffer.alloc(64 * 1024, 0x61);
        const pump = () => {
          while (!socket.destroyed && socket.write(chunk)) {
            /* until the kernel buffer is full */
          }
        };
        socket.on('drain', pump);
        pump();
      },
      { giveUpMs: 10_000 },
    );
    expect(flood.reply).toMatch(/^HTTP\/1\.1 413 /);
    expect(flood.error === undefined || flood.error === 'EPIPE' || flood.error === 'ECONNRESET').toBe(true);
    expect(flood.closedAfterMs).toBeLessThan(5000);
    await expectHealthy(p.url);
  });

  it('a body of exactly MAX_BODY_SIZE bytes is served; one byte more is 413', async () => {
    const exact = `{"agent":"ceo"}`.padEnd(MAX_BODY, ' ');
    expect(Buffer.byteLength(exact)).toBe(MAX_BODY);
    expect(await post('/heartbeat', exact)).toMatchObject({ status: 200, body: { status: 'ok' } });
    const over = await post('/heartbeat', `${exact} `);
    expectErrorBody(over, 413);
    expect(over.headers.connection).toBe('close');
    // Multi-byte characters count as bytes, not characters.
    const wide = `{"agent":"ceo","x":"${'é'.repeat(MAX_BODY / 2)}"}`;
    expectErrorBody(await post('/heartbeat', wide), 413);
    await expectHealthy(p.url);
  });

  it('413 to a chunked body that grows past MAX_BODY_SIZE; valid chunked bodies are served', async () => {
    inputsTried += 4;
    const chunk = 'a'.repeat(600);
    const over = await rawTcp(p.url, `POST /heartbeat HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n258\r\n${chunk}\r\n258\r\n${chunk}\r\n`, {
      giveUpMs: 5000,
    });
    expect(over.reply).toMatch(/^HTTP\/1\.1 413 /);
    expect(firstJson(over.reply)).toEqual({ error: `request body over ${MAX_BODY} bytes` });
    expect(over.error === undefined || over.error === 'ECONNRESET').toBe(true);

    // Valid chunked bodies: split mid-token, mid-UTF-8 character, with a chunk extension, and trailers.
    const body = Buffer.from('{"agent":"ceo","note":"é"}');
    const cut = body.indexOf(0xc3) + 1;
    const parts = [body.subarray(0, 3), body.subarray(3, cut), body.subarray(cut)];
    const chunked = Buffer.concat([
      Buffer.from('POST /heartbeat HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n'),
      ...parts.flatMap((part, i) => [Buffer.from(`${part.length.toString(16)}${i === 1 ? ';ext=1' : ''}\r\n`), part, Buffer.from('\r\n')]),
      Buffer.from('0\r\nX-Trailer: t\r\n\r\n'),
    ]);
    const ok = await rawTcp(p.url, chunked, { giveUpMs: 5000 });
    expect(ok.reply).toMatch(/^HTTP\/1\.1 200 /);
    expect(firstJson(ok.reply)).toEqual({ status: 'ok' });

    const request = await rawTcp(
      p.url,
      `POST /request HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\n{"age\r\n9\r\nnt":"ceo"\r\n1\r\n}\r\n0\r\n\r\n`,
      { giveUpMs: 5000 },
    );
    expect(firstJson(request.reply)).toEqual({ status: 'already_running', agent: 'ceo' });

    // Both framings at once (a smuggling attempt): refused by Node's parser, connection closed.
    const both = await rawTcp(p.url, `POST /heartbeat HTTP/1.1\r\nHost: x\r\nContent-Length: 15\r\nTransfer-Encoding: chunked\r\n\r\nf\r\n{"agent":"ceo"}\r\n0\r\n\r\n`, {
      giveUpMs: 5000,
    });
    expect(both.reply).toMatch(/^HTTP\/1\.1 400 /);
    await expectHealthy(p.url);
  });

  it('a Content-Length that declares fewer bytes than sent: 400, and the surplus closes the connection', async () => {
    inputsTried += 2;
    // All at once: the surplus `"ceo"}` is parsed as the next request line at once; Node answers 400 and closes.
    const together = await rawTcp(p.url, `POST /heartbeat HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n{"agent":"ceo"}`, { giveUpMs: 15_000 });
    expect(together.reply).toMatch(/^HTTP\/1\.1 400 /);
    expect(together.error).toBeUndefined();
    expect(together.closedAfterMs).toBeLessThan(3000);
    // In two writes: the declared 10 bytes get the bridge's own 400 {error}; the surplus then closes it.
    const split = await rawTcp(
      p.url,
      (socket) => {
        socket.write(`POST /heartbeat HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n{"agent":"`);
        setTimeout(() => socket.write('ceo"}\r\n\r\n'), 300);
      },
      { giveUpMs: 15_000 },
    );
    expect(split.reply).toMatch(/^HTTP\/1\.1 400 /);
    expect(firstJson(split.reply)).toEqual({ error: 'malformed JSON in request body' });
    expect(split.reply.match(/HTTP\/1\.1 /g)).toHaveLength(2);
    expect(split.error).toBeUndefined();
    expect(split.closedAfterMs).toBeLessThan(3000);
    await expectHealthy(p.url);
  });

  it('headers of 64 KB: 431 or closed; a header flood is cut; the daemon serves others', async () => {
    inputsTried += 3;
    const big = await rawTcp(p.url, `GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(64 * 1024)}\r\n\r\n`, { giveUpMs: 5000 });
    expect(big.error === undefined || big.error === 'ECONNRESET' || big.error === 'EPIPE', big.error).toBe(true);
    if (big.reply !== '') expect(big.reply).toMatch(/^HTTP\/1\.1 431 /);
    expect(big.closedAfterMs).toBeLessThan(5000);

    const many = Array.from({ length: 200 }, (_, i) => `X-H${i}: ${'v'.repeat(100)}\r\n`).join('');
    const flood = await rawTcp(p.url, `POST /heartbeat HTTP/1.1\r\nHost: x\r\n${many}Content-Length: 15\r\n\r\n{"agent":"ceo"}`, { giveUpMs: 5000 });
    expect(flood.reply === '' || /^HTTP\/1\.1 431 /.test(flood.reply), flood.reply).toBe(true);
    expect(flood.closedAfterMs).toBeLessThan(5000);

    // Under the size limit but over maxHeadersCount: extra headers are dropped, the request is served.
    const some = Array.from({ length: 100 }, (_, i) => `X-H${i}: v\r\n`).join('');
    const served = await rawTcp(p.url, `GET /health HTTP/1.1\r\nHost: x\r\n${some}Connection: close\r\n\r\n`, { giveUpMs: 5000 });
    expect(served.reply).toMatch(/^HTTP\/1\.1 200 /);
    await expectHealthy(p.url);
  });

  it('405 with Allow to methods a path does not serve; 400 or close to junk methods', async () => {
    const cases: [string, string, string][] = [];
    for (const path of POSTS) for (const method of ['GET', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD', 'TRACE']) cases.push([method, path, 'POST']);
    for (const path of ['/status', '/available', '/health']) for (const method of ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']) cases.push([method, path, 'GET']);
    for (const [method, path, allow] of cases) {
      inputsTried++;
      const reply = await fresh(p.url, method, path, method === 'GET' || method === 'HEAD' || method === 'TRACE' ? undefined : '{"agent":"ceo"}');
      expect(reply.status, `${method} ${path}`).toBe(405);
      expect(reply.headers.allow, `${method} ${path}`).toBe(allow);
      if (method !== 'HEAD') expect(ErrorReply.strict().parse(reply.body).error).toContain(method);
    }
    for (const line of ['FOO /request HTTP/1.1', 'CONNECT 127.0.0.1:22 HTTP/1.1', 'GET /status HTTP/9.9', 'POST /request']) {
      inputsTried++;
      const result = await rawTcp(p.url, `${line}\r\nHost: x\r\n\r\n`, { giveUpMs: 15_000 });
      expect(result.error === undefined || result.error === 'ECONNRESET', `${line}: ${result.error}`).toBe(true);
      if (result.reply !== '') expect(result.reply, line).toMatch(/^HTTP\/1\.[01] (400|405|505) /);
    }
    await expectHealthy(p.url);
  });

  it('slow clients are cut off by the server timeouts while others are served (slowloris, a Content-Length that lies)', async () => {
    inputsTried += 2;
    // Slowloris: one header byte per second, never finishing the headers.
    const slowloris = rawTcp(
      p.url,
      (socket) => {
        const text = `POST /request HTTP/1.1\r\nHost: x\r\nX-Slow: ${'a'.repeat(1000)}`;
        let i = 0;
        const timer = setInterval(() => {
          if (socket.destroyed || i >= text.length) return clearInterval(timer);
          socket.write(text[i++] ?? '');
        }, 1000);
        socket.on('close', () => clearInterval(timer));
      },
      { giveUpMs: 60_000 },
    );
    // Declares 200 bytes, sends 15, then goes quiet with the socket open.
    const liar = rawTcp(p.url, `POST /heartbeat HTTP/1.1\r\nHost: x\r\nContent-Length: 200\r\n\r\n{"agent":"ceo"}`, { giveUpMs: 60_000 });
    // Meanwhile, the daemon serves everyone else.
    for (let i = 0; i < 6; i++) {
      await sleep(1500);
      await expectHealthy(p.url);
      expect(await post('/heartbeat', '{"agent":"ceo"}')).toMatchObject({ status: 200 });
    }
    const [slow, lied] = await Promise.all([slowloris, liar]);
    console.log(`slowloris closed after ${slow.closedAfterMs} ms; short body closed after ${lied.closedAfterMs} ms`);
    // headersTimeout is 10 s, requestTimeout 30 s (src/bridge/server.ts), checked every second.
    expect(slow.error).toBeUndefined();
    expect(slow.closedAfterMs).toBeGreaterThanOrEqual(9_000);
    expect(slow.closedAfterMs).toBeLessThan(13_000);
    expect(slow.reply === '' || /^HTTP\/1\.1 408 /.test(slow.reply)).toBe(true);
    expect(lied.error).toBeUndefined();
    expect(lied.closedAfterMs).toBeGreaterThanOrEqual(29_000);
    expect(lied.closedAfterMs).toBeLessThan(33_000);
    expect(lied.reply === '' || /^HTTP\/1\.1 408 /.test(lied.reply)).toBe(true);
    // A client cut off mid-body is not a daemon error: no error line, no attempt at a 500.
    expect(p.logs.filter((line) => /error bridge request/.test(line))).toEqual([]);
    await expectHealthy(p.url);
  });

  it('1,000 idle connections at once: /status still answers on a fresh one; FDs come back after', async () => {
    const fdsBefore = await openFds();
    const rssBefore = process.memoryUsage().rss;
    const { hostname, port } = new URL(p.url);
    const sockets = await Promise.all(
      Array.from(
        { length: 1000 },
        () =>
          new Promise<Socket>((resolve, reject) => {
            const socket = connect(Number(port), hostname, () => resolve(socket));
            socket.on('error', reject);
          }),
      ),
    );
    inputsTried += 1000;
    try {
      await sleep(200);
      const status = await fresh(p.url, 'GET', '/status');
      expect(status.status).toBe(200);
      expect(StatusReply.strict().parse(status.body).running.map((a) => a.id)).toEqual(['ceo']);
      expect(await post('/request', '{"agent":"ceo"}')).toMatchObject({ status: 200, body: { status: 'already_running' } });
      await expectHealthy(p.url);
      expect(sockets.filter((s) => s.destroyed)).toHaveLength(0);
      expect(process.memoryUsage().rss - rssBefore).toBeLessThan(200 * 1024 * 1024);
    } finally {
      for (const socket of sockets) socket.destroy();
    }
    await eventually(async () => expect(await openFds()).toBeLessThan(fdsBefore + 50), 10_000, 200);
    await expectHealthy(p.url);
  });

  it('a seeded random generator of bodies: only 200 with a SPEC reply or 400 {error}, never 500, never a hang', async () => {
    const seed = process.env.HOSTILE_SEED ? Number(process.env.HOSTILE_SEED) : Date.now() % 2 ** 31;
    const COUNT = 300;
    console.log(`hostile body generator: ${COUNT} bodies, seed ${seed} (rerun with HOSTILE_SEED=${seed})`);
    const rand = prng(seed);
    const pick = <T>(list: readonly T[]): T => list[Math.floor(rand() * list.length)] as T;
    const validNames = ['ceo', 'ceo', 'gateway', 'nobody', 'CEO', 'x', 'a'.repeat(255)];
    const invalidNames = INVALID_NAMES.filter((n) => n.length < 100);
    const name = () => (rand() < 0.65 ? pick(validNames) : pick(invalidNames));
    const scalars: unknown[] = [null, true, false, 0, -1, 1.5, 3600, 3601, 1e308, '', 'ceo', [], {}, ['ceo'], { agent: 'ceo' }, [[[]]]];
    const value = (depth = 0): unknown => {
      const r = rand();
      if (r < 0.55) return name();
      if (r < 0.85 || depth > 2) return pick(scalars);
      if (r < 0.93) return Array.from({ length: Math.floor(rand() * 3) }, () => value(depth + 1));
      return Object.fromEntries(Array.from({ length: Math.floor(rand() * 3) }, (_, i) => [`k${i}`, value(depth + 1)]));
    };
    const body = (path: string): string => {
      const r = rand();
      if (r < 0.08) return pick(['{', '', 'null', '[]', '"ceo"', '{"agent":"ceo"', '{"agent":"ceo"}x', '{"agent":"ceo",,}', '\u0000{}', '{"agent":"ceo"}{}']);
      const fields: Record<string, unknown> = {};
      if (rand() < 0.93) fields.agent = rand() < 0.85 ? name() : value();
      if (rand() < 0.4) fields.requested_by = rand() < 0.85 ? name() : value();
      if (rand() < 0.25) fields.wait_seconds = pick([0, 1, 0.5, 2, 3600, -1, 3601, '1', null, []]);
      for (let i = Math.floor(rand() * 3); i > 0; i--) fields[pick(['extra', 'note', 'AGENT', 'agent_id', 'x-y'])] = value();
      // Never release a running agent or start a new one: the pool must stay as it is for the checks.
      if (path === '/release' && fields.agent === 'ceo') fields.agent = 'cto';
      const text = JSON.stringify(fields);
      return text.length < MAX_BODY ? text : '{"agent":"x"}';
    };
    const schemas = {
      '/request': [RequestInput, RequestReply],
      '/release': [ReleaseInput, ReleaseReply],
      '/heartbeat': [HeartbeatInput, HeartbeatReply],
    } as const;
    const expectedStatus = (path: keyof typeof schemas, text: string): number => {
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        return 400;
      }
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return 400;
      return schemas[path][0].safeParse(parsed).success ? 200 : 400;
    };
    const cases = Array.from({ length: COUNT }, () => {
      const path = pick(['/request', '/request', '/release', '/heartbeat'] as const);
      return { path, text: body(path) };
    });
    let ok = 0;
    let refused = 0;
    for (let i = 0; i < cases.length; i += 10) {
      await Promise.all(
        cases.slice(i, i + 10).map(async ({ path, text }, j) => {
          const where = `seed ${seed}, body #${i + j}: POST ${path} ${JSON.stringify(text)}`;
          const reply = await fresh(p.url, 'POST', path, text, { 'Content-Type': 'application/json' });
          expect(reply.status, `${where} → ${reply.text}`).toBe(expectedStatus(path, text));
          if (reply.status === 200) {
            ok++;
            expect(() => schemas[path][1].parse(reply.body), `${where} → ${reply.text}`).not.toThrow();
            expect((reply.body as { status: string }).status, where).not.toBe('error');
          } else {
            refused++;
            expect(() => ErrorReply.strict().parse(reply.body), `${where} → ${reply.text}`).not.toThrow();
          }
        }),
      );
    }
    console.log(`generator: ${ok} answered 200, ${refused} refused with 400`);
    expect(ok).toBeGreaterThan(0);
    expect(refused).toBeGreaterThan(0);
    await expectHealthy(p.url);
    expect(await p.runningInDocker()).toEqual(['ceo']);
    expect(p.logs.filter((line) => /error bridge request/.test(line))).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------
// security posture

describe.skipIf(!docker)('security posture of the bridge', () => {
  it('with POOL_BIND unset and no Docker network (network_mode: host), listens on 127.0.0.1 only', async () => {
    const project = await createComposeProject({ ceo: agentService(), cto: agentService() });
    const scratch = await mkdtemp(join(tmpdir(), 'pool-bind-'));
    const logs: string[] = [];
    const record = (line: string) => logs.push(line);
    const config = loadConfig({
      cwd: project.dir,
      env: {
        MAX_AGENTS: '2',
        SYNC_INTERVAL: '3600',
        INFRA_SERVICES: '',
        POOL_PORT: '0',
        COMPOSE_DIR: project.dir,
        COMPOSE_PROJECT: project.name,
        POOL_DIR: join(scratch, 'pool'),
        POOL_SOCKET: join(scratch, 's.sock'),
      },
    });
    expect(config.bind).toBeUndefined();
    const daemon = createDaemon({ config, log: { info: record, error: record } });
    try {
      await daemon.start();
      const url = daemon.bridgeUrl();
      const port = Number(new URL(url).port);
      expect(url).toBe(`http://127.0.0.1:${port}`);
      expect(logs.filter((line) => line.includes('bridge listening on'))).toEqual([`bridge listening on http://127.0.0.1:${port}`]);
      expect((await fresh(url, 'GET', '/health')).status).toBe(200);

      const external = Object.values(networkInterfaces())
        .flat()
        .find((i) => i !== undefined && i.family === 'IPv4' && !i.internal);
      if (external === undefined) {
        console.warn('no non-loopback IPv4 address on this machine: the refused-connection check is skipped');
        return;
      }
      // Only a connect: nothing is sent.
      const outcome = await new Promise<string>((resolve) => {
        const socket = connect(port, external.address);
        socket.setTimeout(5000, () => {
          socket.destroy();
          resolve('timeout');
        });
        socket.on('connect', () => {
          socket.destroy();
          resolve('connected');
        });
        socket.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
      });
      expect(outcome, `connecting to ${external.address}:${port}`).toBe('ECONNREFUSED');
    } finally {
      await daemon.stop('test finished', { stopAgents: false });
      await project.remove();
      await rm(scratch, { recursive: true, force: true });
    }
  });

  describe('with POOL_TOKEN set', () => {
    const token = `tok-${Math.random().toString(36).slice(2)}-Zq9`;
    const wrong = `wrong-${Math.random().toString(36).slice(2)}`;
    let p: TestDaemon;
    let shim: Awaited<ReturnType<typeof createDockerShim>>;
    beforeAll(async () => {
      shim = await createDockerShim();
      p = await startTestDaemon({ env: { POOL_TOKEN: token, DOCKER_BIN: shim.bin }, agents: ['ceo', 'cto'], infra: [] });
    });
    afterAll(async () => {
      await p?.stop();
      if (shim) await rm(shim.dir, { recursive: true, force: true });
    });

    it('401 {error} to POSTs without or with a wrong token; nothing changes', async () => {
      const before = await quiesce(shim.lines);
      const attempts: Record<string, string>[] = [
        {},
        { Authorization: '' },
        { Authorization: 'Bearer' },
        { Authorization: 'Bearer ' },
        { Authorization: `Bearer ${wrong}` },
        { Authorization: `Bearer ${token}x` },
        { Authorization: `Bearer ${token.slice(0, -1)}` },
        { Authorization: `Bearer ${token.toUpperCase()}` },
        { Authorization: `Basic ${Buffer.from(`x:${token}`).toString('base64')}` },
        { Authorization: token },
        { 'X-Pool-Token': token },
        { Authorization: `Bearer ${'a'.repeat(8000)}` },
      ];
      for (const headers of attempts) {
        for (const path of POSTS) {
          const reply = await fresh(p.url, 'POST', `${path}?token=${encodeURIComponent(token)}`, JSON.stringify({ agent: 'ceo', token }), {
            'Content-Type': 'application/json',
            ...headers,
          });
          expectErrorBody(reply, 401);
          expect(reply.headers['www-authenticate']).toBe('Bearer');
        }
      }
      // A refused POST with an oversized or malformed body is still 401 (nothing read before auth).
      expectErrorBody(await fresh(p.url, 'POST', '/request', '{"agent":', { Authorization: `Bearer ${wrong}` }), 401);
      expect((await fresh(p.url, 'GET', '/status')).status).toBe(200);
      expect(await p.runningInDocker()).toEqual([]);
      expect((await shim.lines()).slice(before)).toEqual([]);
    });

    it('accepts the right token; the token never appears in logs or pool files, sent right or wrong', async () => {
      const auth = { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' };
      expect(await fresh(p.url, 'POST', '/heartbeat', '{"agent":"ceo"}', auth)).toMatchObject({ status: 200, body: { status: 'ok' } });
      expect(await fresh(p.url, 'POST', '/heartbeat', '{"agent":"ceo"}', { ...auth, Authorization: `bearer   ${token}  ` })).toMatchObject({ status: 200 });
      expect(await fresh(p.url, 'POST', '/request', '{"agent":"nobody"}', auth)).toMatchObject({ status: 200, body: { status: 'unknown_agent' } });
      expect(await fresh(p.url, 'POST', '/release', '{"agent":"cto"}', auth)).toMatchObject({ status: 200, body: { status: 'not_running' } });
      expectErrorBody(await fresh(p.url, 'POST', '/request', '{"agent":', auth), 400);
      expectErrorBody(await fresh(p.url, 'POST', '/request', `{"agent":"ceo","x":"${'a'.repeat(5000)}"}`, auth), 413);
      expect(await p.runningInDocker()).toEqual([]);
      // Reload the configuration too (SIGHUP path): it logs what it applied.
      await p.daemon.reload(p.config);
      await sleep(1200);
      const leaked = p.logs.filter((line) => line.includes(token) || line.includes(wrong));
      expect(leaked).toEqual([]);
      for (const file of await readdir(p.poolDir, { recursive: true })) {
        const text = await readFile(join(p.poolDir, String(file)), 'utf8').catch(() => '');
        expect(text.includes(token), String(file)).toBe(false);
      }
    });
  });
});

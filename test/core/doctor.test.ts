import { describe, expect, it } from 'vitest';
import type { DoctorCheck, HealthReply } from '../../src/contract/index.js';
import {
  type BridgeFacts,
  type DaemonFacts,
  type DirFacts,
  SIZING_RESERVE_BYTES,
  type SocketFacts,
  TYPICAL_AGENT_BYTES,
  bridgeCheck,
  composeCheck,
  configChecks,
  daemonCheck,
  dockerCheck,
  doctorReport,
  formatBytes,
  infraCheck,
  parseMemTotal,
  poolDirCheck,
  projectCheck,
  sizingCheck,
  socketCheck,
  suggestMaxAgents,
} from '../../src/core/doctor.js';
import { parseDockerSize } from '../../src/drivers/compose-reads.js';

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;

describe('suggestMaxAgents: SPEC §8, floor((total − 2 GB) / per agent)', () => {
  it.each([
    { total: 4 * GiB, perAgent: 330 * MiB, suggested: 6 },
    { total: 8 * GiB, perAgent: 330 * MiB, suggested: 18 },
    { total: 16 * GiB, perAgent: 1.5 * GiB, suggested: 9 },
    { total: 4 * GiB, perAgent: 1 * GiB, suggested: 2 },
    { total: 2 * GiB + 330 * MiB, perAgent: 330 * MiB, suggested: 1 },
    { total: 2 * GiB + 329 * MiB, perAgent: 330 * MiB, suggested: 0 },
    { total: 1 * GiB, perAgent: 330 * MiB, suggested: 0 },
  ])('$total bytes at $perAgent per agent → $suggested', ({ total, perAgent, suggested }) => {
    expect(suggestMaxAgents(total, perAgent)).toBe(suggested);
  });
});

describe('sizingCheck: the suggestion from measured agents against the configured MAX_AGENTS', () => {
  it.each([
    {
      rule: 'passes a cap at or below the suggestion, from the mean of the measured agents',
      facts: { totalBytes: 8 * GiB, samples: [300 * MiB, 500 * MiB], unmeasured: 'none', configured: 15 },
      verdict: 'pass',
      detail: 'suggested MAX_AGENTS=15, configured 15: (8 GiB − 2 GiB) / 400 MiB per agent (mean of 2 running)',
      figures: { per_agent_bytes: 400 * MiB, measured_agents: 2, suggested: 15 },
    },
    {
      rule: 'warns when the cap is above the suggestion',
      facts: { totalBytes: 4 * GiB, samples: [1 * GiB], unmeasured: 'none', configured: 3 },
      verdict: 'warn',
      detail: 'MAX_AGENTS=3 is above the suggested 2: (4 GiB − 2 GiB) / 1 GiB per agent (mean of 1 running)',
      figures: { per_agent_bytes: GiB, measured_agents: 1, suggested: 2 },
    },
    {
      rule: 'falls back to the typical 330 MiB when no agent runs, and says so',
      facts: { totalBytes: 4 * GiB, samples: [], unmeasured: 'no agent running to measure', configured: 3 },
      verdict: 'pass',
      detail: 'suggested MAX_AGENTS=6, configured 3: (4 GiB − 2 GiB) / ~330 MiB per agent (typical; no agent running to measure)',
      figures: { per_agent_bytes: TYPICAL_AGENT_BYTES, measured_agents: 0, suggested: 6 },
    },
    {
      rule: 'ignores containers that report 0 B (just started)',
      facts: { totalBytes: 4 * GiB, samples: [0, 512 * MiB], unmeasured: 'none', configured: 4 },
      verdict: 'pass',
      detail: 'suggested MAX_AGENTS=4, configured 4: (4 GiB − 2 GiB) / 512 MiB per agent (mean of 1 running)',
      figures: { per_agent_bytes: 512 * MiB, measured_agents: 1, suggested: 4 },
    },
    {
      rule: 'warns when the host has no room for one agent',
      facts: { totalBytes: 2 * GiB, samples: [], unmeasured: 'POOL_DRIVER=process: agents are not measured', configured: 1 },
      verdict: 'warn',
      detail: 'no room for an agent by the sizing rule: (2 GiB − 2 GiB) / ~330 MiB per agent (typical; POOL_DRIVER=process: agents are not measured); MAX_AGENTS is 1',
      figures: { suggested: 0 },
    },
  ])('$rule', ({ facts, verdict, detail, figures }) => {
    const result = sizingCheck(facts);
    expect(result.check).toEqual({ check: 'sizing', verdict, detail });
    expect(result.figures).toMatchObject({ ...figures, total_bytes: facts.totalBytes, reserve_bytes: SIZING_RESERVE_BYTES, configured: facts.configured });
  });

  it('skips, without figures, when the host memory is unknown', () => {
    expect(sizingCheck({ totalBytes: undefined, samples: [GiB], unmeasured: '', configured: 3 })).toEqual({
      check: { check: 'sizing', verdict: 'skip', detail: "cannot read the host's memory (/proc/meminfo)" },
    });
  });
});

describe('the measurements, parsed', () => {
  it.each([
    { text: 'MemTotal:       24684084 kB\nMemFree:        22169416 kB\n', bytes: 24684084 * 1024 },
    { text: 'MemFree:  1 kB\nMemTotal: 4030000 kB\n', bytes: 4030000 * 1024 },
    { text: 'MemFree: 1 kB\n', bytes: undefined },
    { text: '', bytes: undefined },
  ])('parseMemTotal(%j)', ({ text, bytes }) => {
    expect(parseMemTotal(text)).toBe(bytes);
  });

  it.each([
    { text: '352KiB', bytes: 352 * 1024 },
    { text: '2.746MiB', bytes: Math.round(2.746 * MiB) },
    { text: '1.045GiB ', bytes: Math.round(1.045 * GiB) },
    { text: ' 12.4 MB', bytes: 12_400_000 },
    { text: '0B', bytes: 0 },
    { text: '--', bytes: undefined },
    { text: '12 parsecs', bytes: undefined },
    { text: '3 constructor', bytes: undefined },
  ])('parseDockerSize($text) → $bytes', ({ text, bytes }) => {
    expect(parseDockerSize(text)).toBe(bytes);
  });

  it.each([
    { bytes: 0, text: '0 B' },
    { bytes: 1023, text: '1023 B' },
    { bytes: 352 * 1024, text: '352 KiB' },
    { bytes: 330 * MiB, text: '330 MiB' },
    { bytes: 24684084 * 1024, text: '23.5 GiB' },
    { bytes: 2 * GiB, text: '2 GiB' },
  ])('formatBytes($bytes) → $text', ({ bytes, text }) => {
    expect(formatBytes(bytes)).toBe(text);
  });
});

const only = (c: DoctorCheck) => [c.verdict, c.detail];

describe('the verdicts of each check', () => {
  it.each([
    { what: 'a file read', read: { file: '/etc/openclaw-pool/pool.env', problems: [], warnings: [] }, checks: [['pass', '/etc/openclaw-pool/pool.env']] },
    { what: 'no file at all', read: { file: undefined, problems: [], warnings: [] }, checks: [['pass', 'no pool.env found: the environment and the defaults apply']] },
    {
      what: 'a misspelt variable: a warning naming the closest one, not a failure',
      read: { file: '/etc/openclaw-pool/pool.env', problems: [], warnings: ['/etc/openclaw-pool/pool.env: MAX_AGNETS is not an openclaw-pool variable; ignored (did you mean MAX_AGENTS?)'] },
      checks: [['warn', '/etc/openclaw-pool/pool.env: MAX_AGNETS is not an openclaw-pool variable; ignored (did you mean MAX_AGENTS?)']],
    },
    {
      what: 'two bad variables: one failing line each',
      read: { file: undefined, problems: ['MAX_AGENTS="x": expected a whole number', 'POOL_PORT="-1": expected at least 0'], warnings: [] },
      checks: [
        ['fail', 'MAX_AGENTS="x": expected a whole number'],
        ['fail', 'POOL_PORT="-1": expected at least 0'],
      ],
    },
  ])('pool.env: $what', ({ read, checks }) => {
    expect(configChecks(read).map(only)).toEqual(checks);
  });

  it.each([
    { what: 'an engine that answers', probed: { ok: true as const, value: '20.10.24' }, expected: ['pass', 'engine 20.10.24'] },
    { what: 'no engine', probed: { ok: false as const, error: 'Cannot connect to the Docker daemon' }, expected: ['fail', 'the engine does not answer: Cannot connect to the Docker daemon'] },
  ])('docker: $what', ({ probed, expected }) => {
    expect(only(dockerCheck(probed))).toEqual(expected);
  });

  it.each([
    { version: { ok: true as const, value: '2.26.1-4' }, expected: ['pass', 'compose 2.26.1-4'] },
    { version: { ok: true as const, value: 'v2.29.7' }, expected: ['pass', 'compose v2.29.7'] },
    { version: { ok: true as const, value: '1.29.2' }, expected: ['fail', 'compose 1.29.2: compose v2 is required'] },
    { version: { ok: false as const, error: "docker: 'compose' is not a docker command." }, expected: ['fail', "docker compose (v2) is not available: docker: 'compose' is not a docker command."] },
  ])('compose: $version', ({ version, expected }) => {
    expect(only(composeCheck(version))).toEqual(expected);
  });

  const rules = { infra: ['gateway', 'litellm'], pinned: [] as string[] };
  it.each([
    { what: 'agents beside the infrastructure', services: ['ceo', 'cto', 'gateway', 'litellm'], rules, expected: ['pass', 'team: 2 agents (ceo, cto)'] },
    { what: 'a single agent', services: ['ceo', 'gateway'], rules, expected: ['pass', 'team: 1 agent (ceo)'] },
    {
      what: 'many agents, the list cut short',
      services: ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j'],
      rules,
      expected: ['pass', 'team: 10 agents (a, b, c, d, e, f, g, h and 2 more)'],
    },
    { what: 'nothing but infrastructure', services: ['gateway', 'litellm'], rules, expected: ['warn', 'team: no agent services (every service is in INFRA_SERVICES)'] },
    {
      what: 'a pinned agent that is no service',
      services: ['ceo', 'gateway'],
      rules: { ...rules, pinned: ['ceo', 'cfo'] },
      expected: ['warn', 'team: 1 agent (ceo); PINNED_AGENTS names cfo, not a service of the project'],
    },
  ])('project: $what', ({ services, rules: r, expected }) => {
    expect(only(projectCheck({ ok: true, value: { name: 'team', services } }, r, 'the compose project in /srv'))).toEqual(expected);
  });

  it('project: fails when the compose file cannot be read, saying where', () => {
    expect(only(projectCheck({ ok: false, error: 'no configuration file provided: not found' }, rules, 'the compose project in /srv'))).toEqual([
      'fail',
      'cannot read the compose project in /srv: no configuration file provided: not found',
    ]);
  });

  it.each([
    { what: 'present and running', infra: ['gateway', 'litellm'], running: new Set(['gateway', 'litellm', 'ceo']), expected: ['pass', 'gateway, litellm running'] },
    { what: 'present, Docker not asked', infra: ['gateway'], running: undefined, expected: ['pass', 'gateway in the project'] },
    { what: 'none configured', infra: [], running: new Set<string>(), expected: ['pass', 'none (INFRA_SERVICES is empty)'] },
    { what: 'one missing from the project', infra: ['gateway', 'ollama'], running: new Set(['gateway']), expected: ['warn', 'ollama not in the compose project (INFRA_SERVICES)'] },
    { what: 'one not running', infra: ['gateway', 'litellm'], running: new Set(['gateway']), expected: ['warn', 'litellm not running (the daemon never starts infrastructure)'] },
    {
      what: 'one missing and one stopped',
      infra: ['gateway', 'ollama'],
      running: new Set<string>(),
      expected: ['warn', 'ollama not in the compose project (INFRA_SERVICES); gateway not running (the daemon never starts infrastructure)'],
    },
  ])('infrastructure: $what', ({ infra, running, expected }) => {
    expect(only(infraCheck(infra, ['ceo', 'gateway', 'litellm'], running))).toEqual(expected);
  });

  const socket = (mode: number, gid = 0): SocketFacts => ({ state: 'found', isSocket: true, mode: 0o140000 | mode, gid });
  it.each([
    { what: 'mode 0660, no group asked for', facts: socket(0o660), group: undefined, expected: ['pass', '/run/p.sock mode 0660, gid 0'] },
    { what: 'the group asked for', facts: socket(0o660, 999), group: { name: 'openclaw-pool', gid: 999 }, expected: ['pass', '/run/p.sock mode 0660, gid 999 (openclaw-pool)'] },
    {
      what: 'another group than asked for',
      facts: socket(0o660, 0),
      group: { name: 'openclaw-pool', gid: 999 },
      expected: ['warn', '/run/p.sock mode 0660, gid 0: POOL_SOCKET_GROUP is openclaw-pool (gid 999); restart the daemon to apply it'],
    },
    { what: 'open to everyone', facts: socket(0o666), group: undefined, expected: ['warn', '/run/p.sock mode 0666, gid 0: every local user can drive the pool (the daemon makes it 0660)'] },
    {
      what: 'missing',
      facts: { state: 'missing' } as const,
      group: undefined,
      expected: ['fail', '/run/p.sock does not exist: the daemon is not running, or it uses another POOL_SOCKET (systemctl status openclaw-pool)'],
    },
    {
      what: 'in a directory this user may not enter',
      facts: { state: 'hidden', error: 'permission denied' } as const,
      group: undefined,
      expected: ['fail', "cannot look at /run/p.sock: permission denied (run as root, or as a member of the socket's group)"],
    },
    { what: 'not a socket', facts: { state: 'found', isSocket: false, mode: 0o100644, gid: 0 } as const, group: undefined, expected: ['fail', '/run/p.sock is not a socket; the daemon refuses to replace it'] },
    {
      what: 'a POOL_SOCKET_GROUP that does not exist',
      facts: socket(0o660),
      group: { name: 'poolers', gid: undefined },
      expected: ['fail', 'POOL_SOCKET_GROUP=poolers: no such group; the daemon cannot start (groupadd poolers)'],
    },
  ])('socket: $what', ({ facts, group, expected }) => {
    expect(only(socketCheck('/run/p.sock', facts, group))).toEqual(expected);
  });

  const health = (over: Partial<HealthReply> = {}): DaemonFacts => ({
    reachable: true,
    health: { status: 'ok', docker: 'ok', uptime_seconds: 42, version: '0.1.0', ...over },
  });
  it.each([
    { what: 'healthy', facts: health(), expected: ['pass', 'ok: version 0.1.0, up 42 s, docker ok'] },
    { what: 'degraded', facts: health({ status: 'degraded', docker: 'unreachable', reason: 'docker unreachable: boom' }), expected: ['fail', 'degraded: docker unreachable: boom'] },
    { what: 'unreachable', facts: { reachable: false, error: 'cannot reach the openclaw-pool daemon at /s' } as const, expected: ['fail', 'cannot reach the openclaw-pool daemon at /s'] },
  ])('daemon: $what', ({ facts, expected }) => {
    expect(only(daemonCheck(facts))).toEqual(expected);
  });

  const bridge = (over: Partial<BridgeFacts>): BridgeFacts => ({ source: 'daemon', addresses: ['127.0.0.1'], port: 19000, defaultBind: false, token: false, ...over });
  it.each([
    { what: 'listening where POOL_BIND says', facts: bridge({}), expected: ['pass', '127.0.0.1:19000 (listening)'] },
    {
      what: 'the default bind, with a gateway',
      facts: bridge({ addresses: ['127.0.0.1', '172.18.0.1'], defaultBind: true }),
      expected: ['pass', '127.0.0.1:19000, 172.18.0.1:19000 (listening; POOL_BIND unset: loopback and the agents’ Docker gateways)'],
    },
    { what: 'from pool.env, an IPv6 address', facts: bridge({ source: 'config', addresses: ['::1'], port: 0 }), expected: ['pass', '[::1]:<any free port> (from pool.env; the daemon is not running)'] },
    {
      what: 'all interfaces without a token',
      facts: bridge({ addresses: ['0.0.0.0'] }),
      expected: [
        'warn',
        '0.0.0.0:19000 (listening): all interfaces without POOL_TOKEN, so anyone who reaches the port can start and stop agents; set POOL_TOKEN, or POOL_BIND to loopback and the Docker gateways',
      ],
    },
    { what: 'all interfaces with a token', facts: bridge({ addresses: ['::'], token: true }), expected: ['pass', '[::]:19000 (listening)'] },
    { what: 'nowhere', facts: bridge({ addresses: [] }), expected: ['fail', 'not listening on any address'] },
  ])('bridge: $what', ({ facts, expected }) => {
    expect(only(bridgeCheck(facts))).toEqual(expected);
  });

  const dir = (isDirectory: boolean, writable: boolean): DirFacts => ({ state: 'found', isDirectory, writable });
  it.each([
    { what: 'a writable directory', facts: dir(true, true), uid: 0, expected: ['pass', '/srv/pool is writable'] },
    { what: 'missing', facts: { state: 'missing' } as const, uid: 0, expected: ['warn', '/srv/pool does not exist yet: the daemon creates it (if it should be a mount, the mount is missing)'] },
    { what: 'a file', facts: dir(false, true), uid: 0, expected: ['fail', '/srv/pool is not a directory'] },
    { what: 'read-only for root', facts: dir(true, false), uid: 0, expected: ['fail', '/srv/pool is not writable (a read-only mount?); the daemon cannot keep its state'] },
    { what: 'not writable by another user', facts: dir(true, false), uid: 1000, expected: ['warn', "/srv/pool is not writable by uid 1000; the daemon's user must be able to write it"] },
    {
      what: 'hidden from another user',
      facts: { state: 'hidden', error: 'permission denied' } as const,
      uid: 1000,
      expected: ['warn', "cannot look at /srv/pool as uid 1000: permission denied; the daemon's user must be able to"],
    },
  ])('pool dir: $what', ({ facts, uid, expected }) => {
    expect(only(poolDirCheck('/srv/pool', facts, { uid }))).toEqual(expected);
  });
});

describe('doctorReport: ok unless a check failed', () => {
  const c = (verdict: DoctorCheck['verdict']): DoctorCheck => ({ check: 'x', verdict, detail: '' });
  it.each([
    { verdicts: ['pass', 'pass'] as const, ok: true },
    { verdicts: ['pass', 'warn', 'skip'] as const, ok: true },
    { verdicts: ['pass', 'fail', 'warn'] as const, ok: false },
    { verdicts: [] as const, ok: true },
  ])('$verdicts → ok $ok', ({ verdicts, ok }) => {
    expect(doctorReport(verdicts.map(c)).ok).toBe(ok);
  });
});

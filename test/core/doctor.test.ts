import { describe, expect, it } from 'vitest';
import type { DoctorCheck, HealthReply } from '../../src/contract/index.js';
import {
  type BridgeFacts,
  type DaemonFacts,
  type DirFacts,
  type SocketFacts,
  bridgeCheck,
  composeCheck,
  configChecks,
  daemonCheck,
  dockerCheck,
  doctorReport,
  formatBytes,
  infraCheck,
  memoryCheck,
  parseMemTotal,
  poolDirCheck,
  projectCheck,
  sizingCheck,
  socketCheck,
  suggestMemoryBudget,
} from '../../src/core/doctor.js';
import { parseDockerSize } from '../../src/drivers/compose-reads.js';

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;

describe('suggestMemoryBudget: MemTotal less MEMORY_RESERVE, as MEMORY_BUDGET=auto computes it', () => {
  it.each([
    { total: 8 * GiB, reserve: 2 * GiB, suggested: 6 * GiB },
    { total: 4 * GiB, reserve: 2 * GiB, suggested: 2 * GiB },
    { total: 1 * GiB, reserve: 2 * GiB, suggested: 0 },
  ])('$total less $reserve → $suggested', ({ total, reserve, suggested }) => {
    expect(suggestMemoryBudget(total, reserve)).toBe(suggested);
  });
});

describe('sizingCheck: a MEMORY_BUDGET suggestion, and how many agents of the measured size it fits', () => {
  const facts = { reserveBytes: 2 * GiB, defaultBytes: 330 * MiB, unmeasured: 'no agent running to measure', budget: undefined, maxAgents: 3 };
  it.each([
    {
      rule: 'passes an unset budget, suggesting one from the mean of the measured agents',
      facts: { ...facts, totalBytes: 8 * GiB, samples: [300 * MiB, 500 * MiB] },
      verdict: 'pass',
      detail:
        'suggested MEMORY_BUDGET=6144M (MemTotal 8 GiB − MEMORY_RESERVE 2 GiB, what MEMORY_BUDGET=auto computes; it fits 15 agents at 400 MiB per agent (mean of 2 measured)); MEMORY_BUDGET unset: only MAX_AGENTS=3 limits the pool',
      figures: { suggested_budget_bytes: 6 * GiB, per_agent_bytes: 400 * MiB, measured_agents: 2, fits_agents: 15, configured_budget: null, max_agents: 3 },
    },
    {
      rule: 'counts agents at AGENT_MEMORY_DEFAULT when none is measured, and passes auto',
      facts: { ...facts, totalBytes: 4 * GiB, samples: [0], budget: 'auto' as const },
      verdict: 'pass',
      detail:
        'suggested MEMORY_BUDGET=2048M (MemTotal 4 GiB − MEMORY_RESERVE 2 GiB, what MEMORY_BUDGET=auto computes; it fits 6 agents at 330 MiB per agent (AGENT_MEMORY_DEFAULT; no agent running to measure)); MEMORY_BUDGET=auto',
      figures: { per_agent_bytes: 330 * MiB, measured_agents: 0, fits_agents: 6, configured_budget: 'auto' },
    },
    {
      rule: 'warns about a budget above the host’s memory less its reserve',
      facts: { ...facts, totalBytes: 4 * GiB, samples: [GiB], budget: 3 * GiB },
      verdict: 'warn',
      detail:
        "MEMORY_BUDGET=3 GiB is above the host's memory less its reserve: suggested MEMORY_BUDGET=2048M (MemTotal 4 GiB − MEMORY_RESERVE 2 GiB, what MEMORY_BUDGET=auto computes; it fits 2 agents at 1 GiB per agent (mean of 1 measured))",
      figures: { fits_agents: 2, configured_budget: 3 * GiB },
    },
    {
      rule: 'warns when not one agent fits',
      facts: { ...facts, totalBytes: 2 * GiB, samples: [] },
      verdict: 'warn',
      detail:
        'no room for an agent: suggested MEMORY_BUDGET=0M (MemTotal 2 GiB − MEMORY_RESERVE 2 GiB, what MEMORY_BUDGET=auto computes; it fits 0 agents at 330 MiB per agent (AGENT_MEMORY_DEFAULT; no agent running to measure))',
      figures: { suggested_budget_bytes: 0, fits_agents: 0 },
    },
  ])('$rule', ({ facts: f, verdict, detail, figures }) => {
    const result = sizingCheck(f);
    expect(result.check).toEqual({ check: 'sizing', verdict, detail });
    expect(result.figures).toMatchObject({ ...figures, total_bytes: f.totalBytes, reserve_bytes: 2 * GiB });
  });

  it('is skipped when the host memory cannot be read', () => {
    expect(sizingCheck({ ...facts, totalBytes: undefined, samples: [GiB] })).toEqual({ check: { check: 'sizing', verdict: 'skip', detail: "cannot read the host's memory (/proc/meminfo)" } });
  });
});

describe('memoryCheck: the daemon’s memory figures, under a budget', () => {
  const agent = (id: string, memory: Record<string, number>) => ({ id, started: '2026-02-28T05:00:00Z', last_active: '2026-02-28T05:00:00Z', requested_by: 'ceo', state: 'running' as const, protection: null, ...memory });
  const status = (used: number, running: ReturnType<typeof agent>[] = []) => ({ running, slots_total: 3, slots_free: 1, queue: [], memory_budget_bytes: 150 * MiB, memory_used_bytes: used * MiB, memory_free_bytes: Math.max(0, 150 - used) * MiB });
  it.each([
    {
      what: 'the budget used and free, and each agent’s now / peak / expected',
      status: status(125, [agent('a', { memory_bytes: 60 * MiB, memory_peak_bytes: 61 * MiB, memory_expected_bytes: 61 * MiB }), agent('b', { memory_expected_bytes: 64 * MiB })]),
      check: { check: 'memory', verdict: 'pass', detail: '125 MiB of the 150 MiB budget used, 25 MiB free; now / peak / expected: a 60 MiB / 61 MiB / 61 MiB, b - / - / 64 MiB' },
    },
    { what: 'a warning when the pool is over its budget', status: status(160), check: { check: 'memory', verdict: 'warn', detail: 'over the budget: 160 MiB of the 150 MiB budget used, 0 B free' } },
    { what: 'nothing without a budget', status: { running: [], slots_total: 3, slots_free: 3, queue: [] }, check: undefined },
    { what: 'nothing without a daemon', status: undefined, check: undefined },
  ])('$what', ({ status: s, check }) => {
    expect(memoryCheck(s)).toEqual(check);
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

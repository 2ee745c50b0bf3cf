import { chmod, chown, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, describeUnknownVariable, loadConfig, parseEnvFile, redactConfig, reloadConfig, socketFromEnvFile, unknownVariables } from '../../src/contract/index.js';
import { readConfig } from '../../src/daemon/config.js';
import { useTempDir } from '../support/tmp.js';

describe('parseEnvFile reads what systemd EnvironmentFile= reads', () => {
  it.each([
    { what: 'plain assignments', text: 'MAX_AGENTS=4\nPOOL_PORT=19001\n', expected: { MAX_AGENTS: '4', POOL_PORT: '19001' } },
    { what: 'comment lines with # and ;', text: '# sizing\n; old style\nMAX_AGENTS=2', expected: { MAX_AGENTS: '2' } },
    { what: 'blank lines and surrounding spaces', text: '\n   \n  MAX_AGENTS = 5  \n', expected: { MAX_AGENTS: '5' } },
    { what: 'double quotes with escapes', text: 'POOL_TOKEN="a \\"b\\" c"', expected: { POOL_TOKEN: 'a "b" c' } },
    { what: 'single quotes taken literally', text: "POOL_TOKEN='x\\y z'", expected: { POOL_TOKEN: 'x\\y z' } },
    { what: 'no inline comments, as systemd', text: 'POOL_TOKEN=abc # not a comment', expected: { POOL_TOKEN: 'abc # not a comment' } },
    { what: 'continuation lines', text: 'INFRA_SERVICES=gateway,\\\nlitellm', expected: { INFRA_SERVICES: 'gateway,litellm' } },
    { what: 'an export prefix left from a sourced file', text: 'export MAX_AGENTS=3', expected: { MAX_AGENTS: '3' } },
    { what: 'CRLF line ends', text: 'MAX_AGENTS=3\r\nPOOL_PORT=1\r\n', expected: { MAX_AGENTS: '3', POOL_PORT: '1' } },
    { what: 'an empty value', text: 'PINNED_AGENTS=', expected: { PINNED_AGENTS: '' } },
  ])('parses $what', ({ text, expected }) => {
    expect(parseEnvFile(text)).toEqual(expected);
  });

  it.each([
    { what: 'a line without =', text: 'MAX_AGENTS 3', message: 'pool.env:1: expected KEY=VALUE' },
    { what: 'an unterminated quote', text: '\nPOOL_TOKEN="abc', message: 'pool.env:2: POOL_TOKEN has an unterminated quote' },
  ])('rejects $what with the line number', ({ text, message }) => {
    expect(() => parseEnvFile(text)).toThrow(message);
  });
});

describe('loadConfig', () => {
  it('applies the defaults of SPEC §6', () => {
    expect(loadConfig({ cwd: '/srv/agents' })).toEqual({
      maxAgents: 3,
      port: 19000,
      bind: undefined,
      evictGraceSeconds: 60,
      syncIntervalSeconds: 15,
      heartbeatIntervalSeconds: 30,
      composeDir: '/srv/agents',
      composeProject: undefined,
      poolDir: '/srv/agents/pool',
      maxBodySize: 4096,
      socketPath: '/run/openclaw-pool/pool.sock',
      socketGroup: undefined,
      infraServices: ['gateway', 'litellm', 'ollama'],
      pinnedAgents: [],
      stopTimeoutSeconds: 10,
      token: undefined,
      logFile: undefined,
      dockerBin: 'docker',
      driver: 'compose',
      processRoster: '/srv/agents/agents.json',
      swarmStack: undefined,
      busyMaxSeconds: 3600,
      queueMax: 100,
      readyTimeoutSeconds: 120,
      eventLogMaxBytes: 10485760,
      eventLogFiles: 5,
      memoryBudget: undefined,
      memoryReserve: 2 * 1024 ** 3,
      memoryPressureMin: undefined,
      agentMemoryDefault: 330 * 1024 ** 2,
      activityMode: 'heartbeat',
      activeCpuPercent: 5,
      activeNetBytes: 64 * 1024,
      callerPolicy: undefined,
      activityMarks: 'on',
      idleStopSeconds: undefined,
    });
  });

  it.each([
    { raw: '6G', bytes: 6 * 1024 ** 3 },
    { raw: '5500M', bytes: 5500 * 1024 ** 2 },
    { raw: '330MiB', bytes: 330 * 1024 ** 2 },
    { raw: '1.5g', bytes: 1.5 * 1024 ** 3 },
    { raw: '2147483648', bytes: 2147483648 },
    { raw: 'auto', bytes: 'auto' },
  ])('reads MEMORY_BUDGET=$raw as $bytes', ({ raw, bytes }) => {
    expect(loadConfig({ cwd: '/', env: { MEMORY_BUDGET: raw } }).memoryBudget).toBe(bytes);
  });

  it('stops at a memory size it cannot read, naming the variable', () => {
    expect(() => loadConfig({ cwd: '/', env: { MEMORY_RESERVE: '2 gigs' } })).toThrow(/MEMORY_RESERVE="2 gigs": expected a size in bytes/);
  });

  it('lets the environment override the file', () => {
    const config = loadConfig({ cwd: '/', file: { MAX_AGENTS: '2', POOL_PORT: '1900' }, env: { MAX_AGENTS: '5' } });
    expect([config.maxAgents, config.port]).toEqual([5, 1900]);
  });

  it('puts POOL_DIR under COMPOSE_DIR unless set', () => {
    expect(loadConfig({ cwd: '/', file: { COMPOSE_DIR: '/srv/x/' } }).poolDir).toBe('/srv/x/pool');
    expect(loadConfig({ cwd: '/', file: { COMPOSE_DIR: '/srv/x', POOL_DIR: '/var/lib/pool' } }).poolDir).toBe('/var/lib/pool');
  });

  it('parses lists, and an empty list on purpose', () => {
    const config = loadConfig({ cwd: '/', env: { INFRA_SERVICES: '', PINNED_AGENTS: ' ceo , cto ', POOL_BIND: '127.0.0.1,::1' } });
    expect([config.infraServices, config.pinnedAgents, config.bind]).toEqual([[], ['ceo', 'cto'], ['127.0.0.1', '::1']]);
  });

  it('takes the swarm driver with its stack', () => {
    expect(loadConfig({ cwd: '/', env: { POOL_DRIVER: 'swarm', SWARM_STACK: 'openclaw' } })).toMatchObject({ driver: 'swarm', swarmStack: 'openclaw' });
  });

  it('treats an empty scalar as unset', () => {
    expect(loadConfig({ cwd: '/', env: { MAX_AGENTS: '', POOL_TOKEN: '' } })).toMatchObject({ maxAgents: 3, token: undefined });
  });

  it.each([
    { env: { MAX_AGENTS: 'three' }, names: 'MAX_AGENTS="three"' },
    { env: { MAX_AGENTS: '0' }, names: 'MAX_AGENTS="0": expected at least 1' },
    { env: { MAX_AGENTS: '2.5' }, names: 'MAX_AGENTS="2.5": expected a whole number' },
    { env: { POOL_PORT: '70000' }, names: 'POOL_PORT="70000"' },
    { env: { EVICT_GRACE_SECONDS: '-1' }, names: 'EVICT_GRACE_SECONDS="-1"' },
    { env: { POOL_BIND: '0.0.0.0,localhost' }, names: 'POOL_BIND="0.0.0.0,localhost": expected comma-separated IP addresses' },
    { env: { PINNED_AGENTS: 'ceo,bad name' }, names: 'PINNED_AGENTS="ceo,bad name"' },
    { env: { PINNED_AGENTS: 'gateway' }, names: 'PINNED_AGENTS="gateway": gateway also in INFRA_SERVICES' },
    { env: { COMPOSE_PROJECT: 'My Project' }, names: 'COMPOSE_PROJECT="My Project"' },
    { env: { POOL_DRIVER: 'kubernetes' }, names: 'POOL_DRIVER="kubernetes": expected compose, swarm or process' },
    { env: { POOL_DRIVER: 'swarm' }, names: 'SWARM_STACK is required with POOL_DRIVER=swarm' },
    { env: { POOL_DRIVER: 'swarm', SWARM_STACK: 'my stack' }, names: 'SWARM_STACK="my stack": expected a stack name' },
  ])('stops with a message naming the variable and the value: $names', ({ env, names }) => {
    expect(() => loadConfig({ cwd: '/', env })).toThrow(ConfigError);
    expect(() => loadConfig({ cwd: '/', env })).toThrow(names);
  });

  it('reports every bad variable at once', () => {
    const attempt = () => loadConfig({ cwd: '/', env: { MAX_AGENTS: 'x', POOL_PORT: 'y' } });
    expect(attempt).toThrow(expect.objectContaining({ problems: [expect.stringMatching(/^MAX_AGENTS/), expect.stringMatching(/^POOL_PORT/)] }));
  });
});

describe('a reload', () => {
  const running = loadConfig({ cwd: '/srv/agents', env: { MAX_AGENTS: '3', POOL_PORT: '19000' } });

  it('applies what it can change and keeps, and names, what needs a restart', () => {
    const next = loadConfig({ cwd: '/srv/agents', env: { MAX_AGENTS: '5', POOL_TOKEN: 'new', POOL_PORT: '19001', POOL_BIND: '127.0.0.1', LOG_FILE: '/var/log/pool.log' } });
    const reloaded = reloadConfig(running, next);
    expect(reloaded.config).toMatchObject({ maxAgents: 5, token: 'new', port: 19000, bind: undefined, logFile: undefined });
    expect(reloaded.unapplied).toEqual(['port', 'bind', 'logFile']);
  });

  it('names nothing when only what it can change changed', () => {
    const next = loadConfig({ cwd: '/srv/agents', env: { MAX_AGENTS: '1', PINNED_AGENTS: 'ceo', EVICT_GRACE_SECONDS: '5' } });
    expect(reloadConfig(running, next)).toEqual({ config: next, unapplied: [] });
  });
});

describe('the config view', () => {
  it('shows a secret only as set, and every other value as it is', () => {
    const config = loadConfig({ cwd: '/srv/agents', env: { POOL_TOKEN: 's3cret', MAX_AGENTS: '4' } });
    expect(redactConfig(config)).toEqual({ ...config, token: '(set)' });
    expect(JSON.stringify(redactConfig(config))).not.toContain('s3cret');
  });

  it('keeps an unset secret unset', () => {
    const view = redactConfig(loadConfig({ cwd: '/srv/agents' }));
    expect(view).toHaveProperty('token', undefined);
  });
});

describe('pool.env.example', () => {
  it('parses with the daemon’s own parser, validates, and documents every variable', async () => {
    const { readFile } = await import('node:fs/promises');
    const text = await readFile(new URL('../../pool.env.example', import.meta.url), 'utf8');
    expect(() => loadConfig({ cwd: '/', file: parseEnvFile(text, 'pool.env.example') })).not.toThrow();
    const { POOL_VARIABLES } = await import('../../src/contract/index.js');
    for (const name of POOL_VARIABLES) expect(text, name).toMatch(new RegExp(`^#?${name}=`, 'm'));
  });
});

describe('unknown variables in pool.env', () => {
  it.each([
    { name: 'MAX_AGNETS', closest: 'MAX_AGENTS' },
    { name: 'EVICT_GRACE_SECOND', closest: 'EVICT_GRACE_SECONDS' },
    { name: 'POOL_SOKET', closest: 'POOL_SOCKET' },
    { name: 'sync_interval', closest: undefined },
    { name: 'AGENT_MEMORY_MB', closest: undefined },
    { name: 'SOCAT_OPTS', closest: undefined },
  ])('$name is reported, nearest known variable: $closest', ({ name, closest }) => {
    expect(unknownVariables({ MAX_AGENTS: '3', [name]: '1' })).toEqual([{ name, closest }]);
  });

  it('reports nothing for a file of known variables, nor for the Docker client variables the CLI reads', () => {
    expect(unknownVariables({ MAX_AGENTS: '3', POOL_DIR: '/srv/pool', DOCKER_HOST: 'unix:///run/docker.sock', POOL_ENV: '/etc/x' })).toEqual([]);
  });

  it('says what is ignored and what was probably meant, and the file still loads', () => {
    const file = parseEnvFile('MAX_AGNETS=1\n');
    expect(unknownVariables(file).map((v) => describeUnknownVariable(v, '/etc/openclaw-pool/pool.env'))).toEqual([
      '/etc/openclaw-pool/pool.env: MAX_AGNETS is not an openclaw-pool variable; ignored (did you mean MAX_AGENTS?)',
    ]);
    expect(loadConfig({ file, cwd: '/srv' }).maxAgents).toBe(3);
  });
});

describe("a client finds the socket in the daemon's pool.env", () => {
  const tempDir = useTempDir();
  it('reads POOL_SOCKET from $POOL_ENV, resolved against the working directory', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'pool.env'), 'MAX_AGENTS=2\nPOOL_SOCKET="run/p.sock"\n');
    expect(socketFromEnvFile({ POOL_ENV: join(dir, 'pool.env') }, dir)).toBe(join(dir, 'run/p.sock'));
  });

  it('finds nothing in a file that does not set it, one it cannot read, or one that does not parse', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'plain.env'), 'MAX_AGENTS=2\n');
    await writeFile(join(dir, 'broken.env'), 'POOL_SOCKET="unterminated\n');
    expect(socketFromEnvFile({ POOL_ENV: join(dir, 'plain.env') }, dir)).toBeUndefined();
    expect(socketFromEnvFile({ POOL_ENV: join(dir, 'missing.env') }, dir)).toBeUndefined();
    expect(socketFromEnvFile({ POOL_ENV: join(dir, 'broken.env') }, dir)).toBeUndefined();
  });
});

describe('readConfig refuses a pool.env that others could change', () => {
  const tempDir = useTempDir();
  const asRoot = process.getuid?.() === 0;
  const envFile = async (mode: number) => {
    const file = join(await tempDir(), 'pool.env');
    await writeFile(file, 'MAX_AGENTS=4\n');
    await chmod(file, mode);
    return file;
  };
  const read = (file: string) => readConfig({ envFile: file, env: {}, cwd: '/srv/agents' });

  it.each([
    { mode: 0o664, who: 'its group' },
    { mode: 0o646, who: 'others' },
    { mode: 0o666, who: 'its group and others' },
  ])('refuses one writable by $who (mode $mode), naming the file', async ({ mode, who }) => {
    const file = await envFile(mode);
    await expect(read(file)).rejects.toThrow(ConfigError);
    await expect(read(file)).rejects.toThrow(`${file}: writable by ${who} (mode 0${mode.toString(8)}); run chmod go-w on it`);
  });

  it.skipIf(!asRoot)('refuses one owned by a user who is neither root nor the daemon', async () => {
    const file = await envFile(0o644);
    await chown(file, 1234, 0);
    await expect(read(file)).rejects.toThrow(`${file}: owned by uid 1234, neither root nor this daemon's user`);
  });

  it.each([0o644, 0o640, 0o600])('reads one only its owner may write (mode %o)', async (mode) => {
    expect((await read(await envFile(mode))).config.maxAgents).toBe(4);
  });

  it('reads /dev/null, writable by all but no file anyone keeps a configuration in', async () => {
    expect((await read('/dev/null')).config.maxAgents).toBe(3);
  });
});

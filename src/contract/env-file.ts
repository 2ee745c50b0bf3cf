import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

/**
 * pool.env's syntax, apart from the variables' meaning (config.ts): poolctl reads the socket's path
 * from it without loading zod.
 */

/** Where pool.env is looked for when neither --config nor POOL_ENV names it, in this order. */
export const DEFAULT_ENV_FILES = ['./pool.env', '/etc/openclaw-pool/pool.env'];

export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

// ---- the file format: systemd's EnvironmentFile= syntax, which the same pool.env serves ----

/**
 * Parses `KEY=VALUE` lines as systemd's `EnvironmentFile=` reads them: `#` and `;` start comment
 * lines, values may be single- or double-quoted (double quotes take backslash escapes), a trailing
 * backslash continues the line, and there are no inline comments. A leading `export ` is accepted
 * for files once sourced by the earlier bash manager.
 */
export function parseEnvFile(text: string, source = 'pool.env'): Record<string, string> {
  const values: Record<string, string> = {};
  const problems: string[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    let line = lines[i] ?? '';
    // Unquoted continuation lines join before parsing, as systemd does.
    while (line.endsWith('\\') && !/^\s*[#;]/.test(line) && i + 1 < lines.length) {
      line = line.slice(0, -1) + (lines[++i] ?? '');
    }
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#') || trimmed.startsWith(';')) continue;
    const match = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(trimmed);
    if (!match) {
      problems.push(`${source}:${lineNo}: expected KEY=VALUE, got ${JSON.stringify(trimmed)}`);
      continue;
    }
    const [, key, raw] = match as unknown as [string, string, string];
    const value = unquote(raw);
    if (value === undefined) {
      problems.push(`${source}:${lineNo}: ${key} has an unterminated quote`);
      continue;
    }
    values[key] = value;
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return values;
}

function unquote(raw: string): string | undefined {
  if (raw.startsWith("'")) {
    const end = raw.indexOf("'", 1);
    return end === -1 ? undefined : raw.slice(1, end);
  }
  if (raw.startsWith('"')) {
    let out = '';
    for (let i = 1; i < raw.length; i++) {
      const ch = raw[i];
      if (ch === '"') return out;
      if (ch === '\\' && i + 1 < raw.length) out += raw[++i];
      else out += ch;
    }
    return undefined;
  }
  return raw.trimEnd();
}

/**
 * POOL_SOCKET as the daemon would read it from its pool.env ($POOL_ENV, ./pool.env, then
 * /etc/openclaw-pool/pool.env), so that a client finds a daemon whose socket was moved there
 * without being told; undefined when no readable file sets it (the file is 0640: a socket-group
 * member who cannot read it gets the default).
 */
export function socketFromEnvFile(env: NodeJS.ProcessEnv, cwd: string): string | undefined {
  const candidates = env.POOL_ENV ? [env.POOL_ENV] : DEFAULT_ENV_FILES;
  for (const candidate of candidates) {
    let text: string;
    try {
      text = readFileSync(resolve(cwd, candidate), 'utf8');
    } catch {
      continue;
    }
    try {
      const socket = parseEnvFile(text, candidate).POOL_SOCKET;
      return socket ? resolve(cwd, socket) : undefined;
    } catch {
      // An unparsable file: the daemon refuses it too, and says why; the default is as good a guess.
      return undefined;
    }
  }
  return undefined;
}

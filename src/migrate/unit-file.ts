/**
 * What migrate needs to know of a systemd unit file: `Section.Key` → values in order, read the way
 * systemd reads them (comment lines, backslash continuations, and an empty assignment such as
 * `ExecStop=` clearing the list before it).
 */
export function parseUnit(text: string): ReadonlyMap<string, readonly string[]> {
  const keys = new Map<string, string[]>();
  let section = '';
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    let line = (lines[i] ?? '').trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    while (line.endsWith('\\') && i + 1 < lines.length) line = `${line.slice(0, -1)} ${(lines[++i] ?? '').trim()}`;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      section = header[1] as string;
      continue;
    }
    const pair = /^([A-Za-z0-9]+)\s*=\s*(.*)$/.exec(line);
    if (!pair) continue;
    const key = `${section}.${pair[1]}`;
    const value = pair[2] as string;
    keys.set(key, value === '' ? [] : [...(keys.get(key) ?? []), value]);
  }
  return keys;
}

/** The setting that is in force: systemd's last assignment of `key` (`Section.Key`) wins. */
export function lastSetting(unit: ReadonlyMap<string, readonly string[]>, key: string): string | undefined {
  return unit.get(key)?.at(-1);
}

/** The program an `ExecStart=` line runs, without systemd's `-@:+!` prefixes. */
export function execProgram(execLine: string): string {
  return execLine.replace(/^[-@:+!]+/, '').trim().split(/\s+/)[0] ?? '';
}

/** `Environment=A=1 "B=two words"` → {A: '1', B: 'two words'}, as systemd splits it. */
export function parseEnvironmentLines(lines: readonly string[]): Record<string, string> {
  const values: Record<string, string> = {};
  for (const line of lines) {
    for (const [, quoted, bare] of line.matchAll(/"((?:[^"\\]|\\.)*)"|(\S+)/g)) {
      const assignment = quoted === undefined ? (bare as string) : quoted.replace(/\\(.)/g, '$1');
      const eq = assignment.indexOf('=');
      if (eq > 0) values[assignment.slice(0, eq)] = assignment.slice(eq + 1);
    }
  }
  return values;
}

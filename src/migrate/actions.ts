/**
 * The steps of a migration (and of its rollback) as data: the executor carries them out, and the
 * same list renders as the shell commands that `--dry-run` prints and `ROLLBACK` holds, so what a
 * user reads is what runs.
 */
export type Action =
  /** Create a directory (and its parents) if missing. */
  | { readonly kind: 'mkdir'; readonly path: string; readonly mode: number }
  /** Replace a file atomically and durably (temp file, fsync, rename, fsync of the directory). */
  | { readonly kind: 'write'; readonly path: string; readonly text: string; readonly mode: number; /** What a dry run shows instead (secrets masked). */ readonly shown?: string }
  /**
   * Keep a copy of a file migrate has already read: the bytes it read and showed are written, so a
   * file a container swaps for a symlink after the plan is never followed.
   */
  | { readonly kind: 'save'; readonly from: string; readonly to: string; readonly text: string; readonly mode: number }
  /** Copy a trusted file (the shipped unit, a backup) into place, durably; an owner only in the rollback's shell text. */
  | { readonly kind: 'install'; readonly from: string; readonly to: string; readonly mode: number; readonly owner?: { readonly uid: number; readonly gid: number } }
  /** Remove a file if it is there. */
  | { readonly kind: 'remove'; readonly path: string }
  /** Remove a directory if it is there and empty. */
  | { readonly kind: 'rmdir'; readonly path: string }
  | { readonly kind: 'systemctl'; readonly args: readonly string[] }
  /** A script of the install, run with this Node. */
  | { readonly kind: 'node'; readonly script: string; readonly args: readonly string[] }
  /**
   * If the unit is active, SIGKILL every process in its cgroup and wait until systemd has seen them
   * go. The agents are not in that cgroup (they are Docker's), so they keep running.
   */
  | { readonly kind: 'kill'; readonly unit: string }
  /** Wait for the new daemon to answer on its socket and compare its running agents with these. */
  | { readonly kind: 'check-agents'; readonly socket: string; readonly agents: readonly string[] };

export function octal(mode: number): string {
  return `0${mode.toString(8)}`;
}

export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_/.:=@%+,-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}

/** The action as the sh commands that do the same. */
export function renderShell(action: Action): string {
  const q = shellQuote;
  switch (action.kind) {
    case 'mkdir':
      return `mkdir -p -m ${octal(action.mode)} ${q(action.path)}`;
    case 'write': {
      const text = action.shown ?? action.text;
      // A terminator the text does not hold: ROLLBACK, written by one, holds another.
      let end = 'EOF';
      while (text.includes(end)) end += '_';
      return `cat > ${q(action.path)} <<'${end}'\n${text.replace(/\n$/, '')}\n${end}\nchmod ${octal(action.mode)} ${q(action.path)}`;
    }
    case 'save':
    case 'install': {
      const owner = action.kind === 'install' && action.owner ? ` -o ${action.owner.uid} -g ${action.owner.gid}` : '';
      return `install -m ${octal(action.mode)}${owner} ${q(action.from)} ${q(action.to)}`;
    }
    case 'remove':
      return `rm -f ${q(action.path)}`;
    case 'rmdir':
      return `rmdir ${q(action.path)} 2>/dev/null || true`;
    case 'systemctl':
      return ['systemctl', ...action.args].map(q).join(' ');
    case 'node':
      return ['node', action.script, ...action.args].map(q).join(' ');
    case 'kill': {
      const unit = q(action.unit);
      return `if systemctl -q is-active ${unit}; then\n  systemctl kill --kill-whom=all --signal=SIGKILL ${unit}\n  while systemctl -q is-active ${unit}; do sleep 0.2; done\nfi`;
    }
    case 'check-agents':
      return `poolctl --socket ${q(action.socket)} status   # expect: ${action.agents.join(', ') || 'no agents'}`;
  }
}

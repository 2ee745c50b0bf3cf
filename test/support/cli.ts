import { spawn } from 'node:child_process';

export const POOLCTL = new URL('../../dist/poolctl.mjs', import.meta.url).pathname;

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the built poolctl as a real process (no colours, no TTY), as `user` (in `group`, when given) if set. */
export function poolctl(args: string[], options: { env?: Record<string, string>; user?: string; group?: string } = {}): Promise<CliRun> {
  const argv = [POOLCTL, ...args];
  const as = options.group === undefined ? [] : ['-g', options.group];
  const [file, fileArgs] = options.user === undefined ? [process.execPath, argv] : ['runuser', ['-u', options.user, ...as, '--', process.execPath, ...argv]];
  return new Promise((resolve, reject) => {
    const child = spawn(file, fileArgs, { env: { ...process.env, NO_COLOR: '1', ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

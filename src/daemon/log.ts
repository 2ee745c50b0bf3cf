import { appendFile } from 'node:fs/promises';

export interface Logger {
  info(message: string): void;
  error(message: string): void;
}

/**
 * One readable line per event on stdout/stderr (journald keeps them), and the same lines appended
 * to LOG_FILE when set (rotated by logrotate; appends reopen the file, so rotation needs no signal).
 */
export function createLogger(options: { logFile?: string | undefined; clock: () => number }): Logger {
  let tail: Promise<void> = Promise.resolve();
  const write = (stream: NodeJS.WriteStream, message: string) => {
    const line = `${new Date(options.clock()).toISOString()} ${message}\n`;
    stream.write(line);
    if (options.logFile !== undefined) {
      const file = options.logFile;
      tail = tail.then(() => appendFile(file, line)).catch((error: Error) => {
        process.stderr.write(`cannot write LOG_FILE ${file}: ${error.message}\n`);
      });
    }
  };
  return {
    info: (message) => write(process.stdout, message),
    error: (message) => write(process.stderr, message),
  };
}

export function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

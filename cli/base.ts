import { Command, Option } from 'clipanion';
import { DaemonUnreachableError, PermissionDeniedError, PoolError, replyForError } from '../sdk/errors.js';
import { type PoolClient, createPoolClient } from '../sdk/client.js';
import { AGENT_NAME_PATTERN } from '../src/contract/pattern.js';

/** SPEC §4 exit codes. */
export const EXIT = { ok: 0, refused: 1, usage: 2, unreachable: 3 } as const;

/**
 * What every poolctl command shares: `--json`, `--socket`, a client made from them, and the one
 * place where errors become messages and exit codes (commands return codes, they never throw).
 */
export abstract class PoolCommand extends Command {
  json = Option.Boolean('--json', false, { description: 'Print the reply as JSON (for scripts)' });
  socket = Option.String('--socket', { description: "The daemon socket (default: $POOL_SOCKET, then POOL_SOCKET in the daemon's pool.env, then /run/openclaw-pool/pool.sock)" });

  #client: PoolClient | undefined;

  protected get client(): PoolClient {
    this.#client ??= createPoolClient(this.socket === undefined ? {} : { socketPath: this.socket });
    return this.#client;
  }

  protected abstract run(): Promise<number>;

  async execute(): Promise<number> {
    try {
      return await this.run();
    } catch (error) {
      return this.fail(error);
    } finally {
      this.#client?.close();
    }
  }

  /** Ends a long-running command cleanly: Ctrl-C or SIGTERM aborts `controller` until the returned function is called. */
  protected abortOnSignals(controller: AbortController): () => void {
    const stop = () => controller.abort();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    return () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
    };
  }

  protected print(text: string): void {
    this.context.stdout.write(`${text}\n`);
  }

  protected printJson(value: unknown): void {
    this.context.stdout.write(`${JSON.stringify(value)}\n`);
  }

  protected warn(text: string): void {
    this.context.stderr.write(`${text}\n`);
  }

  /** A name the daemon would refuse is a usage error, caught before any connection is made. */
  protected checkName(agent: string): boolean {
    if (AGENT_NAME_PATTERN.test(agent)) return true;
    this.warn(`poolctl: invalid agent name ${JSON.stringify(agent)}: 1-255 letters, digits, '.', '_' or '-', starting with a letter or digit`);
    return false;
  }

  protected fail(error: unknown, agent = ''): number {
    if (error instanceof DaemonUnreachableError || error instanceof PermissionDeniedError) {
      this.warn(`poolctl: ${error.message}`);
      return EXIT.unreachable;
    }
    if (error instanceof PoolError) {
      if (this.json) this.printJson(replyForError(error, agent) ?? { status: 'error', error: error.message });
      else this.warn(`poolctl: ${error.message}`);
      return EXIT.refused;
    }
    this.warn(`poolctl: ${error instanceof Error ? error.message : String(error)}`);
    return EXIT.refused;
  }
}

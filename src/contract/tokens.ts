import { createHash } from 'node:crypto';
import { ConfigError } from './env-file.js';
import { AGENT_NAME_PATTERN } from './pattern.js';

/**
 * POOL_TOKENS_FILE's syntax and the book of per-agent tokens made from it (issue 18): one
 * `<agent> <token>` pair per line, blank lines and `#` comment lines ignored. An entry may be named
 * `host`: a loopback caller then needs its token too.
 *
 * No message here quotes the file: a token pasted in the agent's column, or a line that is a bare
 * token, would end up in the journal. Problems name line numbers only.
 */

/** The entry that stands for the host (loopback callers: the operator, cron scripts). */
export const HOST_ENTRY = 'host';

/** Shorter tokens are refused: `tokens add` makes 43-character ones, and a hand-made `secret` is guessable. */
export const TOKEN_MIN_LENGTH = 16;

export interface TokenEntry {
  /** An agent's name, or HOST_ENTRY. */
  readonly agent: string;
  readonly token: string;
  /** Where it stands in the file, from 1. */
  readonly line: number;
}

/** The per-agent tokens, as the bridge asks them who a bearer is. It holds digests only, never a token. */
export interface TokenBook {
  /**
   * The entry `bearer` (the token of an `Authorization: Bearer` header) belongs to: an agent's name
   * or `host`; undefined for no token or one not in the book. Every entry is compared, in constant
   * time, whatever matches: the time taken tells neither the token nor which entry it is.
   */
  identify(bearer: string | undefined): string | undefined;
  /** The book has a `host` entry: a loopback POST without a token is then refused. */
  readonly hasHost: boolean;
  /** The agents with a token, in the file's order (`host` is not one). */
  readonly agents: readonly string[];
}

/** Every problem of the file at once, each as `<source>:<line>: …`; any problem throws ConfigError, so a bad file is never half applied. */
export function parseTokensFile(text: string, source: string): TokenEntry[] {
  const entries: TokenEntry[] = [];
  const problems: string[] = [];
  const agentLines = new Map<string, number>();
  const tokenLines = new Map<string, number>();
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = index + 1;
    const trimmed = raw.trim();
    if (trimmed === '' || trimmed.startsWith('#')) return;
    const fields = trimmed.split(/\s+/);
    const problem = (what: string) => problems.push(`${source}:${line}: ${what}`);
    if (fields.length !== 2) return problem(`expected "<agent> <token>", two words separated by blanks, found ${fields.length}`);
    const [agent, token] = fields as [string, string];
    if (!AGENT_NAME_PATTERN.test(agent)) return problem("the agent's name is not valid: expected 1-255 characters of letters, digits, '.', '_' or '-', starting with a letter or digit");
    if (token.length < TOKEN_MIN_LENGTH) return problem(`the token is shorter than ${TOKEN_MIN_LENGTH} characters; make one with: openclaw-pool tokens add --replace <agent>`);
    const sameAgent = agentLines.get(agent);
    if (sameAgent !== undefined) return problem(`the same agent as line ${sameAgent}: one token per agent`);
    const sameToken = tokenLines.get(token);
    if (sameToken !== undefined) return problem(`the same token as line ${sameToken}: a token must name one agent`);
    agentLines.set(agent, line);
    tokenLines.set(token, line);
    entries.push({ agent, token, line });
  });
  if (problems.length > 0) throw new ConfigError(problems);
  return entries;
}

/** sha256 of a token: what the daemon keeps and compares, so that no token is held, and every compared value is 32 bytes (timingSafeEqual needs equal lengths; a length shows in no timing). */
export function tokenDigest(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}

export function createTokenBook(entries: readonly TokenEntry[]): TokenBook {
  // Looked up by the presented token's digest, never by the token: how far a lookup gets tells at
  // most how much of a sha256 digest matched, which says nothing of any token (finding a token for
  // a digest is what sha256 makes infeasible). One hash and one lookup, whatever the book's size:
  // comparing the digest with every entry cost 3.5 µs a request at 50 tokens (bench/callers.ts).
  const owners = new Map(entries.map((entry) => [tokenDigest(entry.token).toString('base64'), entry.agent]));
  return {
    identify(bearer) {
      return bearer === undefined ? undefined : owners.get(tokenDigest(bearer).toString('base64'));
    },
    hasHost: entries.some((entry) => entry.agent === HOST_ENTRY),
    agents: entries.filter((entry) => entry.agent !== HOST_ENTRY).map((entry) => entry.agent),
  };
}

/**
 * The file's text with `agent`'s line set to `token`: in place of its line when it has one,
 * appended otherwise. Comments and other lines stay as they were.
 */
export function withToken(text: string, entries: readonly TokenEntry[], agent: string, token: string): string {
  const existing = entries.find((entry) => entry.agent === agent);
  const lines = linesOf(text);
  if (existing === undefined) lines.push(`${agent} ${token}`);
  else lines[existing.line - 1] = `${agent} ${token}`;
  return textOf(lines);
}

/** The file's text without `agent`'s line. */
export function withoutToken(text: string, entries: readonly TokenEntry[], agent: string): string {
  const existing = entries.find((entry) => entry.agent === agent);
  return existing === undefined ? text : textOf(linesOf(text).filter((_, index) => index !== existing.line - 1));
}

/** The lines as `parseTokensFile` numbers them, without the empty one after a final newline. */
function linesOf(text: string): string[] {
  const lines = text.split(/\r?\n/);
  if (lines.at(-1) === '') lines.pop();
  return lines;
}

const textOf = (lines: readonly string[]) => lines.map((line) => `${line}\n`).join('');

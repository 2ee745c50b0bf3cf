import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/contract/env-file.js';
import { type TokenEntry, createTokenBook, parseTokensFile, withToken, withoutToken } from '../../src/contract/tokens.js';

const CEO = 'ceo-token-0123456789abcdef';
const CFO = 'cfo-token-0123456789abcdef';
const HOST = 'host-token-0123456789abcdef';
const SOURCE = 'POOL_TOKENS_FILE /etc/openclaw-pool/tokens';

const parse = (text: string) => parseTokensFile(text, SOURCE);
/** The problems a text is refused with. */
function problemsOf(text: string): readonly string[] {
  try {
    parse(text);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  throw new Error('the text was accepted');
}

describe('parseTokensFile', () => {
  it.each([
    { what: 'an empty file', text: '', entries: [] },
    { what: 'one pair', text: `ceo ${CEO}\n`, entries: [{ agent: 'ceo', token: CEO, line: 1 }] },
    { what: 'no final newline', text: `ceo ${CEO}`, entries: [{ agent: 'ceo', token: CEO, line: 1 }] },
    {
      what: 'comments, blank lines, tabs and CRLF, keeping line numbers',
      text: `# tokens\r\n\r\n  ceo\t${CEO}  \r\n   # cfo's comes later\r\ncfo    ${CFO}\r\n`,
      entries: [
        { agent: 'ceo', token: CEO, line: 3 },
        { agent: 'cfo', token: CFO, line: 5 },
      ],
    },
    { what: 'the entry named host', text: `host ${HOST}\n`, entries: [{ agent: 'host', token: HOST, line: 1 }] },
    { what: 'names with dots, dashes and underscores', text: `software-engineer.v2_x ${CEO}\n`, entries: [{ agent: 'software-engineer.v2_x', token: CEO, line: 1 }] },
    { what: 'a token with any non-blank characters (# included)', text: `ceo a#b/c+d=e:f!0123456789\n`, entries: [{ agent: 'ceo', token: 'a#b/c+d=e:f!0123456789', line: 1 }] },
  ])('reads $what', ({ text, entries }) => {
    expect(parse(text)).toEqual(entries);
  });

  it.each([
    { what: 'a bare token', text: `${CEO}\n`, problem: `${SOURCE}:1: expected "<agent> <token>", two words separated by blanks, found 1` },
    { what: 'three words (an inline comment)', text: `ceo ${CEO} # the boss\n`, problem: `${SOURCE}:1: expected "<agent> <token>", two words separated by blanks, found 5` },
    { what: 'an invalid agent name', text: `# x\n-ceo ${CEO}\n`, problem: `${SOURCE}:2: the agent's name is not valid: expected 1-255 characters of letters, digits, '.', '_' or '-', starting with a letter or digit` },
    { what: 'a short token', text: 'ceo 0123456789abcde\n', problem: `${SOURCE}:1: the token is shorter than 16 characters; make one with: openclaw-pool tokens add --replace <agent>` },
    { what: 'an agent twice', text: `ceo ${CEO}\n\nceo ${CFO}\n`, problem: `${SOURCE}:3: the same agent as line 1: one token per agent` },
    { what: 'a token twice', text: `ceo ${CEO}\ncfo ${CEO}\n`, problem: `${SOURCE}:2: the same token as line 1: a token must name one agent` },
  ])('refuses $what, naming the line', ({ text, problem }) => {
    expect(problemsOf(text)).toEqual([problem]);
  });

  it('refuses the whole file with every problem at once, and quotes no token', () => {
    const problems = problemsOf(`ceo ${CEO}\n${CFO}\nceo ${HOST}\n-x${HOST} ${CFO}\nhost xyzzy\n`);
    expect(problems.map((p) => p.slice(`${SOURCE}:`.length).split(':')[0])).toEqual(['2', '3', '4', '5']);
    for (const secret of [CEO, CFO, HOST, 'xyzzy']) expect(problems.join('\n')).not.toContain(secret);
  });
});

describe('TokenBook', () => {
  const book = createTokenBook(parse(`ceo ${CEO}\nhost ${HOST}\ncfo ${CFO}\n`));

  it.each([
    { what: "an agent's token", bearer: CEO, who: 'ceo' },
    { what: 'the last entry', bearer: CFO, who: 'cfo' },
    { what: "the host's token", bearer: HOST, who: 'host' },
    { what: 'a wrong token', bearer: 'not-a-token-0123456789', who: undefined },
    { what: 'a token one character short', bearer: CEO.slice(0, -1), who: undefined },
    { what: 'a token with one more character', bearer: `${CEO}x`, who: undefined },
    { what: 'an agent name for a token', bearer: 'ceo', who: undefined },
    { what: 'an empty token', bearer: '', who: undefined },
    { what: 'no token', bearer: undefined, who: undefined },
  ])('identifies $what as $who', ({ bearer, who }) => {
    expect(book.identify(bearer)).toBe(who);
  });

  it('lists the agents in the file order, and host apart', () => {
    expect(book.agents).toEqual(['ceo', 'cfo']);
    expect(book.hasHost).toBe(true);
    expect(createTokenBook(parse(`ceo ${CEO}\n`)).hasHost).toBe(false);
  });

  it('identifies nobody in an empty book', () => {
    const empty = createTokenBook([]);
    expect([empty.identify(CEO), empty.hasHost, empty.agents]).toEqual([undefined, false, []]);
  });

  it('keeps no token, only digests', () => {
    expect(JSON.stringify(book)).not.toContain(CEO);
    expect(JSON.stringify(book)).not.toContain(HOST);
  });

  it('takes no less time for a match on the first entry than for none: every entry is compared', () => {
    const entries: TokenEntry[] = Array.from({ length: 2000 }, (_, i) => ({ agent: `agent-${i}`, token: `token-${i}-0123456789abcdef`, line: i + 1 }));
    const large = createTokenBook(entries);
    const time = (bearer: string) => {
      const start = process.hrtime.bigint();
      for (let i = 0; i < 20; i++) large.identify(bearer);
      return Number(process.hrtime.bigint() - start);
    };
    // Warm up, then the best of a few runs each: the ratio is about 1 without an early exit, 2000 with one.
    time(entries[0]!.token);
    const best = (bearer: string) => Math.min(...Array.from({ length: 5 }, () => time(bearer)));
    const first = best(entries[0]!.token);
    const none = best('no-such-token-0123456789');
    expect(none / first).toBeLessThan(3);
    expect(large.identify(entries[0]!.token)).toBe('agent-0');
  });
});

describe('editing the file', () => {
  const text = `# the pool's tokens\nceo ${CEO}\n\nhost ${HOST}\n`;
  const entries = parse(text);

  it("appends an agent's token, keeping comments and blank lines", () => {
    expect(withToken(text, entries, 'cfo', CFO)).toBe(`${text}cfo ${CFO}\n`);
    expect(withToken('', [], 'cfo', CFO)).toBe(`cfo ${CFO}\n`);
    expect(withToken('# no final newline', [], 'cfo', CFO)).toBe(`# no final newline\ncfo ${CFO}\n`);
  });

  it("replaces an agent's token on its own line", () => {
    expect(withToken(text, entries, 'ceo', CFO)).toBe(`# the pool's tokens\nceo ${CFO}\n\nhost ${HOST}\n`);
  });

  it("removes an agent's line and only it", () => {
    expect(withoutToken(text, entries, 'ceo')).toBe(`# the pool's tokens\n\nhost ${HOST}\n`);
    expect(withoutToken(text, entries, 'cfo')).toBe(text);
  });

  it('writes what parses back to the same entries', () => {
    const edited = withoutToken(withToken(text, entries, 'cfo', CFO), parse(withToken(text, entries, 'cfo', CFO)), 'ceo');
    expect(parse(edited).map(({ agent, token }) => [agent, token])).toEqual([
      ['host', HOST],
      ['cfo', CFO],
    ]);
  });
});

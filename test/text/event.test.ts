import { describe, expect, it } from 'vitest';
import { formatEvent } from '../../src/text/event.js';

describe('formatEvent: the line poolctl events, the log and the page show', () => {
  it.each([
    [{ time: 't', type: 'started', agent: 'cfo', by: 'ceo' }, 'started cfo (by ceo)'],
    [{ time: 't', type: 'started', agent: 'cfo', by: 'ceo', via: 'peer' }, 'started cfo (by ceo via peer)'],
    [{ time: 't', type: 'evicted', agent: 'cto', by: 'ceo', via: 'token', for: 'cfo', reason: 'least recently active' }, 'evicted cto for cfo (by ceo via token; least recently active)'],
    [{ time: 't', type: 'released', agent: 'cto', by: 'operator', via: 'host' }, 'released cto (by operator via host)'],
  ] as const)('%j', (event, line) => {
    expect(formatEvent(event)).toBe(line);
  });
});

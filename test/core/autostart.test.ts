import { describe, expect, it } from 'vitest';
import { parseAutostart, planAutostart } from '../../src/core/index.js';
import { catalogue, pool, rules } from '../support/builders.js';

describe('parseAutostart', () => {
  it('reads one agent a line, with comments, blanks and repeats dropped', () => {
    const text = '# agents to start at boot\nceo\n\n  cto   # the tech lead\ncfo\nceo\n;bad name\r\nqa\n';
    expect(parseAutostart(text)).toEqual({ agents: ['ceo', 'cto', 'cfo', 'qa'], invalid: [{ line: 7, text: ';bad name' }] });
  });

  it('reads an empty file as no agents', () => {
    expect(parseAutostart('')).toEqual({ agents: [], invalid: [] });
  });
});

describe('planAutostart', () => {
  it('starts in list order until the pool is full, skipping what runs and what is not an agent', () => {
    const plan = planAutostart(['ceo', 'gateway', 'janitor', 'cto', 'cfo', 'qa', 'designer'], pool({ ceo: {} }), rules(), catalogue());
    expect(plan.start).toEqual(['cto', 'cfo']);
    expect(plan.skipped).toEqual([
      { agent: 'ceo', reason: 'already_running' },
      { agent: 'gateway', reason: 'infrastructure' },
      { agent: 'janitor', reason: 'unknown_agent' },
      { agent: 'qa', reason: 'pool_full' },
      { agent: 'designer', reason: 'pool_full' },
    ]);
  });

  it('counts starting and stopping agents as taken slots', () => {
    const plan = planAutostart(['cfo', 'qa'], pool({ ceo: { status: 'starting' }, cto: { status: 'stopping' } }), rules(), catalogue());
    expect(plan.start).toEqual(['cfo']);
  });
});

import { describe, expect, it } from 'vitest';
import { AgentView } from '../../src/contract/index.js';
import { statusView } from '../../src/core/index.js';
import { NOW, pool, rules } from '../support/builders.js';

describe('the status view', () => {
  it('shows the node of an agent whose node is known, and no node field for the others', () => {
    const status = statusView(pool({ ceo: { startedAgo: 20, node: 'pool-n1' }, cto: { startedAgo: 10 } }), NOW, rules());
    expect(status.running.map((a) => [a.id, a.node])).toEqual([['ceo', 'pool-n1'], ['cto', undefined]]);
    expect(status.running[1]).not.toHaveProperty('node');
    for (const agent of status.running) expect(AgentView.safeParse(agent).success).toBe(true);
  });
});

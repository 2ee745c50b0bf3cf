import { describe, expect, it } from 'vitest';
import { readProjectConfig } from '../../src/drivers/compose-definition.js';

describe('readProjectConfig: what the driver keeps of `docker compose config --format json`', () => {
  it('takes each agent’s memory limit in bytes from mem_limit, else deploy.resources.limits.memory', () => {
    // As compose 2.26 prints them: sizes as strings of bytes.
    const json = JSON.stringify({
      name: 'p',
      services: {
        a: { image: 'x', mem_limit: '314572800' },
        b: { image: 'x', deploy: { resources: { limits: { memory: '1073741824' } } } },
        c: { image: 'x', mem_limit: '314572800', deploy: { resources: { limits: { memory: '1073741824' } } } },
        d: { image: 'x', deploy: null },
      },
    });
    expect(readProjectConfig(json, []).memoryLimits).toEqual(new Map([['a', 314572800], ['b', 1073741824], ['c', 314572800]]));
  });
});

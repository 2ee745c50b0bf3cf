import { describe, expect, it } from 'vitest';
import { type Pressure, decidePressureStop, decideRequest, noPressure, samplePressure } from '../../src/core/index.js';
import { MiB, NOW, catalogue, pool, rules, statuses } from '../support/builders.js';

const MIN = 1000 * MiB;
/** MemAvailable readings in MiB, folded in one after the other from no pressure. */
const after = (readings: number[]): Pressure => readings.reduce((p, mib) => samplePressure(p, mib * MiB, MIN), noPressure);

describe('the pressure guard (MEMORY_PRESSURE_MIN of 1000 MiB)', () => {
  it.each([
    { rule: 'stays off after two low readings', readings: [900, 800], active: false },
    { rule: 'acts after three low readings in a row', readings: [900, 800, 950], active: true },
    { rule: 'starts counting again after a reading above the minimum', readings: [900, 800, 1001, 900, 900], active: false },
    { rule: 'keeps acting while MemAvailable is back above the minimum but within the margin', readings: [900, 900, 900, 1050], active: true },
    { rule: 'stands down once MemAvailable is above the minimum plus the margin (a tenth of it here)', readings: [900, 900, 900, 1050, 1101], active: false },
  ])('$rule', ({ readings, active }) => {
    expect(after(readings).active).toBe(active);
  });

  it('refuses every new start while it acts, whatever room there is, and still answers for running agents', () => {
    const state = { ...pool({ ceo: {} }), pressure: true as const };
    expect(decideRequest(state, { agent: 'cfo', requestedBy: 'ceo' }, NOW, rules(), catalogue())).toEqual({ kind: 'pool_full', reason: 'memory_pressure' });
    expect(decideRequest(state, { agent: 'ceo', requestedBy: 'cto' }, NOW, rules(), catalogue()).kind).toBe('already_running');
  });

  it.each([
    { rule: 'stops the least recently active agent', state: pool({ ceo: { idle: 300 }, cto: { idle: 900 }, qa: { idle: 100 } }), victim: 'cto' },
    { rule: 'passes over pinned agents, busy holds and the grace period', state: pool({ ceo: { idle: 9000 }, cto: { idle: 900, busy: 60 }, qa: { idle: 10 }, cfo: { idle: 200 } }), pinned: ['ceo'], victim: 'cfo' },
    { rule: 'stops nobody when nobody may go', state: pool({ ceo: { idle: 10 }, cto: { status: 'starting' } }), victim: undefined },
  ])('$rule', ({ state, pinned, victim }) => {
    const d = decidePressureStop(state, NOW, rules({ pinned }));
    expect(d?.victim).toBe(victim);
    if (d !== undefined) expect(statuses(d.state)[d.victim]).toBe('stopping');
  });
});

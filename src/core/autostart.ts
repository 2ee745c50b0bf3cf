import { AGENT_NAME_PATTERN } from '../contract/index.js';
import type { Catalogue } from './decide.js';
import { type PoolRules, type PoolState, slotsUsed } from './state.js';

export interface AutostartList {
  readonly agents: readonly string[];
  /** Lines that are not a valid agent name, with their 1-based line numbers. */
  readonly invalid: readonly { readonly line: number; readonly text: string }[];
}

/** Parses `POOL_DIR/autostart.txt`: one agent a line, `#` starts a comment, blank lines ignored, repeats dropped. */
export function parseAutostart(text: string): AutostartList {
  const agents: string[] = [];
  const invalid: { line: number; text: string }[] = [];
  text.split(/\r?\n/).forEach((raw, index) => {
    const name = raw.replace(/#.*/, '').trim();
    if (name === '') return;
    if (!AGENT_NAME_PATTERN.test(name)) invalid.push({ line: index + 1, text: raw.trim() });
    else if (!agents.includes(name)) agents.push(name);
  });
  return { agents, invalid };
}

export type AutostartSkip = 'already_running' | 'infrastructure' | 'unknown_agent' | 'pool_full';

export interface AutostartPlan {
  /** In list order, as many as there are free slots. */
  readonly start: readonly string[];
  readonly skipped: readonly { readonly agent: string; readonly reason: AutostartSkip }[];
}

/** Which autostart agents to start, in order, until the pool is full; autostart never evicts. */
export function planAutostart(list: readonly string[], state: PoolState, rules: PoolRules, catalogue: Catalogue): AutostartPlan {
  let free = rules.maxAgents - slotsUsed(state);
  const start: string[] = [];
  const skipped: { agent: string; reason: AutostartSkip }[] = [];
  for (const agent of list) {
    if (rules.infra.has(agent)) skipped.push({ agent, reason: 'infrastructure' });
    else if (state.agents.has(agent)) skipped.push({ agent, reason: 'already_running' });
    else if (!catalogue.known.has(agent)) skipped.push({ agent, reason: 'unknown_agent' });
    else if (free <= 0) skipped.push({ agent, reason: 'pool_full' });
    else {
      start.push(agent);
      free--;
    }
  }
  return { start, skipped };
}
